"""Mean teacher (Tarvainen & Valpola 2017; the review's consistency training, eq. 4).

The student sees a strong view of x_u (band-agnostic photometric perturbation); the EMA teacher sees the
weak view; L = L_s + λ(t) · MSE(softmax(student), softmax(teacher)) over valid pixels.

Config → symbols: lambda_max = λ_max, rampup = ramp-up fraction of training, ema_decay = α,
predict_with = which network evaluation uses ("teacher", the usual choice, or "student"); photometric and
blur_p = the student view's per-band change strength and blur probability (as FixMatch's strong view).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semiland.config import limits
from semiland.errors import SemilandError
from semiland.methods.base import (
    LabeledBatch,
    Losses,
    Method,
    MethodContext,
    UnlabeledBatch,
    UnlabeledConfig,
    ramped,
    semi_losses,
    supervised_ce,
)
from semiland.methods.network_modes import bn_stats_frozen
from semiland.methods.perturb import random_flip, strong_photometric
from semiland.methods.selection import masked_mse, teacher_probs
from semiland.methods.targets import ema_copy, ema_update


@dataclass
class MeanTeacherConfig(UnlabeledConfig):
    lambda_max: float = 2.0  # 10 let consistency outweigh the supervised loss on Dubai (validation 24.9, #3)
    rampup: float = limits(0.4, 0, 1)
    ema_decay: float = limits(0.99, 0, 1)
    predict_with: str = "teacher"  # teacher | student
    # the student's view (perturb.strong_photometric): Dubai's classes differ by their band values, and the
    # per-band changes at strength 1 cost a supervised model a third of its accuracy (docs/benchmarks.md)
    photometric: float = limits(1.0, 0, 2.5)
    blur_p: float = limits(0.5, 0, 1)


class MeanTeacher(Method):
    name = "mean_teacher"
    Config = MeanTeacherConfig
    uses_unlabeled = True

    def __init__(self, model: nn.Module, cfg: MeanTeacherConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if cfg.predict_with not in ("teacher", "student"):
            raise SemilandError(f"method.predict_with must be 'teacher' or 'student', got '{cfg.predict_with}'")
        self.teacher = ema_copy(model)

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c = self.cfg
        loss_sup = supervised_ce(self.model(labeled["image"]), labeled, self.ctx.ignore_index)
        x_w, valid = random_flip(unlabeled["image"], unlabeled["valid"])
        probs_u_teacher = teacher_probs(self.teacher, x_w)  # (B, K, H, W), no gradient
        # The student's forward runs outside no_grad: its consistency loss must reach its weights.
        with bn_stats_frozen(self.model):  # running statistics stay those of the labeled pass (see network_modes.py)
            probs_u_student = self.model(strong_photometric(x_w, c.blur_p, c.photometric)).softmax(1)
        loss_unsup = masked_mse(probs_u_student, probs_u_teacher, valid)
        lam = ramped(c.lambda_max, c.rampup, step, self.ctx.max_steps)
        return semi_losses(loss_sup, loss_unsup, lam, **{"lambda": lam})

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return (self.teacher if self.cfg.predict_with == "teacher" else self.model)(image)

    def after_step(self, step: int) -> None:
        ema_update(self.teacher, self.model, self.cfg.ema_decay, step)
