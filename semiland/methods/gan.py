"""Semi-supervised segmentation with a generator (Souly et al., ICCV 2017; the review's eqs. 1–2).

The segmenter S has K + 1 outputs per pixel (the K classes and "fake") and is the GAN's discriminator;
a generator G maps noise to images with the real images' bands and value range.
    L_S = CE_K(S(x_l), y) − log(1 − p_fake(S(x_u))) − log p_fake(S(G(z)))        (G's images detached)
    L_G = −log(1 − p_fake(S(G(z))))                         (S frozen; or feature matching, below)
One backward trains both: S sees G's images detached, and L_G runs S with its parameters frozen, so each
network moves only with its own loss. G has its own optimizer (Adam). Prediction and evaluation use the K
real classes (the fake logit is dropped).

Config → paper: g_loss ∈ {"minimax": L_G above, "feature_matching": ‖mean S-features(x_u) − mean
S-features(G(z))‖² on the penultimate logits}; lambda_u = weight of the unlabeled / fake terms in L_S (1);
g_lr = G's learning rate (Adam, betas 0.5 / 0.999, the DCGAN setting); z_channels, g_width = G's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semiland.config import limits
from semiland.errors import SemilandError
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
from semiland.models.generative import Generator


@dataclass
class GANConfig(UnlabeledConfig):
    g_loss: str = "minimax"
    lambda_u: float = 1.0
    g_lr: float = limits(2e-4, 0, 10, above=True)
    z_channels: int = limits(64, 1, 1024)
    g_width: int = limits(32, 1, 1024)


def _mean_log_fake(logits: torch.Tensor, valid: torch.Tensor, fake: bool) -> torch.Tensor:
    """Mean over valid pixels of −log p_fake (fake=True) or −log(1 − p_fake), from (B, K+1, H, W) logits."""
    log_p = logits.log_softmax(1)
    log_fake = log_p[:, -1]
    log_real = torch.logsumexp(log_p[:, :-1], 1)  # log(1 − p_fake), computed stably
    term = -(log_fake if fake else log_real)
    v = valid.to(term.dtype)
    return (term * v).sum() / v.sum().clamp_min(1.0)


class GAN(Method):
    name = "gan"
    Config = GANConfig
    uses_unlabeled = True
    alarms = (
        Alarm(
            "real_fake_accuracy",
            50,
            lambda v: min(v) > 0.99,
            "the segmenter tells generated images from real ones perfectly for 50 steps: the generator has lost "
            "and its images teach nothing; raise method.g_lr or try method.g_loss=feature_matching",
        ),
        Alarm(
            "loss_g",
            50,
            lambda v: sum(v) / len(v) > 10.0,
            "the generator's loss runs away (mean > 10 over 50 steps): training is unstable",
        ),
    )

    def __init__(self, model: nn.Module, cfg: GANConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if cfg.g_loss not in ("minimax", "feature_matching"):
            raise SemilandError(f"method.g_loss must be minimax or feature_matching, got '{cfg.g_loss}'")
        if ctx.model_factory is None:
            raise SemilandError("gan needs a (K + 1)-output segmenter: the engine must pass a model factory")
        self.model = ctx.model_factory(num_classes=ctx.num_classes + 1)  # K classes + "fake"
        self.generator = Generator(ctx.in_channels, cfg.z_channels, cfg.g_width)

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c, k = self.cfg, self.ctx.num_classes
        x_u, valid_u = unlabeled["image"], unlabeled["valid"]
        b, _, h, w = x_u.shape
        bands = x_u.transpose(0, 1).flatten(1)  # (C, B·H·W)
        low, high = bands.min(1).values.detach(), bands.max(1).values.detach()  # the real images' value range
        fake = self.generator(self.generator.noise(b, h, w, x_u.device), low, high)  # (B, C, H, W)
        every = torch.ones_like(valid_u)

        logits_l = self.model(labeled["image"])
        loss_sup = supervised_ce(logits_l[:, :k], labeled, self.ctx.ignore_index)  # the K real classes
        with bn_stats_frozen(self.model):  # running statistics stay those of real labeled images
            logits_u = self.model(x_u)
            logits_fake_d = self.model(fake.detach())
            loss_real = _mean_log_fake(logits_u, valid_u, fake=False)
            loss_fake = _mean_log_fake(logits_fake_d, every, fake=True)
            with params_frozen(self.model):  # the generator's loss through a frozen segmenter
                logits_fake_g = self.model(fake)
                if c.g_loss == "minimax":
                    loss_g = _mean_log_fake(logits_fake_g, every, fake=False)
                else:  # feature matching on the segmenter's logits, averaged over batch and pixels
                    loss_g = (logits_u.detach().mean((0, 2, 3)) - logits_fake_g.mean((0, 2, 3))).pow(2).sum()
        loss_s = loss_sup + c.lambda_u * (loss_real + loss_fake)
        is_fake_u = logits_u.argmax(1) == k
        is_fake_g = logits_fake_d.argmax(1) == k
        accuracy = 0.5 * (
            (~is_fake_u & valid_u).float().sum() / valid_u.float().sum().clamp_min(1) + is_fake_g.float().mean()
        )
        return {
            "loss": loss_s + loss_g,
            "loss_segmenter": loss_s,  # with their graphs: a test back-propagates each alone
            "loss_g": loss_g,
            "loss_sup": loss_sup.detach(),
            "loss_unsup": (loss_real + loss_fake).detach(),
            "loss_real": loss_real.detach(),
            "loss_fake": loss_fake.detach(),
            "real_fake_accuracy": accuracy.detach(),
        }

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)[:, : self.ctx.num_classes]

    @torch.no_grad()
    def generate(self, batch: int, height: int, width: int, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        device = next(self.generator.parameters()).device
        return self.generator(self.generator.noise(batch, height, width, device), low.to(device), high.to(device))

    def param_groups(self) -> list[ParamGroup]:
        return [
            ParamGroup(list(self.model.parameters())),
            ParamGroup(
                list(self.generator.parameters()),
                name="generator",
                optimizer="adam",
                lr=self.cfg.g_lr,
                extra={"betas": (0.5, 0.999), "weight_decay": 0.0},
            ),  # fmt: skip
        ]
