"""Variational semi-supervised segmentation (the review's §2.2, eq. 3).

A variational branch on the segmenter's shared encoder (`models.generative.VariationalBranch`): the deepest
encoder features give μ and log σ², a reparameterised sample is decoded back to the input bands. Every image,
labeled or not, adds the negative ELBO; labeled images add cross-entropy:
    L = CE(S(x_l), y) + λ · [ ‖x − x̂‖² + β · KL(N(μ, σ²) ‖ N(0, I)) ]     over x ∈ x_l ∪ x_u
    KL = ½ Σ (μ² + σ² − log σ² − 1), averaged over latent elements (0 when the posterior is the prior)
Prediction runs the segmentation path alone.

Config → symbols: lambda_u = λ (1), beta = β (1; < 1 weakens the prior), latent = latent channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semiland.config import limits
from semiland.methods.base import (
    Alarm,
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
from semiland.models import model_parts
from semiland.models.generative import VariationalBranch


@dataclass
class VAEConfig(UnlabeledConfig):
    lambda_u: float = 1.0
    beta: float = 1.0
    latent: int = limits(32, 1, 4096)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over elements of KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − log σ² − 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).mean()


class VAE(Method):
    name = "vae"
    Config = VAEConfig
    uses_unlabeled = True
    alarms = (
        Alarm(
            "kl",
            50,
            lambda v: max(v) < 1e-3,
            "the latent code carries no information (KL < 0.001 for 50 steps: posterior collapse); lower method.beta",
        ),
    )

    def __init__(self, model: nn.Module, cfg: VAEConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        self.parts = model_parts(model)
        encoder, was_training = self.parts.encoder, self.parts.encoder.training
        with torch.no_grad():  # the deepest encoder feature's channel count, from a dry run in eval mode
            encoder.eval()
            deepest = self._deepest(encoder(torch.zeros(1, ctx.in_channels, 64, 64)))
            encoder.train(was_training)
        self.branch = VariationalBranch(deepest.shape[1], ctx.in_channels, cfg.latent)

    def _deepest(self, features: list[torch.Tensor]) -> torch.Tensor:
        # smp / our U-Nets return a list of features (deepest last); SegNet its (x, indices, sizes) state
        return features[-1] if torch.is_tensor(features[-1]) else features[0]

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c = self.cfg
        features = self.parts.encoder(labeled["image"])  # shared by both paths
        logits = self.parts.head(self.parts.decoder(features))
        # Unlabeled images in a pass of their own: batch norm's running statistics stay those of the labeled
        # pass (mixing the two in one batch alone cost 11 points of Dubai validation mIoU: pseudo_label.py).
        with bn_stats_frozen(self.parts.encoder):
            deepest_u = self._deepest(self.parts.encoder(unlabeled["image"]))
        x = torch.cat([labeled["image"], unlabeled["image"]])  # −ELBO on labeled and unlabeled images
        valid = torch.cat([labeled["valid"], unlabeled["valid"]])
        recon, mu, logvar = self.branch(torch.cat([self._deepest(features), deepest_u]), x.shape[-2:])
        v = valid[:, None].to(x.dtype)
        loss_rec = ((recon - x).pow(2) * v).sum() / (v.sum() * x.shape[1]).clamp_min(1.0)
        kl = kl_to_standard_normal(mu, logvar)
        loss_sup = supervised_ce(logits, labeled, self.ctx.ignore_index)
        return semi_losses(loss_sup, loss_rec + c.beta * kl, c.lambda_u, loss_rec=loss_rec, kl=kl)

    @torch.no_grad()
    def auxiliary(self, image: torch.Tensor) -> torch.Tensor:
        """The reconstruction (B, C, H, W), shown in reports beside the maps."""
        return self.branch(self._deepest(self.parts.encoder(image)), image.shape[-2:])[0]
