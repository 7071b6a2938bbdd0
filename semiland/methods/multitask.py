"""Multi-task semi-supervised learning (MiniFrance §5, Castillo-Navetty et al. 2022): segmentation plus
an unsupervised auxiliary task that shares layers with it.

    L = L_s(φ_s(x_l), y_l) + λ · L_u(φ_u(x), x),   L_u = α_rec L_rec + α_reg L_reg      (eqs. 3, 5)

over labeled and unlabeled images x alike (L_s on the labeled ones only). The network (`models/multitask.py`)
routes the auxiliary task through the shared layers and its own head only, so unlabeled images never reach
the segmentation-only layers; W-Net's auxiliary path runs through the whole first network (eq. 4).
Prediction runs the segmentation path alone.

Config → paper: network ∈ {berunda_early, berunda_late, wnet} (Fig. 9 a / b / c); aux_loss ∈ {l1, l2,
kmeans, mumford_shah} (eqs. 6, 7, 8–11, 12); lambda_u = λ (0 = the paper's default: 2 for l1 / l2, 5 for
kmeans / mumford_shah); alpha_rec, alpha_reg = α_rec, α_reg (eq. 5, both 1); clusters = K of the
clustering losses (0 = the number of classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semiland.config import limits
from semiland.errors import SemilandError
from semiland.losses import DEFAULT_LAMBDA, RECONSTRUCTS, aux_loss
from semiland.methods.base import (
    LabeledBatch,
    Losses,
    Method,
    MethodContext,
    UnlabeledBatch,
    UnlabeledConfig,
    semi_losses,
    supervised_ce,
)
from semiland.methods.network_modes import bn_stats_frozen
from semiland.models.multitask import BerundaNet, WNet

NETWORKS = ("berunda_early", "berunda_late", "wnet")


@dataclass
class MultiTaskConfig(UnlabeledConfig):
    network: str = "berunda_late"
    aux_loss: str = "l1"
    lambda_u: float = 0.0
    alpha_rec: float = 1.0
    alpha_reg: float = 1.0
    clusters: int = limits(0, 0, 1024)


class MultiTask(Method):
    name = "multitask"
    Config = MultiTaskConfig
    uses_unlabeled = True

    def __init__(self, model: nn.Module, cfg: MultiTaskConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        self.loss = aux_loss(cfg.aux_loss)
        if cfg.network not in NETWORKS:
            raise SemilandError(f"unknown method.network '{cfg.network}'; available: {', '.join(NETWORKS)}")
        if ctx.model_factory is None:
            raise SemilandError("multitask needs to build its auxiliary branch: the engine must pass a model factory")
        self.weight = cfg.lambda_u or DEFAULT_LAMBDA[cfg.aux_loss]
        # The auxiliary output: a reconstruction of the input bands, or memberships over K clusters.
        aux_channels = ctx.in_channels if cfg.aux_loss in RECONSTRUCTS else (cfg.clusters or ctx.num_classes)
        if cfg.network == "wnet":
            aux_net = ctx.model_factory(in_channels=ctx.num_classes, num_classes=aux_channels)
            self.model = WNet(model, aux_net)
        else:
            aux_net = ctx.model_factory(num_classes=aux_channels)
            self.model = BerundaNet(model, aux_net, cfg.network.removeprefix("berunda_"))

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        logits, aux_l = self.model.multitask(labeled["image"])
        loss_sup = supervised_ce(logits, labeled, self.ctx.ignore_index)
        # Unlabeled images in a pass of their own: batch norm's running statistics stay those of the labeled
        # pass (mixing the two in one batch alone cost 11 points of Dubai validation mIoU: pseudo_label.py).
        with bn_stats_frozen(self.model):
            aux_u = self.model.auxiliary(unlabeled["image"])
        x = torch.cat([labeled["image"], unlabeled["image"]])  # L_u on labeled and unlabeled images
        valid = torch.cat([labeled["valid"], unlabeled["valid"]])
        aux = torch.cat([aux_l, aux_u])
        loss_unsup = self.loss(x, aux, valid, alpha_rec=self.cfg.alpha_rec, alpha_reg=self.cfg.alpha_reg)
        return semi_losses(loss_sup, loss_unsup, self.weight)

    @torch.no_grad()
    def auxiliary(self, image: torch.Tensor) -> torch.Tensor:
        """The auxiliary output for figures: a reconstruction (B, C, H, W) or cluster indices (B, H, W)."""
        aux = self.model.auxiliary(image)
        return aux if self.cfg.aux_loss in RECONSTRUCTS else aux.argmax(1)
