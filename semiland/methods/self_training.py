"""Offline self-training in rounds (the review's §3.1, Table 1): the student of one round.

`semiland self-train` runs the rounds: a teacher trained on labeled data predicts the unlabeled set; its
confident pixels (max p ≥ τ, or the top-q fraction of each predicted class so rare classes survive) are
saved as pseudo-label masks; a fresh student learns from labeled + pseudo-labeled images with this loss,
L = CE(f(x_l), y_l) + λ · CE(f(x_u), ŷ_u) (ignored where no pseudo-label was kept); it becomes the next
teacher. Each round's pseudo-labels are reported (coverage, class shares, accuracy where labels exist).

Config → symbols: lambda_u = λ, rounds = R, threshold = τ, top_q = q (> 0 selects per-class top-q).
"""

from __future__ import annotations

from dataclasses import dataclass

from semiland.config import limits
from semiland.methods.base import (
    LabeledBatch,
    Losses,
    Method,
    UnlabeledBatch,
    UnlabeledConfig,
    semi_losses,
    supervised_ce,
)
from semiland.methods.network_modes import bn_stats_frozen


@dataclass
class SelfTrainingConfig(UnlabeledConfig):
    lambda_u: float = 1.0
    rounds: int = limits(2, 1, 100)
    threshold: float = limits(0.9, 0, 1)
    top_q: float = limits(0.0, 0, 1)


class SelfTraining(Method):
    name = "self_training"
    Config = SelfTrainingConfig
    uses_unlabeled = True
    unlabeled_masks = True  # the unlabeled stream must carry saved pseudo-labels (data.pseudo_labels)

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        loss_sup = supervised_ce(self.model(labeled["image"]), labeled, self.ctx.ignore_index)
        # Pseudo-labeled images in a pass of their own, batch-norm running statistics from the labeled pass: one
        # joint batch collapsed online pseudo-labeling on Dubai even with its loss on (pseudo_label.py).
        with bn_stats_frozen(self.model):
            logits_u = self.model(unlabeled["image"])
        loss_unsup = supervised_ce(logits_u, unlabeled, self.ctx.ignore_index)  # pseudo masks, 255 = not kept
        return semi_losses(loss_sup, loss_unsup, self.cfg.lambda_u)
