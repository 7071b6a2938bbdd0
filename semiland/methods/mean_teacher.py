"""Mean teacher (Tarvainen & Valpola 2017; the review's consistency training, eq. 4).

The student sees a strong view of x_u (band-agnostic photometric perturbation); the EMA teacher sees the
weak view; L = L_s + λ(t) · MSE(softmax(student), softmax(teacher)) over valid pixels.

Config → symbols: lambda_max = λ_max, rampup = ramp-up fraction of training, ema_decay = α,
predict_with = which network evaluation uses ("teacher", the usual choice, or "student").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semiland.errors import SemilandError
from semiland.methods.base import (
    Method,
    MethodConfig,
    ema_copy,
    ema_update,
    sigmoid_rampup,
    supervised_ce,
    teacher_probs,
)
from semiland.methods.perturb import random_flip, strong_photometric


@dataclass
class MeanTeacherConfig(MethodConfig):
    lambda_max: float = 10.0
    rampup: float = 0.4
    ema_decay: float = 0.99
    predict_with: str = "teacher"  # teacher | student


class MeanTeacher(Method):
    name = "mean_teacher"
    Config = MeanTeacherConfig
    uses_unlabeled = True

    def __init__(self, model, cfg: MeanTeacherConfig, ctx):
        super().__init__(model, cfg, ctx)
        if cfg.predict_with not in ("teacher", "student"):
            raise SemilandError(f"method.predict_with must be 'teacher' or 'student', got '{cfg.predict_with}'")
        self.teacher = ema_copy(model)

    def training_step(self, labeled, unlabeled, step):
        c = self.cfg
        loss_sup = supervised_ce(self.model(labeled["image"]), labeled, self.ctx.ignore_index)
        x_w, valid = random_flip(unlabeled["image"], unlabeled["valid"])
        probs_u_teacher = teacher_probs(self.teacher, x_w)  # (B, K, H, W), no gradient
        # The student's forward runs outside no_grad: its consistency loss must reach its weights.
        probs_u_student = self.model(strong_photometric(x_w)).softmax(1)
        sq = ((probs_u_student - probs_u_teacher) ** 2).sum(1)  # (B, H, W)
        loss_unsup = (sq * valid).sum() / valid.sum().clamp_min(1)
        lam = c.lambda_max * sigmoid_rampup(step, int(c.rampup * self.ctx.max_steps))
        return {
            "loss": loss_sup + lam * loss_unsup,
            "loss_sup": loss_sup.detach(),
            "loss_unsup": loss_unsup.detach(),
            "lambda": torch.tensor(lam),
        }

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return (self.teacher if self.cfg.predict_with == "teacher" else self.model)(image)

    def after_step(self, step: int) -> None:
        ema_update(self.teacher, self.model, self.cfg.ema_decay, step)
