"""FixMatch for segmentation (Sohn et al. 2020; as used by UniMatch, Yang et al. 2023).

The prediction on a weak view (random flip) of x_u, where max p ≥ τ, becomes the hard label of a strong
view of the same image: band-agnostic photometric changes, blur and CutMix with another unlabeled image.
L = L_s + λ · CE(f(strong(x_u)), ŷ_weak) on confident pixels.

Config → symbols: threshold = τ (0.95), lambda_u = λ, cutmix_p = probability of a CutMix box; photometric =
the strength of the strong view's per-band changes (perturb.strong_photometric; 0: CutMix and blur only),
blur_p = probability of a blur; `flex` replaces
the fixed τ by FlexMatch's class-wise thresholds (Zhang et al. 2021; `ClassThresholds` in selection.py, momentum
flex_momentum), against the confirmation bias of a fixed τ toward majority classes; top_q = q > 0 keeps each
predicted class's q most confident pixels instead (selection.top_q_keep; area-free, unlike FlexMatch's σ);
soft_targets = T > 0 trains on the teacher's distribution sharpened as p^(1/T) (MixMatch) instead of its arg-max;
target_flips = n > 1 averages the teacher's probabilities over n flips of the weak view (MixMatch's label
guessing over K augmentations; 1: the paper, one view; 4 was level with the defaults on the development folds'
validation tiles, −0.02 over 6 pairs, at ~14 % more time: off by default);
paste_labeled = p > 0 pastes a labeled crop's box, with its true mask, into a share p of the strong views
(`paste_labeled`: Bidirectional Copy-Paste's inward direction, Bai et al. 2023; off by default: with p = 1 it
was behind the defaults on the development folds' validation tiles (−0.88; 5 of 6 pairs lost;
docs/benchmarks.md)).
target_bn = batch norm while predicting the weak view's targets (base.TargetConfig); teacher, align and burnin:
where the targets come from, their class distribution and when the unlabeled loss starts (targets.py: an EMA
teacher, ReMixMatch's distribution alignment, a supervised burn-in).

Defaults that depart from the paper (issue #40, chosen on Dubai's validation tiles; docs/benchmarks.md):
top_q = 0.5 instead of τ — with τ = 0.95 the kept targets on Dubai were land and water only (the labeled
images' majority classes: no building, road or vegetation pixel passed it), so the unlabeled loss taught the
minority classes away; teacher = "ema" (decay 0.99) and burnin = 0.2 — the targets come from the weights'
moving average, and only after a fifth of the steps on labeled crops alone. With top-q alone, or τ with the
EMA teacher and burn-in, the method stayed behind supervised on validation (folds 1–3); the three together led
(+1.01 over 6 pairs). align = True — ReMixMatch's distribution alignment of the teacher's probabilities to the
labeled class shares, so a class the model under-predicts keeps targets: with twice the steps of the first
protocol (1400, where both runs still gain) FixMatch with alignment led supervised of the same steps on the
development folds' validation tiles in 10 of 12 pairs (+2.97, p = 0.0095); alignment alone at 700 steps +1.19
(5 of 6). Train it about as long as supervised needs to converge and longer than a supervised run would stop:
its unlabeled loss starts after the burn-in and converges later (docs/benchmarks.md).
`fixmatch_paper` is the paper's setting (τ = 0.95 from step 0, the student's own weak prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semiland.config import limits
from semiland.errors import SemilandError
from semiland.methods.base import LabeledBatch, Losses, MethodContext, UnlabeledBatch, semi_losses, supervised_ce
from semiland.methods.network_modes import bn_stats_frozen
from semiland.methods.perturb import cutmix_box, mix, random_flip, strong_photometric
from semiland.methods.selection import ClassThresholds, confident_pseudo, masked_ce, target_shares, teacher_probs
from semiland.methods.targets import DistributionAlignment, PapersTargets, TargetRecipeConfig, TargetRecipeMethod


@dataclass
class FixMatchConfig(TargetRecipeConfig):
    threshold: float = limits(0.95, 0, 1)  # τ, used when top_q = 0
    top_q: float = limits(0.5, 0, 1)  # > 0: per-class top fraction instead of τ (selection.top_q_keep); paper: 0
    teacher: str = "ema"  # paper: "self"
    align: bool = True  # paper: False (ReMixMatch's distribution alignment of the targets)
    burnin: float = limits(0.2, 0, 1, below=True)  # paper: 0
    lambda_u: float = 1.0
    cutmix_p: float = limits(0.5, 0, 1)
    photometric: float = limits(1.0, 0, 2.5)  # strength of the strong view's per-band gain / bias / noise
    blur_p: float = limits(0.5, 0, 1)
    flex: bool = False
    flex_momentum: float = limits(0.99, 0, 1, below=True)
    # T > 0: the strong view learns the teacher's (aligned) distribution sharpened as p^(1/T) (MixMatch's
    # soft targets) on the kept pixels, instead of its arg-max; 0: hard targets (the paper)
    soft_targets: float = limits(0.0, 0, 10)
    # p > 0: with probability p an unlabeled image's strong view gets a box of a labeled crop pasted in, its true
    # mask the target there (Bidirectional Copy-Paste's inward direction, Bai et al. 2023); 0: off (the paper)
    paste_labeled: float = limits(0.0, 0, 1)
    # n > 1: the teacher's probabilities averaged over n flips of the weak view (perturb.FLIPS; MixMatch's label
    # guessing over K augmentations): targets less tied to one view, n − 1 more teacher passes a step; 1: the paper
    target_flips: int = limits(1, 1, 4)


@torch.no_grad()
def weak_targets(
    model: nn.Module,
    unlabeled: dict[str, torch.Tensor],
    threshold: float | ClassThresholds,
    target_bn: str,
    top_q: float = 0.0,
    align: DistributionAlignment | None = None,
    soft: float = 0.0,
    flips: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weak view (random flip) of x_u, its hard pseudo-labels (B, H, W) (batch norm as `target_bn`:
    network_modes.target_mode; probabilities averaged over `flips` flips of the view, then aligned where `align`
    is given) — or with `soft` = T > 0 its distribution sharpened by T (B, K, H, W) — and where they are kept
    (confident, or each class's top_q most confident, and valid)."""
    x_w, valid_w = random_flip(unlabeled["image"], unlabeled["valid"])
    probs = teacher_probs(model, x_w, target_bn, flips)  # (B, K, H, W)
    if align is not None:
        probs = align(probs, valid_w)
    if callable(threshold):
        pseudo_w, keep_w = threshold(probs)  # (B, H, W)
    else:
        pseudo_w, keep_w = confident_pseudo(probs, threshold, top_q)
    if soft > 0:  # a hard target names only the class ranked first; p^(1/T) keeps the others' share
        sharp = probs.float() ** (1 / soft)
        return x_w, sharp / sharp.sum(1, keepdim=True).clamp_min(1e-12), keep_w & valid_w
    return x_w, pseudo_w, keep_w & valid_w


