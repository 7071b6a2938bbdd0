"""The original U-Net (Ronneberger et al. 2015), MiniFrance's second backbone beside SegNet: four levels down,
four up, widths (w, 2w, 4w, 8w) with a 16w bottleneck — w = 64 is the paper's 64 → 1024 — 2 × 2 transposed
convolutions that halve the channels, skip concatenations and a 1 × 1 head. No pretrained encoder.

Departures, as in nearly every re-implementation: padded 3 × 3 convolutions (the paper's are unpadded and the
skips cropped), so the map covers the whole tile and tiles stitch without margins; batch norm after each
convolution (the paper has none), which every semiland method relies on (target_bn, bn_stats_frozen); no
dropout at the end of the contracting path. Laid out as smp models are (`encoder`, `decoder`, `head`) so
MiniFrance's multi-task networks and UniMatch's feature perturbation use it like any other backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from semiland.config import ModelConfig
from semiland.models.tiny import double_conv

LEVELS = 4  # 2 × 2 poolings: the input side must divide by 16


class UNetEncoder(nn.Module):
    """Contracting path: double convolutions, each level after a 2 × 2 max-pool doubles the width."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        widths = [width * 2**i for i in range(LEVELS + 1)]  # w, 2w, 4w, 8w, 16w (bottleneck)
        self.levels = nn.ModuleList(double_conv(ci, co) for ci, co in zip([in_channels, *widths[:-1]], widths))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.levels[0](x)]  # (B, w, H, W)
        for level in self.levels[1:]:
            features.append(level(self.pool(features[-1])))  # level i: (B, 2^i w, H / 2^i, W / 2^i)
        return features  # last: the bottleneck (B, 16w, H/16, W/16)


class UNetDecoder(nn.Module):
    """Expanding path: up-convolution to half the width, concatenation with the skip, double convolution."""

    def __init__(self, width: int):
        super().__init__()
        widths = [width * 2**i for i in range(LEVELS + 1)]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(2 * c, c, 2, stride=2) for c in widths[:-1])
        self.convs = nn.ModuleList(double_conv(2 * c, c) for c in widths[:-1])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for i in reversed(range(LEVELS)):  # H/16 → H: up to level i's size and width, then fuse its skip
            x = self.convs[i](torch.cat([self.ups[i](x), features[i]], 1))
        return x  # (B, w, H, W)


class UNetOriginal(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        self.encoder, self.decoder = UNetEncoder(in_channels, width), UNetDecoder(width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    return UNetOriginal(in_channels, num_classes, cfg.width)
