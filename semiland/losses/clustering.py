"""Unsupervised segmentation losses on soft cluster memberships ŷ (MiniFrance §5.2).

Relaxed k-means (eqs. 8–11), per image:
    c_k = Σ_i x_i ŷ_i^k / Σ_i ŷ_i^k                    soft centroids (8)
    x_c = Σ_k c_k ŷ^k                                   the quantised image (9)
    L_rec = L1(x, x_c)                                  (10)
    L_reg = Σ_k ŷ^k (1 − ŷ^k)                           peakedness: 0 iff memberships are one-hot (11)
Mumford–Shah (eq. 12):
    L_rec = Σ_k ‖x_i − c_k‖² ŷ_i^k,   L_reg = Σ_k |∇ŷ_i^k|  (anisotropic total variation, forward differences)
Both return α_rec L_rec + α_reg L_reg, averaged over valid pixels (the paper sums; see losses/__init__).
"""

from __future__ import annotations

import torch

from semiland.losses.reconstruction import masked_mean


def soft_centroids(x: torch.Tensor, memberships: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. 8 per image: x (B, C, H, W), memberships (B, K, H, W), valid (B, H, W) → c (B, K, C)."""
    y = memberships * valid[:, None].to(memberships.dtype)  # nodata pixels pull no centroid
    mass = y.sum((2, 3))  # (B, K)
    return torch.einsum("bkhw,bchw->bkc", y, x) / mass[..., None].clamp_min(1e-6)


def kmeans_loss(
    x: torch.Tensor, logits: torch.Tensor, valid: torch.Tensor, alpha_rec: float = 1.0, alpha_reg: float = 1.0
) -> torch.Tensor:
    y = logits.softmax(1)  # (B, K, H, W)
    c = soft_centroids(x, y, valid)  # (B, K, C)
    x_c = torch.einsum("bkc,bkhw->bchw", c, y)  # eq. 9
    rec = masked_mean((x - x_c).abs(), valid)  # eq. 10
    reg = masked_mean((y * (1 - y)).sum(1, keepdim=True), valid)  # eq. 11, summed over k
    return alpha_rec * rec + alpha_reg * reg


def total_variation(y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Σ_k (|y[h+1] − y[h]| + |y[w+1] − y[w]|) per pixel, over pairs of valid pixels: (B, 1, H, W)."""
    v = valid[:, None].to(y.dtype)
    tv = torch.zeros_like(y[:, :1])
    dh = (y[:, :, 1:] - y[:, :, :-1]).abs().sum(1, keepdim=True) * v[:, :, 1:] * v[:, :, :-1]
    dw = (y[..., 1:] - y[..., :-1]).abs().sum(1, keepdim=True) * v[..., 1:] * v[..., :-1]
    tv[:, :, :-1] += dh
    tv[..., :-1] += dw
    return tv


def mumford_shah_loss(
    x: torch.Tensor, logits: torch.Tensor, valid: torch.Tensor, alpha_rec: float = 1.0, alpha_reg: float = 1.0
) -> torch.Tensor:
    y = logits.softmax(1)  # (B, K, H, W)
    c = soft_centroids(x, y, valid)  # (B, K, C)
    sq_dist = ((x[:, None] - c[..., None, None]) ** 2).sum(2)  # ‖x_i − c_k‖²: (B, K, H, W)
    rec = masked_mean((sq_dist * y).sum(1, keepdim=True), valid)
    reg = masked_mean(total_variation(y, valid), valid)
    return alpha_rec * rec + alpha_reg * reg
