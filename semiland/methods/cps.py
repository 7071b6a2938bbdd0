"""Cross pseudo supervision (Chen et al., CVPR 2021): two networks of the same architecture, initialised
differently, supervise each other on unlabeled images with their hard (argmax) predictions.

L = L_s(f₁) + L_s(f₂) + λ · [CE(f₁(x_u), argmax f₂(x_u)) + CE(f₂(x_u), argmax f₁(x_u))], optionally on
CutMix-ed unlabeled pairs (targets mixed with the same boxes). Prediction averages the two networks'
probabilities.

Config → symbols: lambda_u = λ (1.5 in the paper), cutmix_p = probability of a CutMix box;
target_bn = batch norm while predicting targets (base.TargetConfig).
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
    TargetConfig,
    UnlabeledBatch,
    semi_losses,
    supervised_ce,
)
from semiland.methods.network_modes import bn_stats_frozen, target_mode
from semiland.methods.perturb import cutmix_box, mix
from semiland.methods.selection import masked_ce, target_shares


@dataclass
class CPSConfig(TargetConfig):
    lambda_u: float = 1.5
    cutmix_p: float = limits(0.5, 0, 1)


class CPS(Method):
    name = "cps"
    Config = CPSConfig
    uses_unlabeled = True

    def __init__(self, model: nn.Module, cfg: CPSConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if ctx.model_factory is None:
            raise SemilandError("cps needs a second network: the engine must pass a model factory")
        self.model2 = ctx.model_factory()  # the same architecture, its own random initialisation

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c = self.cfg
        loss_sup = sum(
            supervised_ce(net(labeled["image"]), labeled, self.ctx.ignore_index) for net in (self.model, self.model2)
        )
        x_u, valid = unlabeled["image"], unlabeled["valid"]
        b, _, h, w = x_u.shape
        perm = torch.roll(torch.arange(b, device=x_u.device), 1)
        box = cutmix_box(b, h, w, x_u.device, c.cutmix_p)
        with bn_stats_frozen(self.model, self.model2):  # running statistics: the labeled passes' (network_modes.py)
            # targets: each network's argmax on the unmixed images (batch norm: network_modes.target_mode), mixed like the input
            with torch.no_grad(), target_mode(c.target_bn, self.model, self.model2):
                pseudo_1 = self.model(x_u).argmax(1)
                pseudo_2 = self.model2(x_u).argmax(1)
            x_mix, valid_mix = mix(x_u, x_u[perm], box), mix(valid, valid[perm], box)
            logits_1, logits_2 = self.model(x_mix), self.model2(x_mix)
        loss_unsup = masked_ce(logits_1, mix(pseudo_2, pseudo_2[perm], box), valid_mix, valid_mix) + masked_ce(
            logits_2, mix(pseudo_1, pseudo_1[perm], box), valid_mix, valid_mix
        )
        agreement = (logits_1.argmax(1) == logits_2.argmax(1)).float().mean()
        shares = target_shares(torch.cat([pseudo_1, pseudo_2]), torch.cat([valid, valid]), self.ctx.names())  # both
        return semi_losses(loss_sup, loss_unsup, c.lambda_u, agreement=agreement, **shares)

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        probs = (self.model(image).softmax(1) + self.model2(image).softmax(1)) / 2
        return probs.clamp_min(1e-8).log()  # log-probabilities: argmax and softmax behave as for logits
