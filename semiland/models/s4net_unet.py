"""The S4Net network (Wang et al., S4Net, Table 1): U-Net with a ResNet-50 encoder and this decoder:

    c5 (H/32) → conv3x3 192 → tconv4x4 128 (H/16) → concat c4 → conv3x3 128 → tconv 96 (H/8) → concat c3
    → conv3x3 96 → tconv 64 (H/4) → concat c2 → conv3x3 64 → tconv 48 (H/2) → conv3x3 48 → tconv 32 (H)
    → conv3x3 32 → conv1x1 C

Each 3x3 conv is followed by batch norm and ReLU (our reading; the table lists layers only). Strided 4x4
transposed convs (stride 2, padding 1) double the resolution exactly. `model.encoder` names the encoder:
"resnet50" is the paper's (set in configs/*/s4net*.yaml); any other smp encoder works too.
"""

from __future__ import annotations

import torch
from torch import nn

from semiland.config import ModelConfig
from semiland.models.factory import smp_encoder


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1)


class S4NetDecoder(nn.Module):
    """The decoder of Table 1: widths 192 → 128 → 96 → 64 → 48 → 32, skips at H/16, H/8, H/4 only."""

    def __init__(self, encoder_channels: list[int]):
        super().__init__()
        _, _, c2, c3, c4, c5 = encoder_channels  # strides 1, 2, 4, 8, 16, 32
        self.center = conv_bn_relu(c5, 192)
        self.up4, self.conv4 = up(192, 128), conv_bn_relu(128 + c4, 128)
        self.up3, self.conv3 = up(128, 96), conv_bn_relu(96 + c3, 96)
        self.up2, self.conv2 = up(96, 64), conv_bn_relu(64 + c2, 64)
        self.up1, self.conv1 = up(64, 48), conv_bn_relu(48, 48)
        self.up0, self.conv0 = up(48, 32), conv_bn_relu(32, 32)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        _, _, f2, f3, f4, f5 = features  # f2 (B, c2, H/4, W/4) … f5 (B, c5, H/32, W/32)
        y = self.center(f5)
        y = self.conv4(torch.cat([self.up4(y), f4], 1))  # H/16
        y = self.conv3(torch.cat([self.up3(y), f3], 1))  # H/8
        y = self.conv2(torch.cat([self.up2(y), f2], 1))  # H/4
        y = self.conv1(self.up1(y))  # H/2, no skip (Table 1)
        return self.conv0(self.up0(y))  # (B, 32, H, W)


class S4NetUNet(nn.Module):
    """Laid out as smp models are (`encoder`, `decoder`, `head`) so multi-task networks can share parts."""

    def __init__(self, in_channels: int, num_classes: int, encoder: str = "resnet50", weights: str | None = None):
        super().__init__()
        self.encoder = smp_encoder(encoder, in_channels, weights)
        self.decoder = S4NetDecoder(self.encoder.out_channels)
        self.head = nn.Conv2d(32, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    return S4NetUNet(in_channels, num_classes, cfg.encoder, cfg.encoder_weights)
