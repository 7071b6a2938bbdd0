"""Multi-task networks of MiniFrance §5.1 (Fig. 9): a segmentation task φ_s and an auxiliary task φ_u.

- BerundaNet-early (`split="early"`): one shared encoder, two decoders + heads (segmentation, auxiliary).
- BerundaNet-late (`split="late"`): shared encoder and decoder, one final convolution per task.
- W-Net (`WNet`): two stacked networks; the first ends in a softmax over classes (supervised), the second
  maps those class probabilities to the auxiliary output (eq. 4: L_u(φ_u(φ_s(x)), x)).

Backbones: any registered architecture laid out as encoder / decoder / head (every smp architecture,
SegNet, the S4Net U-Net, the tiny U-Net). `forward(x)` runs the segmentation path alone, so inference and
evaluation cost a standard-size network; `multitask(x)` returns (segmentation logits, auxiliary output), `auxiliary(x)` the latter alone.
The auxiliary path takes no part of the segmentation-only layers (BerundaNet: the segmentation decoder /
head), so a loss on the auxiliary output alone never reaches them.
"""

from __future__ import annotations

import torch
from torch import nn

from semiland.errors import SemilandError
from semiland.models import model_parts


class BerundaNet(nn.Module):
    def __init__(self, seg_net: nn.Module, aux_net: nn.Module, split: str):
        """`seg_net` / `aux_net`: two networks of one architecture with the segmentation and auxiliary
        output channels; BerundaNet keeps seg_net's encoder (and decoder when late) and aux_net's head
        (and decoder when early); the rest of aux_net is dropped."""
        super().__init__()
        if split not in ("early", "late"):
            raise SemilandError(f"BerundaNet split must be early or late, got '{split}'")
        seg, aux = model_parts(seg_net), model_parts(aux_net)
        self.split = split
        self.encoder, self.decoder, self.head = seg.encoder, seg.decoder, seg.head  # φ_s (and shared layers)
        self.aux_decoder = aux.decoder if split == "early" else None
        self.aux_head = aux.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))

    def multitask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)  # shared by both tasks
        if self.aux_decoder is not None:  # early split: each task decodes the shared features itself
            return self.head(self.decoder(features)), self.aux_head(self.aux_decoder(features))
        decoded = self.decoder(features)  # late split: shared decoder features (B, F, H, W)
        return self.head(decoded), self.aux_head(decoded)

    def auxiliary(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary output alone (an unlabeled batch's pass): the early split skips the segmentation
        decoder, whose output such a batch has no use for."""
        features = self.encoder(x)
        if self.aux_decoder is not None:
            return self.aux_head(self.aux_decoder(features))
        return self.aux_head(self.decoder(features))


class WNet(nn.Module):
    def __init__(self, seg_net: nn.Module, aux_net: nn.Module):
        """`seg_net`: in_channels → K classes (φ_s); `aux_net`: K class probabilities → auxiliary output (φ_u)."""
        super().__init__()
        self.seg_net, self.aux_net = seg_net, aux_net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seg_net(x)

    def multitask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.seg_net(x)
        return logits, self.aux_net(logits.softmax(1))  # the softmax between the two U-Nets

    def auxiliary(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary output alone: W-Net's runs through the whole first network (eq. 4)."""
        return self.multitask(x)[1]
