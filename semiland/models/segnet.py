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


class SegNetEncoder(nn.Module):
    """VGG-16-style stages, each followed by a 2 × 2 max-pool whose indices the decoder reuses."""

    feature_maps = False  # its state holds pooling indices and sizes, not a list of feature maps

    def __init__(self, in_channels: int, widths: list[int]):
        super().__init__()
        ins = [in_channels, *widths[:-1]]
        self.stages = nn.ModuleList(_stage(ci, co, n) for ci, co, n in zip(ins, widths, BLOCKS))
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
        indices, sizes = [], []
        for stage in self.stages:
            x = stage(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)  # (B, C, H/2, W/2) + where each maximum came from
            indices.append(idx)
        return x, indices, sizes


class SegNetDecoder(nn.Module):
    """Stage i mirrors encoder stage i: unpool with its indices, then widths[i] → widths[i-1] (last: → w)."""

    def __init__(self, widths: list[int]):
        super().__init__()
        outs = [widths[0], *widths[:-1]]
        self.stages = nn.ModuleList(_stage(widths[i], outs[i], BLOCKS[i]) for i in range(len(widths)))
        self.unpool = nn.MaxUnpool2d(2, 2)

    def forward(self, state: tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]) -> torch.Tensor:
        x, indices, sizes = state
        for i in reversed(range(len(self.stages))):
            x = self.stages[i](self.unpool(x, indices[i], output_size=sizes[i]))
        return x  # (B, w, H, W)


class SegNet(nn.Module):
    """Laid out as smp models are (`encoder`, `decoder`, `head`) so multi-task networks can share parts."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.encoder, self.decoder = SegNetEncoder(in_channels, widths), SegNetDecoder(widths)
        self.head = nn.Conv2d(width, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    return SegNet(in_channels, num_classes, cfg.width)
