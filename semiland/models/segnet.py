"""SegNet (Badrinarayanan et al. 2017), used as a backbone by MiniFrance: a VGG-16-style encoder whose
max-pooling indices drive the decoder's unpooling. Widths are (w, 2w, 4w, 8w, 8w); w = 64 is the paper's.
"""

from __future__ import annotations

import torch
from torch import nn

from semiland.config import ModelConfig

BLOCKS = (2, 2, 3, 3, 3)  # convolutions per VGG-16 stage


def _stage(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [
            nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(True),
        ]
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        ins = [in_channels, *widths[:-1]]
        self.enc = nn.ModuleList(_stage(ci, co, n) for ci, co, n in zip(ins, widths, BLOCKS))
        # Decoder stage i mirrors encoder stage i: widths[i] → widths[i-1] (last: → width, then the classifier).
        outs = [width, *widths[:-1]]
        self.dec = nn.ModuleList(_stage(widths[i], outs[i], BLOCKS[i]) for i in range(len(widths)))
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.head = nn.Conv2d(width, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        indices, sizes = [], []
        for stage in self.enc:
            x = stage(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)  # (B, C, H/2, W/2) + where each maximum came from
            indices.append(idx)
        for i in reversed(range(len(self.dec))):
            x = self.unpool(x, indices[i], output_size=sizes[i])
            x = self.dec[i](x)
        return self.head(x)


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    return SegNet(in_channels, num_classes, cfg.width)