def strong_view(
    x_w: torch.Tensor,
    pseudo_w: torch.Tensor,
    keep_w: torch.Tensor,
    cutmix_p: float,
    photometric: float = 1.0,
    blur_p: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A strong view with CutMix (each image with its neighbour in the batch), and its mixed targets (hard
    (B, H, W) or soft (B, K, H, W)): every pixel is supervised by the weak prediction of the image it came from."""
    b, _, h, w = x_w.shape
    perm = torch.roll(torch.arange(b, device=x_w.device), 1)
    box = cutmix_box(b, h, w, x_w.device, cutmix_p)
    x_s = mix(*(strong_photometric(x, blur_p, photometric) for x in (x_w, x_w[perm])), box)
    return x_s, mix(pseudo_w, pseudo_w[perm], box), mix(keep_w, keep_w[perm], box)


def paste_labeled(
    x_s: torch.Tensor,
    target_s: torch.Tensor,
    keep_s: torch.Tensor,
    labeled: LabeledBatch,
    p: float,
    ignore_index: int,
    photometric: float = 1.0,
    blur_p: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bidirectional Copy-Paste's inward direction (Bai et al. 2023): with probability p, a box of a labeled crop
    (its own strong photometric view) is pasted into an unlabeled strong view x_s (B, C, H, W); inside the box the
    target is the true mask and every valid labeled pixel is kept. Labeled pixels then meet unlabeled context in
    one image, instead of only the teacher's guesses for it. `target_s`: hard (B, H, W) or soft (B, K, H, W)."""
    b, _, h, w = x_s.shape
    src = torch.arange(b, device=x_s.device) % labeled["image"].shape[0]  # more unlabeled crops: labeled reused
    box = cutmix_box(b, h, w, x_s.device, p)
    x_l = strong_photometric(labeled["image"][src], blur_p, photometric)
    known = labeled["valid"][src] & (labeled["mask"][src] != ignore_index)
    y_l = labeled["mask"][src].masked_fill(~known, 0)  # (B, H, W); never read outside `known`
    if target_s.dim() == 4:  # soft targets: the true class as a one-hot distribution
        y_l = nn.functional.one_hot(y_l, target_s.shape[1]).permute(0, 3, 1, 2).to(target_s.dtype)
    return mix(x_s, x_l, box), mix(target_s, y_l, box), mix(keep_s, known, box)


class FixMatch(TargetRecipeMethod):
    name = "fixmatch"
    Config = FixMatchConfig
    uses_unlabeled = True

    def __init__(self, model: nn.Module, cfg: FixMatchConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if cfg.flex and cfg.top_q > 0:
            raise SemilandError(
                f"method.flex and method.top_q={cfg.top_q} both choose the kept pseudo-labels: give method.top_q=0 "
                "with method.flex=true"
            )
        self.thresholds = ClassThresholds(ctx.num_classes, cfg.threshold, cfg.flex_momentum) if cfg.flex else None

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c = self.cfg
        loss_sup = supervised_ce(self.model(labeled["image"]), labeled, self.ctx.ignore_index)
        if self.burning_in(step):
            return self.burnin_losses(loss_sup)
        self.observe_labeled(labeled)
        threshold = c.threshold if self.thresholds is None else self.thresholds
        with bn_stats_frozen(self.model):  # running statistics stay those of the labeled pass (see network_modes.py)
            x_w, pseudo_w, keep_w = weak_targets(
                self.target_net,
                unlabeled,
                threshold,
                c.target_bn,
                c.top_q,
                self.align,
                c.soft_targets,
                c.target_flips,
            )
            x_s, pseudo_s, keep_s = strong_view(x_w, pseudo_w, keep_w, c.cutmix_p, c.photometric, c.blur_p)
            if c.paste_labeled > 0:
                x_s, pseudo_s, keep_s = paste_labeled(
                    x_s, pseudo_s, keep_s, labeled, c.paste_labeled, self.ctx.ignore_index, c.photometric, c.blur_p
                )
            loss_unsup = masked_ce(self.model(x_s), pseudo_s, keep_s, torch.ones_like(keep_s))
        hard_w = pseudo_w.argmax(1) if pseudo_w.dim() == 4 else pseudo_w  # (B, H, W) for the logged shares
        shares = target_shares(hard_w, keep_w, self.ctx.names())
        return semi_losses(loss_sup, loss_unsup, c.lambda_u, mask_ratio=keep_s.float().mean(), **shares)


@dataclass
class FixMatchPaperConfig(PapersTargets, FixMatchConfig):
    """The paper's setting: τ = 0.95 on the student's own weak prediction, from the first step."""


class FixMatchPaper(FixMatch):
    """FixMatch as published (Sohn et al. 2020): confidence threshold, no EMA teacher, no burn-in."""

    name = "fixmatch_paper"
    Config = FixMatchPaperConfig
