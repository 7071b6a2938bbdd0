"""DLLR: difference-complementary learning and label reassignment for optical + SAR semi-supervised
segmentation (Northwestern Polytechnical University, IEEE TIP 34, 2025). Only the abstract is public; this
is our reading of it (../shared/docs/METHODS.md), one switch per component so each can be ablated.

Input: the stacked (B, C_opt + C_sar, H, W) pair (data/paired.py), split by `ctx.channels`.
1. Two branches, one network per modality; the fused prediction averages their class probabilities.
   Labeled: L_s = CE(optical) + CE(SAR) + NLL(fused).
2. `masking`: on unlabeled pairs, random patches are hidden from one modality or the other, never both
   (ratios mask_optical / mask_sar, patch side mask_patch), so each branch must do without what the other sees.
3. `complementary` (difference-guided complementary learning): on the unmasked views, where the branches'
   argmaxes differ, the less confident branch learns the more confident one's label, weighted by the
   confidence gap; where they agree, the two masked-view distributions are pulled together (MSE).
4. `reassign` (label reassignment as optimal transport): pseudo-labels keep the argmax where max p ≥
   keep_threshold; the other pixels of the batch are reassigned by Sinkhorn (losses/transport.py) with the
   class marginal r estimated from labeled masks (running average, momentum class_momentum). The abstract's
   "multi-level" reassignment, read as confidence strata (`levels`):
   - "one" (the default; our first reading): kept ≥ τ_keep, every other pixel of the batch transported with r.
     Against "three" on Dubai's simulated SAR (2 labeled images, seeds 0–1, paired on one machine) "three" was
     level on validation (+0.54) and behind on the test tile (−1.97), within DLLR's own run-to-run spread
     (the same seed on two CPUs: SD 2.3), so the default stays (docs/benchmarks-log.md, the sar set);
   - "three": kept ≥ τ_keep; τ_drop ≤ max p < τ_keep transported with the *residual* marginal — r less the
     shares the kept pixels already give each class, so transport fills the classes the confident labels
     under-represent instead of spreading r again; max p < τ_drop ignored (no pseudo-label at all: too
     uncertain even to be reassigned).
   Feature-scale levels (reassigning on several decoder resolutions) are a reading we did not build: the
   abstract does not say the scales, and the branches' decoders already fuse them.
5. `cps` (multimodal cross pseudo supervision): the optical branch's pseudo-labels supervise the SAR branch
   on its masked view and vice versa.
L = L_s + λ · (L_cps + L_comp). With every switch off but `cps` it is the multimodal CPS baseline.
Config → symbols: lambda_u = λ, ot_epsilon = ε, keep_threshold = τ_keep, drop_threshold = τ_drop (levels
"three" only), class_momentum = m;
target_bn = batch norm while predicting targets (base.TargetConfig).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semiland.config import MAX_SIDE, limits
from semiland.errors import SemilandError
from semiland.losses.transport import sinkhorn
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
from semiland.methods.selection import masked_ce

LEVELS = ("one", "three")


@dataclass
class DLLRConfig(TargetConfig):
    masking: bool = True
    complementary: bool = True
    reassign: bool = True
    cps: bool = True
    lambda_u: float = 1.0
    mask_optical: float = limits(0.3, 0, 1, below=True)
    mask_sar: float = limits(0.3, 0, 1, below=True)
    mask_patch: int = limits(16, 1, MAX_SIDE)
    keep_threshold: float = limits(0.9, 0, 1)
    levels: str = "one"  # reassignment strata: "one" (kept / transported) | "three" (kept / transported / ignored)
    drop_threshold: float = limits(0.3, 0, 1)  # τ_drop, levels "three": below it a pixel gets no pseudo-label
    ot_epsilon: float = limits(0.05, 0, 100, above=True)
    class_momentum: float = limits(0.99, 0, 1)


def fuse(logits_o: torch.Tensor, logits_s: torch.Tensor) -> torch.Tensor:
    """The fused prediction: log of the mean of the two branches' class probabilities, (B, K, H, W)."""
    return ((logits_o.softmax(1) + logits_s.softmax(1)) / 2).clamp_min(1e-8).log()


