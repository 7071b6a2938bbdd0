"""Adversarial semi-supervised segmentation (Hung et al., BMVC 2018), the review's §2 and S4Net's baseline.

A fully-convolutional discriminator D sees class-probability maps and outputs per-pixel confidence logits.
    L_D = BCE(D(onehot(y)), 1) + BCE(D(softmax(S(x_l))), 0)                       (over valid labeled pixels)
    L_S = CE(S(x_l), y) + λ_adv · BCE(D(S(x_l)), 1) + λ_adv,u · BCE(D(S(x_u)), 1)
          + λ_semi · CE(S(x_u), argmax S(x_u)) on pixels where σ(D(S(x_u))) > T_semi (after the warm-up)
One backward trains both: L_D sees the segmenter's maps detached, and the adversarial terms of L_S run D
with its parameters frozen, so D moves only with L_D and S only with L_S. D has its own optimizer (Adam).

Config → paper: lambda_adv = λ_adv (0.01, labeled), lambda_adv_u = λ_adv on unlabeled (0.001), lambda_semi
= λ_semi (0.1), t_semi = T_semi (0.2), semi_start = fraction of training before the semi term (0.25, i.e.
5 000 of 20 000 iterations), d_lr = D's learning rate (1e-4, Adam betas 0.9 / 0.99), d_width = D's width.
Instability (the review's Table 1; S4Net saw this method fall below supervised) is watched: the engine warns
when D wins completely or the adversarial loss runs away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semiland.config import limits
from semiland.methods.base import (
    Alarm,
    LabeledBatch,
    Losses,
    Method,
    MethodContext,
    ParamGroup,
    UnlabeledBatch,
    UnlabeledConfig,
    supervised_ce,
)
from semiland.methods.network_modes import bn_stats_frozen, params_frozen
from semiland.methods.selection import masked_ce
from semiland.models.generative import FCDiscriminator


@dataclass
class AdversarialConfig(UnlabeledConfig):
    lambda_adv: float = 0.01
    lambda_adv_u: float = 0.001
    lambda_semi: float = 0.1
    t_semi: float = limits(0.2, 0, 1)
    semi_start: float = limits(0.25, 0, 1)
    d_lr: float = limits(1e-4, 0, 10, above=True)
    d_width: int = limits(64, 1, 1024)


def bce(logits: torch.Tensor, target: float, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of (B, 1, H, W) logits against a constant target, averaged over valid (B, H, W)."""
    loss = F.binary_cross_entropy_with_logits(logits[:, 0], torch.full_like(logits[:, 0], target), reduction="none")
    v = valid.to(loss.dtype)
    return (loss * v).sum() / v.sum().clamp_min(1.0)


class Adversarial(Method):
    name = "adversarial"
    Config = AdversarialConfig
    uses_unlabeled = True
    alarms = (
        Alarm(
            "d_accuracy",
            50,
            lambda v: min(v) > 0.99,
            "the discriminator wins completely (accuracy > 99 % for 50 steps): the segmenter's adversarial signal "
            "has vanished; lower method.d_lr or method.lambda_adv",
        ),
        Alarm(
            "loss_adv",
            50,
            lambda v: sum(v) / len(v) > 5.0,
            "the adversarial loss runs away (mean > 5 over 50 steps): training is unstable; lower method.d_lr",
        ),
    )

    def __init__(self, model: nn.Module, cfg: AdversarialConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        self.discriminator = FCDiscriminator(ctx.num_classes, cfg.d_width)

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c, k = self.cfg, self.ctx.num_classes
        mask, valid_l = labeled["mask"], labeled["valid"] & (labeled["mask"] != self.ctx.ignore_index)
        logits_l = self.model(labeled["image"])  # (B, K, H, W)
        with bn_stats_frozen(self.model):
            logits_u = self.model(unlabeled["image"])
        probs_l, probs_u = logits_l.softmax(1), logits_u.softmax(1)

        # Discriminator: ground truth → 1, predictions (detached) → 0.
        onehot = F.one_hot(mask.clamp(0, k - 1), k).permute(0, 3, 1, 2).float()
        d_real, d_fake = self.discriminator(onehot), self.discriminator(probs_l.detach())
        loss_d = bce(d_real, 1.0, valid_l) + bce(d_fake, 0.0, valid_l)

        # Segmenter: fool D (D frozen), and learn from unlabeled pixels D trusts.
        with params_frozen(self.discriminator):
            conf_l, conf_u = self.discriminator(probs_l), self.discriminator(probs_u)
        adv_l, adv_u = bce(conf_l, 1.0, labeled["valid"]), bce(conf_u, 1.0, unlabeled["valid"])
        trusted = (torch.sigmoid(conf_u[:, 0]) > c.t_semi).detach() & unlabeled["valid"]
        semi_weight = c.lambda_semi if step >= c.semi_start * self.ctx.max_steps else 0.0  # after the warm-up
        loss_semi = masked_ce(logits_u, logits_u.argmax(1).detach(), trusted, unlabeled["valid"])
        loss_sup = supervised_ce(logits_l, labeled, self.ctx.ignore_index)
        loss_unsup = c.lambda_adv_u * adv_u + semi_weight * loss_semi  # the terms the unlabeled batch drives
        loss_s = loss_sup + c.lambda_adv * adv_l + loss_unsup
        d_accuracy = (
            0.5
            * (((d_real[:, 0] > 0) & valid_l).sum() + ((d_fake[:, 0] < 0) & valid_l).sum())
            / valid_l.sum().clamp_min(1)
        )
        return {
            "loss": loss_s + loss_d,
            "loss_segmenter": loss_s,  # with their graphs: a test back-propagates each alone
            "loss_d": loss_d,
            "loss_sup": loss_sup.detach(),
            "loss_unsup": loss_unsup.detach(),
            "loss_adv": (0.5 * (adv_l + adv_u)).detach(),  # unweighted BCE: the alarm's scale
            "loss_semi": loss_semi.detach(),
            "d_accuracy": d_accuracy.detach().float(),
            "semi_ratio": trusted.float().mean(),
        }

    def param_groups(self) -> list[ParamGroup]:
        return [
            ParamGroup(list(self.model.parameters())),
            ParamGroup(
                list(self.discriminator.parameters()),
                name="discriminator",
                optimizer="adam",
                lr=self.cfg.d_lr,
                extra={"betas": (0.9, 0.99), "weight_decay": 0.0},
            ),
        ]
