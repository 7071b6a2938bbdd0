"""Pseudo-labels: a teacher's predictions, which of their pixels to trust (a confidence threshold τ, the
per-class top-q fraction, FlexMatch's per-class thresholds), the kept targets' class shares (logged), and the
losses over the kept pixels."""

from __future__ import annotations

import torch
from torch import nn

from semiland.methods.network_modes import target_mode
from semiland.methods.perturb import FLIPS


@torch.no_grad()
def teacher_probs(teacher: nn.Module, image: torch.Tensor, target_bn: str = "running", flips: int = 1) -> torch.Tensor:
    """Softmax of a network predicting targets (no gradient; batch norm as `target_mode`): (B, K, H, W).
    `flips` > 1: averaged over the first `flips` of perturb.FLIPS of `image`, each flipped back (MixMatch's label
    guessing over K augmentations, Berthelot et al. 2019; test-time augmentation for the targets)."""
    with target_mode(target_bn, teacher):
        if flips == 1:
            return teacher(image).softmax(1)
        return sum(teacher(image.flip(dims)).softmax(1).flip(dims) for dims in FLIPS[:flips]) / flips


def confident_pseudo(probs: torch.Tensor, threshold: float, top_q: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W) probabilities → hard pseudo-labels (B, H, W) and the mask of those kept: where max p ≥
    threshold, or with top_q > 0 each predicted class's top_q most confident fraction (`top_q_keep`)."""
    conf, pseudo = probs.max(1)
    return pseudo, top_q_keep(conf, pseudo, top_q, probs.shape[1]) if top_q > 0 else conf >= threshold


@torch.no_grad()
def top_q_keep(conf: torch.Tensor, pred: torch.Tensor, q: float, num_classes: int) -> torch.Tensor:
    """For every predicted class, its q most confident fraction of pixels (⌈q·n⌉ of its n), as a mask of
    `conf`'s shape. A rare class keeps targets even when the model is never sure of it, which one threshold τ
    denies it: on Dubai no vegetation pixel passed FixMatch's τ = 0.95 (docs/benchmarks.md). Two stable sorts
    rank each class's pixels by confidence: no per-class quantile, so no wait on a GPU and no size limit."""
    flat_conf, flat_pred = conf.reshape(-1), pred.reshape(-1)
    by_conf = torch.argsort(flat_conf, descending=True, stable=True)
    order = by_conf[torch.argsort(flat_pred[by_conf], stable=True)]  # grouped by class, most confident first
    grouped = flat_pred[order]
    counts = torch.zeros(num_classes, dtype=torch.long, device=pred.device)
    counts.scatter_add_(0, flat_pred, torch.ones_like(flat_pred))
    rank = torch.arange(len(order), device=pred.device) - (counts.cumsum(0) - counts)[grouped]  # 0 = most sure
    keep = torch.empty_like(flat_pred, dtype=torch.bool)
    keep[order] = rank < q * counts[grouped]
    return keep.reshape(conf.shape)


@torch.no_grad()
def kept_class_counts(pseudo: torch.Tensor, keep: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K,) float: how many `keep` pixels each class of `pseudo` (both (B, H, W)) has. A scatter rather than
    `bincount(pseudo[keep])`: boolean indexing waits on a GPU every training step, this does not."""
    counts = torch.zeros(num_classes, device=pseudo.device)
    return counts.scatter_add_(0, pseudo.reshape(-1), keep.reshape(-1).float())


@torch.no_grad()
def target_shares(pseudo: torch.Tensor, keep: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """What a hard-target unlabeled loss teaches: each class's share of the kept target pixels (`pseudo`, `keep`:
    (B, H, W)), logged as `target/<class>` and plotted in the run report. A class whose share falls towards zero
    is one the method is learning to stop predicting: on the Dubai sweep the methods' own targets starved the rare
    vegetation (docs/benchmarks.md, "Why the methods fall behind at 4 images")."""
    counts = kept_class_counts(pseudo, keep, len(names))
    return {f"target/{name}": share for name, share in zip(names, counts / counts.sum().clamp_min(1))}


class ClassThresholds(nn.Module):
    """FlexMatch's class-wise curriculum thresholds (Zhang et al., NeurIPS 2021), per pixel, without warm-up.

    σ_c: running share (momentum m) of unlabeled pixels predicted as class c with max p ≥ τ — how far the
    model has learned c; β_c = σ_c / max σ; T_c = τ · β_c / (2 − β_c) (the paper's convex warp M(x) = x/(2−x)).
    Classes the model is rarely confident on get a lower threshold, so a fixed high τ no longer keeps only
    majority-class pixels (confirmation bias). σ is a buffer: saved in checkpoints, resumed with the run.
    In segmentation σ_c also measures class c's area: on Dubai every class but the largest got a low threshold,
    and the rarest (never confidently predicted, rarely the arg-max) lost its pixels to the others
    (docs/benchmarks.md, "Class-wise thresholds do not keep the vegetation").
    """

    def __init__(self, num_classes: int, threshold: float, momentum: float) -> None:
        super().__init__()
        self.threshold, self.momentum = threshold, momentum
        self.register_buffer("sigma", torch.full((num_classes,), 1.0 / num_classes))  # (K,): uniform start

    @torch.no_grad()
    def forward(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, H, W) probabilities → hard pseudo-labels (B, H, W) and where each passes its class's threshold;
        updates σ from this batch (call once per training step)."""
        conf, pseudo = probs.max(1)
        share = kept_class_counts(pseudo, conf >= self.threshold, len(self.sigma)) / conf.numel()
        self.sigma.mul_(self.momentum).add_((1 - self.momentum) * share)
        beta = self.sigma / self.sigma.max().clamp_min(1e-12)
        return pseudo, conf >= (self.threshold * beta / (2 - beta))[pseudo]


def masked_ce(logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """CE summed over `keep` pixels, divided by the number of `valid` ones (UniMatch's normalisation, so a
    low-confidence batch contributes little rather than being re-weighted up). `target`: class indices
    (B, H, W) or class distributions (B, K, H, W)."""
    ce = nn.functional.cross_entropy(logits, target, reduction="none")  # (B, H, W)
    return (ce * (keep & valid)).sum() / valid.sum().clamp_min(1)


def masked_mse(probs_a: torch.Tensor, probs_b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Squared L2 between two (B, K, H, W) class distributions, averaged over `valid` (B, H, W) pixels."""
    sq = ((probs_a - probs_b) ** 2).sum(1)  # (B, H, W)
    return (sq * valid).sum() / valid.sum().clamp_min(1)
