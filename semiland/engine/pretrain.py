"""Self-supervised pretraining of the encoder on the run's own images (`train.pretrain_steps` > 0).

Before the method trains, the encoder (as model.encoder_weights gives it: ImageNet, or random) learns from
crops of every training image, labeled or not, their masks unused — the unlabeled imagery a user has in
bulk. Each step (DenseCL-style dense contrast, `losses.contrastive`):

    x                   a batch of crops (B, C, S, S), S = 2 · data.crop_size (more ground per position)
    v1 = P(x)           a photometric change (`strong_photometric`: gain, bias, noise, blur), one gain and bias
                        for all bands: the ground's spectrum is what tells water from vegetation, so the views
                        keep its shape (with per-band gains, first version, water lost 14–20 IoU points on the
                        Dubai folds: docs/benchmarks-log.md)
    v2 = P'(g(x))       another one, after g: one of the 8 flips / right-angle rotations of the square
    z = head(f(v))      (B, 128, S/16, S/16): the encoder's stride-16 and stride-32 features (the latter
                        upsampled) through a two-layer 1×1 head
    L = InfoNCE(z1, g⁻¹(z2))   each position pulled to the same ground in the other view, pushed from every
                        other position of the batch

so the encoder learns features that name the ground whatever the radiometry and orientation of the view.
The head is dropped; the encoder goes to RUN/pretrain/encoder.pt and every network of the run starts from it
(model.weights_path), a mean teacher's or CPS's second network included. The file is a plain encoder state
dict: `model.weights_path=RUN/pretrain/encoder.pt` reuses it in another run of the same encoder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from semiland.config import Config
from semiland.data.datamodule import SegDataModule
from semiland.data.prepare import PreparedData
from semiland.engine.task import lr_schedule, seed_step
from semiland.errors import SemilandError
from semiland.io import atomic_path
from semiland.losses.contrastive import dense_info_nce
from semiland.methods.perturb import strong_photometric
from semiland.models import build_model

TEMPERATURE = 0.2  # τ of DenseCL / MoCo v2
HIDDEN, EMBED = 256, 128  # the projection head's widths (DenseCL's dense head: 2048 → 128 on a ResNet-50)
WARMUP = 0.1  # share of the steps with a linear learning-rate warm-up


def d4(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """x (B, C, H, W) turned k quarter turns, then mirrored left-right when `flip`."""
    x = torch.rot90(x, k, (-2, -1))
    return x.flip(-1) if flip else x


def d4_inverse(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The inverse of `d4(·, k, flip)`: d4_inverse(d4(x, k, f), k, f) == x."""
    x = x.flip(-1) if flip else x
    return torch.rot90(x, -k, (-2, -1))


class EncoderPretraining(L.LightningModule):
    """The encoder plus a projection head, trained by dense contrast on crops from `datamodule`."""

    def __init__(self, encoder: nn.Module, cfg: Config, datamodule: SegDataModule):
        super().__init__()
        self.encoder, self.cfg, self.data = encoder, cfg, datamodule
        deep, mid = encoder.out_channels[-1], encoder.out_channels[-2]
        self.head = nn.Sequential(
            nn.Conv2d(deep + mid, HIDDEN, 1), nn.BatchNorm2d(HIDDEN), nn.ReLU(inplace=True), nn.Conv2d(HIDDEN, EMBED, 1)
        )

    @property
    def train_step(self) -> int:  # StepProgress counts it
        return self.global_step

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) → (B, EMBED, S/16, S/16)."""
        features = self.encoder(x)
        mid = features[-2]
        deep = F.interpolate(features[-1], size=mid.shape[-2:], mode="nearest")  # stride 32 → 16 (or same: dilated)
        return self.head(torch.cat([mid, deep], 1))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        seed_step(self.cfg.train.seed, self.global_rank, self.global_step)  # views reproducible, as the run's steps
        x, valid = batch["image"], batch["valid"]
        k, flip = int(torch.randint(4, ())), bool(torch.rand(()) < 0.5)
        z1 = self.embed(strong_photometric(x, per_band=False))
        z2 = d4_inverse(self.embed(strong_photometric(d4(x, k, flip), per_band=False)), k, flip)
        # a position counts where every pixel under it holds data (nodata and padding excluded)
        keep = F.adaptive_max_pool2d((~valid)[:, None].float(), z1.shape[-2:])[:, 0] == 0
        loss = dense_info_nce(z1, z2, keep, TEMPERATURE)
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=False)
        return loss

    def train_dataloader(self) -> Any:
        return self.data.pretraining_loader(2 * self.cfg.data.crop_size, self.cfg.train.pretrain_steps)

    def configure_optimizers(self) -> Any:
        steps = self.cfg.train.pretrain_steps
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.cfg.train.pretrain_lr, weight_decay=self.cfg.optim.weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule("cosine", steps, int(WARMUP * steps), 1.0))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def check_pretrainable(cfg: Config, model: nn.Module) -> None:
    """Refuse `train.pretrain_steps` for a network without a multi-level encoder (smp's), before any work."""
    if cfg.train.pretrain_steps and not hasattr(getattr(model, "encoder", None), "out_channels"):
        raise SemilandError(
            f"train.pretrain_steps={cfg.train.pretrain_steps}: model.arch={cfg.model.arch} has no encoder to "
            "pretrain; use an encoder architecture (e.g. model.arch=unet) or train.pretrain_steps=0"
        )


def pretrain_encoder(cfg: Config, data: PreparedData, path: Path, trainer: L.Trainer) -> None:
    """Pretrain the run's encoder (as `cfg.model` builds it) for train.pretrain_steps steps of `trainer` (the
    run's devices and precision, no checkpoints) and save its state dict to `path`."""
    model = build_model(cfg.model, len(data.mean), data.spec.classes.num_classes)
    check_pretrainable(cfg, model)
    encoder = model.encoder
    own = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, pseudo_labels=""))  # images only
    trainer.fit(EncoderPretraining(encoder, own, SegDataModule(own, data, use_unlabeled=False)))
    if trainer.is_global_zero:
        with atomic_path(path) as tmp:
            torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, tmp)
    trainer.strategy.barrier()
