"""Where FixMatch-style methods (and pseudo-labeling) get their pseudo-labels: which network predicts them, how
its class distribution is corrected, and when the unlabeled loss starts (issue #40, part 2).

The papers' setting (FixMatch, UniMatch): the student's own prediction on the weak view, from step 0, kept
where max p ≥ τ. On Dubai that setting taught the rare classes away (the model under-predicts vegetation from
the first step, and its own targets say so; docs/benchmarks.md). Three departures, each a switch:

- teacher = "ema": the targets come from an exponential moving average of the student's weights (Tarvainen &
  Valpola 2017; UniMatch v2 and most of the recent segmentation methods), which changes slowly, so a class is
  not unlearned by the noise of a few steps' targets.
- align: distribution alignment (Berthelot et al., ReMixMatch 2020), per pixel: p̃ = Normalize(p · π_l / π̂_u),
  π_l the labeled pixels' class shares, π̂_u the running mean of the predicted distribution on unlabeled pixels
  (both moving averages, momentum `align_momentum`). A class the model predicts less often than the labels
  hold it is raised before the arg-max and the threshold, rather than taught away.
- burnin: the first `burnin` fraction of the steps trains on the labeled crops alone, so the first targets
  come from a network that has learned something (the from-scratch and the pretrained runs both predict no
  vegetation on unlabeled crops for their first hundreds of steps).

`ema_copy` / `ema_update` keep an EMA teacher's weights (also mean teacher's and S4Net's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from semiland.config import limits
from semiland.errors import SemilandError
from semiland.methods.base import Method, MethodContext, TargetConfig, semi_losses
from semiland.methods.selection import kept_class_counts

TEACHERS = ("self", "ema")


@dataclass
class PapersTargets:
    """The papers' setting of the recipe's switches: the student's own prediction kept above τ, from the first
    step. A paper-faithful Config (`fixmatch_paper`, `pseudo_label_paper`) names it first among its bases."""

    top_q: float = limits(0.0, 0, 1)
    teacher: str = "self"
    align: bool = False
    burnin: float = limits(0.0, 0, 1, below=True)


@dataclass
class TargetRecipeConfig(TargetConfig):
    """teacher ("self" | "ema"), ema_decay, align, align_momentum, burnin: see this module's docstring."""

    # what a run trained before these settings existed did (the papers' setting): a saved config without them
    # gets these, not today's defaults (`methods.method_config(saved=True)`), so its checkpoint still fits
    BEFORE: ClassVar[dict[str, object]] = {f.name: f.default for f in fields(PapersTargets)}

    teacher: str = "self"
    ema_decay: float = limits(0.99, 0, 1, below=True)
    align: bool = False
    align_momentum: float = limits(0.99, 0, 1, below=True)
    burnin: float = limits(0.0, 0, 1, below=True)


class DistributionAlignment(nn.Module):
    """ReMixMatch's distribution alignment for pixels. Buffers (checkpointed, resumed with the run): `labeled`
    (K,) the labeled pixels' class shares, `predicted` (K,) the mean predicted distribution on unlabeled
    pixels; both start uniform and move with momentum m per step."""

    def __init__(self, num_classes: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("labeled", torch.full((num_classes,), 1.0 / num_classes))
        self.register_buffer("predicted", torch.full((num_classes,), 1.0 / num_classes))

    @torch.no_grad()
    def observe(self, mask: torch.Tensor, valid: torch.Tensor) -> None:
        """Class shares of a labeled batch's valid pixels (mask, valid: (B, H, W); ignore-index pixels are
        outside 0..K−1 and so not counted)."""
        k = len(self.labeled)
        inside = valid & (mask >= 0) & (mask < k)
        counts = kept_class_counts(mask.clamp(0, k - 1), inside, k)
        if counts.sum() > 0:
            self.labeled.lerp_(counts / counts.sum(), 1 - self.momentum)

    @torch.no_grad()
    def forward(self, probs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) probabilities → aligned probabilities of the same shape; updates `predicted` from this
        batch's valid pixels (call once per step)."""
        weight = valid.unsqueeze(1).to(probs.dtype)  # (B, 1, H, W)
        batch_mean = (probs * weight).sum((0, 2, 3)) / weight.sum().clamp_min(1)  # (K,)
        self.predicted.lerp_(batch_mean.float(), 1 - self.momentum)
        ratio = (self.labeled / self.predicted.clamp_min(1e-6)).to(probs.dtype).view(1, -1, 1, 1)
        aligned = probs * ratio
        return aligned / aligned.sum(1, keepdim=True).clamp_min(1e-12)


class TargetRecipeMethod(Method):
    """A method whose unlabeled loss is trained on hard targets of a weak view (FixMatch, UniMatch), with the
    recipe's switches: `target_net` predicts the targets, `align` corrects them, `burning_in(step)` says
    whether the unlabeled loss is still off."""

    choices = {"teacher": TEACHERS}

    def __init__(self, model: nn.Module, cfg: TargetRecipeConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)  # checks teacher against TEACHERS (`choices`)
        if cfg.teacher == "ema" and cfg.unlabeled_bn == "labeled":
            raise SemilandError(
                "method.teacher=ema predicts targets with its own batch norm: it cannot take method.unlabeled_bn=labeled "
                "(set one of them back)"
            )
        self.teacher = ema_copy(model) if cfg.teacher == "ema" else None
        self.align = DistributionAlignment(ctx.num_classes, cfg.align_momentum) if cfg.align else None

    @property
    def target_net(self) -> nn.Module:
        return self.model if self.teacher is None else self.teacher

    def burning_in(self, step: int) -> bool:
        return in_burnin(self.cfg.burnin, step, self.ctx.max_steps)

    def observe_labeled(self, labeled: dict[str, torch.Tensor]) -> None:
        if self.align is not None:
            self.align.observe(labeled["mask"], labeled["valid"])

    def burnin_losses(self, loss_sup: torch.Tensor) -> dict[str, torch.Tensor]:
        return idle_losses(loss_sup, self.ctx.names(), "mask_ratio")

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            ema_update(self.teacher, self.model, self.cfg.ema_decay, step)


def in_burnin(fraction: float, step: int, max_steps: int) -> bool:
    """Whether `step` is in the burn-in: the first `fraction` of the steps, on the labeled crops alone."""
    return step < int(fraction * max_steps)


def idle_losses(loss_sup: torch.Tensor, names: list[str], *logged: str) -> dict[str, torch.Tensor]:
    """A step's result while the unlabeled loss is off (a burn-in): the supervised loss, and zeros for the logs
    every step of the method has (its `logged` keys, each class's target share), so the log's columns stay."""
    zero = torch.zeros((), device=loss_sup.device)
    shares = {f"target/{name}": zero for name in names}
    return semi_losses(loss_sup, zero, 0.0, **dict.fromkeys(logged, zero), **shares)


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
