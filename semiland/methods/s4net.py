"""S4Net (Wang et al., "S4Net: semi-supervised semantic segmentation ... random affine perturbations").

L = L_s + λ(t) L_u. For each unlabeled image draw two random affine transforms ϕ₁, ϕ₂, predict
f_θ(ϕ₁(x_u)) and f_θ̄(ϕ₂(x_u)), map both back with ϕ₁⁻¹, ϕ₂⁻¹ and take the MSE between the two softmax
maps over pixels valid in both (eq. 3–4). θ̄ = θ (Π-model) or the EMA of θ (mean teacher).

Config → paper: lambda_max = λ_max (2.0), rampup = fraction of training with the sigmoid ramp-up
(0.8), translate / scale_min / scale_max / rotate = the affine ranges ϕ (±0.2, 0.75–1.25, ±15°),
teacher = "pi" (θ̄ = θ) or "ema" (θ̄ = EMA(θ), decay `ema_decay`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
from semiland.methods.perturb import invert_affine, random_affine, warp, warp_valid
from semiland.methods.selection import masked_mse, teacher_probs
from semiland.methods.targets import ema_copy, ema_update


@dataclass
class S4NetConfig(UnlabeledConfig):
    lambda_max: float = 2.0
    rampup: float = limits(0.8, 0, 1)
    translate: float = limits(0.2, 0, 1)
    scale_min: float = limits(0.75, 0, 4, above=True)
    scale_max: float = limits(1.25, 0, 4, above=True)
    rotate: float = limits(15.0, 0, 180)
    teacher: str = "pi"  # pi | ema
    ema_decay: float = limits(0.99, 0, 1)


class S4Net(Method):
    name = "s4net"
    Config = S4NetConfig
    uses_unlabeled = True

    def __init__(self, model: nn.Module, cfg: S4NetConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if cfg.teacher not in ("pi", "ema"):
            raise SemilandError(f"method.teacher must be 'pi' or 'ema', got '{cfg.teacher}'")
        self.teacher = ema_copy(model) if cfg.teacher == "ema" else None

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c = self.cfg
        logits_l = self.model(labeled["image"])
        loss_sup = supervised_ce(logits_l, labeled, self.ctx.ignore_index)

        x_u = unlabeled["image"]  # (B, C, H, W)
        b, _, h, w = x_u.shape
        theta1 = random_affine(b, x_u.device, c.translate, (c.scale_min, c.scale_max), c.rotate)
        theta2 = random_affine(b, x_u.device, c.translate, (c.scale_min, c.scale_max), c.rotate)
        inv1, inv2 = invert_affine(theta1), invert_affine(theta2)
        # Views are padded by reflection: up to a third of a view lies outside the image, and blank borders
        # would pull batch-norm statistics away from real images (val mIoU fell at once with zero padding).
        # Those pixels never count in the loss: `valid` below keeps pixels inside the image both ways.
        view_1, view_2 = warp(x_u, theta1, padding="reflection"), warp(x_u, theta2, padding="reflection")
        with bn_stats_frozen(self.model):
            probs_1 = self.model(view_1).softmax(1)  # f_θ(ϕ₁(x_u)), (B, K, H, W)
            if self.teacher is None:
                probs_2 = self.model(view_2).softmax(1)  # Π-model: gradients through both branches
            else:
                probs_2 = teacher_probs(self.teacher, view_2)
        back_1, back_2 = warp(probs_1, inv1), warp(probs_2, inv2)  # ϕ⁻¹(f(ϕ(x))): back on x_u's grid
        # valid in both: inside the image after each round trip, and not nodata in x_u
        valid = warp_valid(theta1, inv1, h, w) & warp_valid(theta2, inv2, h, w) & unlabeled["valid"]
        loss_unsup = masked_mse(back_1, back_2, valid)
        lam = ramped(c.lambda_max, c.rampup, step, self.ctx.max_steps)
        return semi_losses(loss_sup, loss_unsup, lam, **{"lambda": lam, "valid_ratio": valid.float().mean()})

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            ema_update(self.teacher, self.model, self.cfg.ema_decay, step)
