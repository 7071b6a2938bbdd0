"""Supervised baseline: cross-entropy on labeled pixels only (review §4; S4Net "baseline").

The oracle of every comparison is this method with `data.oracle=true` (every training image labeled).
"""

from __future__ import annotations

from semiland.methods.base import LabeledBatch, Losses, Method, MethodConfig, UnlabeledBatch, supervised_ce


class Supervised(Method):
    name = "supervised"
    Config = MethodConfig

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        logits_l = self.model(labeled["image"])  # (B, K, H, W)
        loss_sup = supervised_ce(logits_l, labeled, self.ctx.ignore_index)
        return {"loss": loss_sup, "loss_sup": loss_sup.detach()}
