"""Dense contrastive loss (InfoNCE over pixels; DenseCL, Wang et al. 2021, with in-batch negatives).

Two views of the same crops give embeddings z1, z2 (B, D, h, w) already brought onto one grid, so that
z1[b, :, i, j] and z2[b, :, i, j] see the same ground. Each kept position of view 1 is a query whose positive
is the same position in view 2; every other kept position of the batch (same crop or another) is a negative:

    L = −1/N Σ_n log( exp(q_n · k_n / τ) / Σ_m exp(q_n · k_m / τ) ),   q, k unit vectors

symmetrised over the two views. DenseCL keeps a queue of negatives from a momentum encoder; here the batch's
own positions serve (B · h · w of them: 512 for 8 crops of 128² at stride 16), which needs no second encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dense_info_nce(z1: torch.Tensor, z2: torch.Tensor, keep: torch.Tensor, temperature: float) -> torch.Tensor:
    """z1, z2 (B, D, h, w) on one grid; keep (B, h, w) bool (positions with data in both views). A scalar; 0
    (with a graph) when fewer than two positions are kept."""
    q = F.normalize(z1.permute(0, 2, 3, 1)[keep].float(), dim=1)  # (N, D): float32 for the softmax's sums
    k = F.normalize(z2.permute(0, 2, 3, 1)[keep].float(), dim=1)
    if q.shape[0] < 2:
        return (z1.sum() + z2.sum()) * 0.0
    logits = q @ k.T / temperature  # (N, N): the diagonal holds the positives
    target = torch.arange(q.shape[0], device=q.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
