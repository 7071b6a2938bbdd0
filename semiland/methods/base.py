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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

import torch
from torch import nn

from semiland.config import MethodConfig
from semiland.errors import SemilandError


class LabeledBatch(TypedDict):
    """A labeled batch: image (B, C, H, W) float, mask (B, H, W) int64 (ignore_index where unknown), valid (B, H,
    W) bool (False on nodata and padding)."""

    image: torch.Tensor
    mask: torch.Tensor
    valid: torch.Tensor


class UnlabeledBatch(TypedDict, total=False):
    """An unlabeled batch: image and valid as in `LabeledBatch`; mask only where saved pseudo-labels are given
    (self-training)."""

    image: torch.Tensor
    valid: torch.Tensor
    mask: torch.Tensor


Losses = dict[str, torch.Tensor]  # "loss" (back-propagated once) and the terms logged beside it

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

    def __init__(self, model: nn.Module, cfg: MethodConfig, ctx: MethodContext) -> None:
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

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
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
