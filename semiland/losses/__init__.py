"""Unsupervised auxiliary losses of MiniFrance §5.2 (Castillo-Navetty et al.): L_u = α_rec L_rec + α_reg L_reg.

Every loss takes the (normalised) input x (B, C, H, W), the auxiliary output of the network and valid
(B, H, W) (nodata pixels count nowhere), and returns a scalar:
- `l1`, `l2` (eqs. 6–7): the auxiliary output is a reconstruction x̂ (B, C, H, W);
- `kmeans` (eqs. 8–11) and `mumford_shah` (eq. 12): the auxiliary output is membership logits
  (B, K, H, W) over K clusters; memberships ŷ = softmax over K.
The paper sums over pixels i; we average over valid pixels instead so that λ (the weight of L_u in eq. 3)
does not depend on the crop size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from semiland.errors import SemilandError
from semiland.losses.clustering import kmeans_loss, mumford_shah_loss
from semiland.losses.reconstruction import l1_loss, l2_loss

AuxLoss = Callable[..., torch.Tensor]

AUX_LOSSES: dict[str, AuxLoss] = {
    "l1": l1_loss,
    "l2": l2_loss,
    "kmeans": kmeans_loss,
    "mumford_shah": mumford_shah_loss,
}
# MiniFrance §6.3: λ = 2 for the reconstruction losses, λ = 5 for the segmentation (clustering) losses.
DEFAULT_LAMBDA = {"l1": 2.0, "l2": 2.0, "kmeans": 5.0, "mumford_shah": 5.0}
RECONSTRUCTS = {"l1", "l2"}  # the auxiliary output has the input's bands; else cluster memberships


def aux_loss(name: str) -> AuxLoss:
    if name not in AUX_LOSSES:
        raise SemilandError(f"unknown method.aux_loss '{name}'; available: {', '.join(AUX_LOSSES)}")
    return AUX_LOSSES[name]


__all__ = ["AUX_LOSSES", "DEFAULT_LAMBDA", "RECONSTRUCTS", "aux_loss", "kmeans_loss", "l1_loss", "l2_loss"]
__all__ += ["mumford_shah_loss"]
