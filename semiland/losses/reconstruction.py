"""Reconstruction losses, MiniFrance eqs. 6–7: L1 = 1/N Σ_i |x_i − x̂_i|, L2 = 1/N Σ_i (x_i − x̂_i)²."""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of (B, C, H, W) `values` over channels and the valid (B, H, W) pixels; 0 (with a graph) if none."""
    w = valid[:, None].to(values.dtype).expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(1.0)


def l1_loss(x: torch.Tensor, x_hat: torch.Tensor, valid: torch.Tensor, **_: float) -> torch.Tensor:
    return masked_mean((x - x_hat).abs(), valid)


def l2_loss(x: torch.Tensor, x_hat: torch.Tensor, valid: torch.Tensor, **_: float) -> torch.Tensor:
    return masked_mean((x - x_hat) ** 2, valid)
