"""The Method contract: every semi-supervised method is a `torch.nn.Module` that computes losses.

    training_step(labeled, unlabeled, step) -> {"loss": Tensor, ...}   # "loss" is back-propagated once
    predict(image) -> logits (B, K, H, W)                               # all evaluation / inference uses it
    after_step(step)                                                    # EMA teachers, ramp-up state
    param_groups() -> [ParamGroup, ...]                                 # one optimizer per group

A method never touches devices, optimizers' step, loggers, files or the CLI (the engine does). Teachers,
discriminators and second networks are submodules, so checkpoints, `.to()` and DDP cover them.
Batches are dicts: labeled {"image" (B, C, H, W) float, "mask" (B, H, W) int64, "valid" (B, H, W) bool},
unlabeled {"image", "valid"}; `unlabeled` is None for methods that do not use it.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from semiland.config import MethodConfig
from semiland.errors import SemilandError

TARGET_BN = ("running", "batch")
UNLABELED_BN = ("batch", "labeled")


@dataclass
class UnlabeledConfig(MethodConfig):
    """A method with passes over unlabeled images. `unlabeled_bn`: the statistics batch norm normalises those
    passes with (running statistics stay the labeled pass's either way) — "batch" (each unlabeled batch's
    own) or "labeled" (the same step's labeled batch's, gradients flowing through them: the regime the
    supervised loss trains, so an unlabeled loss cannot be met there by an answer it never checks;
    `use_labeled_statistics`; docs/benchmarks.md "Batch norm: the unlabeled losses live where evaluation
    does not")."""

    unlabeled_bn: str = "batch"


@dataclass
class TargetConfig(UnlabeledConfig):
    """A method that predicts targets for unlabeled images. `target_bn`: batch norm while predicting them —
    "batch" (train mode: each unlabeled batch's own statistics, as the student's pass on it; running
    statistics untouched) or "running" (eval mode: the running statistics, as at evaluation). On Dubai the
    running statistics gave more accurate targets at the start (`semiland bench targets`) yet a worse
    pseudo-label run, and on the synthetic scenes a worse FixMatch (docs/benchmarks.md): "batch" by default."""

    target_bn: str = "batch"


@dataclass
class ParamGroup:
    """Parameters stepped by one optimizer. `lr_scale` multiplies optim.lr; `optimizer` overrides optim.name."""

    params: list[nn.Parameter]
    name: str = "main"
    lr_scale: float = 1.0
    lr: float | None = None  # an absolute learning rate instead of optim.lr × lr_scale (a discriminator's)
    optimizer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # optimizer kwargs (e.g. betas for a discriminator)


@dataclass
class MethodContext:
    """What the engine tells a method at construction: task size, training length, and how to build
    another network of the run's architecture (methods with two networks, e.g. CPS)."""

    num_classes: int
    in_channels: int
    ignore_index: int
    max_steps: int
    # Another network of the run's architecture: model_factory() has the run's bands and classes;
    # model_factory(in_channels=…, num_classes=…) other ones (multi-task heads, stacked W-Net).
    model_factory: Callable[..., nn.Module] | None = None
    channels: list[int] = field(default_factory=list)  # bands per modality in the input stack ([optical, SAR])
    class_names: list[str] = field(default_factory=list)  # for logs keyed by class (`target_shares`)

    def names(self) -> list[str]:
        """The class names, or their indices where the engine gave none (tests)."""
        return list(self.class_names) or [str(k) for k in range(self.num_classes)]


@dataclass(frozen=True)
class Alarm:
    """A training-health rule: fires when `test` holds for the values of `key` (a training_step output)
    over the last `window` steps; the engine then warns once with `message` (and records it in the run)."""

    key: str
    window: int
    test: Callable[[list[float]], bool]
    message: str


class Method(nn.Module):
    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    uses_unlabeled: ClassVar[bool] = False  # the engine feeds an unlabeled stream only when True
    unlabeled_masks: ClassVar[bool] = False  # the unlabeled stream carries saved pseudo-label masks
    alarms: ClassVar[tuple[Alarm, ...]] = ()  # instability signals the engine watches (generative methods)
    signals: ClassVar[tuple[str, ...]] = ()  # training_step outputs the run report plots (DLLR's disagreement)
    # parts whose own predictions `semiland test` scores beside the method's (DLLR: each modality's branch)
    heads: ClassVar[tuple[str, ...]] = ()
    # a method's own keys that take one of a few words (DLLR's levels, the target recipe's teacher), checked
    # here with the batch-norm switches every Config may have
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, model: nn.Module, cfg: MethodConfig, ctx: MethodContext):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx
        for key, allowed in {"target_bn": TARGET_BN, "unlabeled_bn": UNLABELED_BN, **self.choices}.items():
            value = getattr(cfg, key, allowed[0])  # the methods whose Config has the switch
            if value not in allowed:
                raise SemilandError(f"method.{key} must be one of {', '.join(allowed)}, got {value!r}")
        fields = getattr(cfg, "__dataclass_fields__", {})
        if getattr(cfg, "top_q", 0) > 0 and "threshold" in fields and cfg.threshold != fields["threshold"].default:
            # top_q replaces τ (confident_pseudo): a threshold given beside it would be accepted and ignored
            raise SemilandError(
                f"method.threshold is not used while method.top_q={cfg.top_q} chooses the targets (each class's most "
                "confident fraction); give method.top_q=0 to keep the pixels above the threshold instead"
            )

    def training_step(
        self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)

    def predict_head(self, image: torch.Tensor, head: str) -> torch.Tensor:
        """Logits of one of `heads` alone, (B, K, H, W)."""
        raise NotImplementedError(f"{self.name} has no head {head!r}")

    def predict_fn(self, head: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """`predict`, or one of `heads` alone."""
        return self.predict if head is None else functools.partial(self.predict_head, head=head)

    def predict_with_heads(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`predict` and every head's logits, each (B, K, H, W). A method whose prediction is made of its heads
        (DLLR fuses its branches) overrides this to run them once, not once for it and once for each head."""
        return self.predict(image), {h: self.predict_head(image, h) for h in self.heads}

    def after_step(self, step: int) -> None:
        """Called after every optimizer step (EMA updates, schedules)."""

    def param_groups(self) -> list[ParamGroup]:
        return [ParamGroup([p for p in self.parameters() if p.requires_grad])]


def sigmoid_rampup(step: int, rampup_steps: int) -> float:
    """exp(-5 (1 - t/T)^2) for t < T, then 1 (Laine & Aila; S4Net's λ schedule)."""
    if rampup_steps <= 0 or step >= rampup_steps:
        return 1.0
    t = step / rampup_steps
    return math.exp(-5.0 * (1.0 - t) ** 2)


def supervised_ce(logits: torch.Tensor, labeled: dict[str, torch.Tensor], ignore_index: int) -> torch.Tensor:
    """Cross-entropy over labeled pixels (ignore index and nodata excluded); 0 (with graph) if none is valid."""
    target = labeled["mask"].masked_fill(~labeled["valid"], ignore_index)
    if not (target != ignore_index).any():
        return logits.sum() * 0.0  # an all-ignore batch: zero loss, gradients defined, no NaN
    return nn.functional.cross_entropy(logits, target, ignore_index=ignore_index)


# -- helpers shared by the semi-supervised methods -------------------------------------------------------


@contextmanager
def bn_stats_frozen(*models: nn.Module) -> Iterator[None]:
    """Forward passes inside still normalise with their own batch statistics (train mode) — or, after
    `use_labeled_statistics`, with the labeled pass's — but leave the batch-norm running statistics
    untouched, so those used at evaluation describe the inputs the supervised loss is trained on, not
    perturbed or warped unlabeled views."""
    norms = [m for model in models for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    # use_labeled_statistics: normalise with the labeled pass's statistics instead (not again when nested)
    relinked = [m for m in norms if hasattr(m, "labeled_stats") and "forward" not in m.__dict__]
    for m in norms:
        m.momentum = 0.0  # running = (1 − 0) · running + 0 · batch
    for m in relinked:
        m.forward = _labeled_forward(m)
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        for m in relinked:
            del m.forward  # back to the class's forward


def use_labeled_statistics(method: nn.Module) -> None:
    """`unlabeled_bn="labeled"`: every batch norm of `method` records the mean and variance of its input in
    each pass that updates its running statistics (train mode outside `bn_stats_frozen`: the labeled pass),
    and normalises the passes inside `bn_stats_frozen` (unlabeled views, targets) with them. Batch norm makes
    the supervised loss blind to the scale of the features; these passes share that invariance, since the
    statistics follow the features (gradients flow through them), where running statistics (eval mode) do
    not — an S4Net run with its unlabeled pass in eval mode collapsed to one class there."""
    for m in method.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not hasattr(m, "labeled_stats"):
            m.labeled_stats = None
            m.labeled_hook = m.register_forward_pre_hook(_record_labeled_stats)


def drop_labeled_statistics(module: nn.Module) -> None:
    """Undo `use_labeled_statistics` (a loaded run's network, when a diagnostic wants each batch's own)."""
    for m in module.modules():
        if hasattr(m, "labeled_stats"):
            m.labeled_hook.remove()
            del m.labeled_stats, m.labeled_hook


def _record_labeled_stats(m: nn.modules.batchnorm._BatchNorm, inputs: tuple[torch.Tensor, ...]) -> None:
    if m.training and m.momentum != 0:  # not inside bn_stats_frozen
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]  # per channel, over the batch and the pixels
        m.labeled_stats = (x.mean(dims), x.var(dims, unbiased=False))


def _labeled_forward(m: nn.modules.batchnorm._BatchNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        if not m.training:  # a teacher or an eval-mode target pass: running statistics, as ever
            return type(m).forward(m, x)
        if m.labeled_stats is None:
            raise SemilandError("method.unlabeled_bn=labeled: an unlabeled pass ran before any labeled one")
        mean, var = m.labeled_stats
        shape = (1, -1) + (1,) * (x.dim() - 2)  # (1, C, 1, 1) for images
        y = (x.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + m.eps)
        if m.affine:
            y = y * m.weight.view(shape) + m.bias.view(shape)
        return y.to(x.dtype)

    return forward


@contextmanager
def params_frozen(*modules: nn.Module) -> Iterator[None]:
    """Forward passes inside reach the modules' inputs but not their parameters: one network's loss through
    another (a segmenter fooling its discriminator) then trains only the first, in a single backward."""
    params = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in params:
            p.requires_grad_(flag)


def ema_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of `model` to serve as an EMA teacher (a submodule: checkpointed, moved, never trained)."""
    teacher = copy.deepcopy(model)
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float, step: int) -> None:
    """θ̄ ← d θ̄ + (1 − d) θ, with d warmed up as min(decay, (t + 1) / (t + 10)); buffers are copied."""
    d = min(decay, (step + 1) / (step + 10))
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.lerp_(s.detach(), 1.0 - d)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """The networks in eval mode inside (batch norm with its running statistics), their own mode restored
    after: a teacher's predictions (mean teacher, S4Net's EMA teacher) and `target_bn="running"`."""
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, training in zip(models, was_training):
            m.train(training)


@contextmanager
def target_mode(target_bn: str, *models: nn.Module) -> Iterator[None]:
    """Batch norm while the networks predict targets (`TargetConfig.target_bn`): eval mode, or train mode with
    the running statistics untouched."""
    with eval_mode(*models) if target_bn == "running" else bn_stats_frozen(*models):
        yield


@torch.no_grad()
def teacher_probs(teacher: nn.Module, image: torch.Tensor, target_bn: str = "running") -> torch.Tensor:
    """Softmax of a network predicting targets (no gradient; batch norm as `target_mode`): (B, K, H, W)."""
    with target_mode(target_bn, teacher):
        return teacher(image).softmax(1)


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

    def __init__(self, num_classes: int, threshold: float, momentum: float):
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


def ramped(weight: float, rampup_fraction: float, step: int, max_steps: int) -> float:
    """λ(t) = λ_max · sigmoid ramp-up over the first `rampup_fraction` of training."""
    return weight * sigmoid_rampup(step, int(rampup_fraction * max_steps))


def semi_losses(
    loss_sup: torch.Tensor, loss_unsup: torch.Tensor, weight: float, **logs: torch.Tensor | float
) -> dict[str, torch.Tensor]:
    """The training_step result of a semi-supervised method: loss = L_s + λ L_u, plus detached terms to log."""
    out = {"loss": loss_sup + weight * loss_unsup, "loss_sup": loss_sup.detach(), "loss_unsup": loss_unsup.detach()}
    out.update({k: v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v)) for k, v in logs.items()})
    return out