class TwoBranch(nn.Module):
    """One network per modality over the stacked input; forward gives the fused log-probabilities."""

    def __init__(self, optical: nn.Module, sar: nn.Module, optical_channels: int) -> None:
        super().__init__()
        self.optical, self.sar, self.split = optical, sar, optical_channels

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.optical(x[:, : self.split]), self.sar(x[:, self.split :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fuse(*self.branches(x))


def asymmetric_masks(b: int, h: int, w: int, patch: int, p_opt: float, p_sar: float, device: torch.device) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """(keep_optical, keep_sar), each (B, 1, H, W) of 0 / 1: a patch is hidden from at most one modality."""
    gh, gw = -(-h // patch), -(-w // patch)
    u = torch.rand(b, 1, gh, gw, device=device)
    hide_opt, hide_sar = u < p_opt, (u >= p_opt) & (u < p_opt + p_sar)  # disjoint by construction
    up = lambda m: F.interpolate((~m).float(), scale_factor=patch, mode="nearest")[..., :h, :w]  # noqa: E731
    return up(hide_opt), up(hide_sar)


class DLLR(Method):
    name = "dllr"
    Config = DLLRConfig
    uses_unlabeled = True
    # the share of valid unlabeled pixels where the branches' argmaxes differ (what complementary learning
    # works on) and the two unlabeled losses, plotted by the run report
    signals = ("disagreement", "loss_cps", "loss_comp")
    heads = ("optical", "sar")  # `semiland test` also scores each branch alone: what each modality carries
    choices = {"levels": LEVELS}

    def __init__(self, model: nn.Module, cfg: DLLRConfig, ctx: MethodContext) -> None:
        super().__init__(model, cfg, ctx)
        if len(ctx.channels) != 2:
            raise SemilandError(
                f"dllr needs optical + SAR input (two modalities), got band groups {ctx.channels}: use a paired "
                "preset (sen1floods11, whu_opt_sar, paired) with data.modality=both, or data.simulate_sar=true "
                "to try it on optical images alone"
            )
        default_drop = DLLRConfig.__dataclass_fields__["drop_threshold"].default
        if cfg.levels == "three" and not cfg.drop_threshold < cfg.keep_threshold:
            raise SemilandError(
                f"method.drop_threshold={cfg.drop_threshold} must be below method.keep_threshold={cfg.keep_threshold}: "
                "pixels between the two are reassigned"
            )
        if (cfg.levels == "one" or not cfg.reassign) and cfg.drop_threshold != default_drop:
            raise SemilandError(
                "method.drop_threshold is read only with method.levels=three and method.reassign=true; remove it or "
                "give method.levels=three"
            )
        if cfg.levels == "three" and not cfg.reassign:
            raise SemilandError("method.levels=three stratifies the label reassignment: it needs method.reassign=true")
        if ctx.model_factory is None:
            raise SemilandError("dllr builds one network per modality: the engine must pass a model factory")
        c_opt, c_sar = ctx.channels
        self.model = TwoBranch(ctx.model_factory(in_channels=c_opt), ctx.model_factory(in_channels=c_sar), c_opt)
        self.register_buffer("class_marginal", torch.full((ctx.num_classes,), 1.0 / ctx.num_classes))

    def predict_head(self, image: torch.Tensor, head: str) -> torch.Tensor:
        net = self.model
        return net.optical(image[:, : net.split]) if head == "optical" else net.sar(image[:, net.split :])

    def predict_with_heads(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits_o, logits_s = self.model.branches(image)  # each branch once: the fused map is made of the two
        return fuse(logits_o, logits_s), {"optical": logits_o, "sar": logits_s}

    @torch.no_grad()
    def _update_marginal(self, mask: torch.Tensor) -> None:
        labeled = mask[mask != self.ctx.ignore_index]
        if labeled.numel():
            freq = torch.bincount(labeled, minlength=self.ctx.num_classes)[: self.ctx.num_classes].float()
            m = self.cfg.class_momentum
            self.class_marginal.mul_(m).add_((1 - m) * freq / freq.sum())

    @torch.no_grad()
    def pseudo_labels(self, probs: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, H, W) probabilities → (B, H, W) labels (argmax, or reassigned by OT where unsure) and where
        they supervise (valid; with levels "three", not below τ_drop)."""
        c = self.cfg
        conf, labels = probs.max(1)
        if not c.reassign:
            return labels, valid
        kept = (conf >= c.keep_threshold) & valid
        used = valid & (conf >= c.drop_threshold) if c.levels == "three" else valid
        unsure = used & ~kept
        if unsure.any():
            marginal = self.class_marginal
            if c.levels == "three":  # what the kept pixels leave of each class's expected share of the batch
                have = torch.bincount(labels[kept], minlength=self.ctx.num_classes).float()
                residual = (marginal * used.sum() - have).clamp_min(0)
                marginal = residual / residual.sum() if residual.sum() > 0 else marginal
            scores = probs.permute(0, 2, 3, 1)[unsure].clamp_min(1e-8).log()  # (N, K)
            plan = sinkhorn(scores, marginal, c.ot_epsilon)
            labels = labels.clone()
            labels[unsure] = plan.argmax(1)
        return labels, used

    def training_step(self, labeled: LabeledBatch, unlabeled: UnlabeledBatch | None, step: int) -> Losses:
        c, net = self.cfg, self.model
        logits_o, logits_s = net.branches(labeled["image"])
        loss_sup = sum(
            supervised_ce(z, labeled, self.ctx.ignore_index) for z in (logits_o, logits_s, fuse(logits_o, logits_s))
        )
        self._update_marginal(labeled["mask"])

        x_u, valid = unlabeled["image"], unlabeled["valid"]
        every = torch.ones_like(valid)
        two_passes = c.masking or c.target_bn == "running"  # else the student's own outputs are the targets
        with bn_stats_frozen(net):  # running statistics stay those of the labeled pass
            if two_passes:
                with (
                    torch.no_grad(),
                    target_mode(c.target_bn, net),
                ):  # unmasked views (network_modes.target_mode): teachers
                    p_o, p_s = (z.softmax(1) for z in net.branches(x_u))
            if c.masking:
                keep_o, keep_s = asymmetric_masks(x_u.shape[0], *x_u.shape[-2:], c.mask_patch, c.mask_optical, c.mask_sar, x_u.device)  # fmt: skip
                x_u = torch.cat([x_u[:, : net.split] * keep_o, x_u[:, net.split :] * keep_s], 1)
            student_o, student_s = net.branches(x_u)
        if not two_passes:  # same views, same batch-norm mode: one pass (tests/test_optical_sar.py checks equality)
            p_o, p_s = (z.detach().softmax(1) for z in (student_o, student_s))
        loss_cps = loss_comp = torch.zeros((), device=x_u.device)
        if c.cps:
            (label_o, use_o), (label_s, use_s) = self.pseudo_labels(p_o, valid), self.pseudo_labels(p_s, valid)
            # normalised by every pixel either way: an ignored stratum lowers the loss, it does not reweight the rest
            loss_cps = masked_ce(student_s, label_o, use_o, every) + masked_ce(student_o, label_s, use_s, every)
        disagree = torch.zeros_like(valid)
        if c.complementary:
            (conf_o, arg_o), (conf_s, arg_s) = p_o.max(1), p_s.max(1)
            disagree = (arg_o != arg_s) & valid
            gap = (conf_o - conf_s).abs()
            o_leads = conf_o > conf_s  # the more confident branch teaches the other where they disagree
            ce_s = F.cross_entropy(student_s, arg_o, reduction="none")  # (B, H, W)
            ce_o = F.cross_entropy(student_o, arg_s, reduction="none")
            learn = torch.where(o_leads, ce_s, ce_o) * gap * disagree
            agree = valid & ~disagree
            mse = (student_o.softmax(1) - student_s.softmax(1)).pow(2).sum(1) * agree
            loss_comp = (learn.sum() + mse.sum()) / valid.sum().clamp_min(1)
        return semi_losses(loss_sup, loss_cps + loss_comp, c.lambda_u, loss_cps=loss_cps, loss_comp=loss_comp,
                           disagreement=disagree.float().mean())  # fmt: skip
