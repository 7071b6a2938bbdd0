"""A two-level U-Net with `model.width` channels: fast enough for contract tests and smoke runs.

Laid out as smp models are (`encoder`, `decoder`, `head`) so multi-task networks can share or copy parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semiland.config import ModelConfig


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """One U-Net level: two 3 × 3 convolutions (padded), each with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class TinyEncoder(nn.Module):
    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.enc1, self.enc2, self.mid = (
            double_conv(in_channels, width),
            double_conv(width, 2 * width),
            double_conv(2 * width, 2 * width),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.enc1(x)  # (B, w, H, W)
        e2 = self.enc2(F.max_pool2d(e1, 2))  # (B, 2w, H/2, W/2)
        return [e1, e2, self.mid(F.max_pool2d(e2, 2))]  # last: (B, 2w, H/4, W/4)


class TinyDecoder(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.dec2, self.dec1 = double_conv(4 * width, width), double_conv(2 * width, width)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        e1, e2, m = features
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0), e2], 1))
        return self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1))  # (B, w, H, W)


class TinyUNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 16):
        super().__init__()
        self.encoder, self.decoder = TinyEncoder(in_channels, width), TinyDecoder(width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    return TinyUNet(in_channels, num_classes, cfg.width)
