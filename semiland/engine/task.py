"""SegTask: the one LightningModule. It runs any Method and never knows which one.

Manual optimisation: zero every optimizer, one backward of `loss`, step every optimizer and scheduler,
then `method.after_step`. Precision, devices, DDP, clipping, checkpoints and loggers come from Lightning.
Evaluation predicts whole images by sliding window and accumulates one confusion matrix (reduced across
ranks by torchmetrics).
"""

from __future__ import annotations

import math
import random
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics.classification import MulticlassConfusionMatrix

from semiland.config import Config, OptimConfig
from semiland.data.classes import ClassTable
from semiland.engine.checkpoint import FORMAT
from semiland.engine.metrics import confusion_metrics
from semiland.engine.sliding import Logits, at_scale, class_indices, sliding_window_logits
from semiland.errors import SemilandError
from semiland.io import atomic_write_json
from semiland.methods.base import Alarm, Method, ParamGroup

OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(group: ParamGroup, cfg: OptimConfig) -> torch.optim.Optimizer:
    name, lr = group.optimizer or cfg.name, group.lr if group.lr is not None else cfg.lr * group.lr_scale
    if name == "sgd":
        kwargs = {"momentum": cfg.momentum, "weight_decay": cfg.weight_decay}
        return torch.optim.SGD(group.params, lr=lr, **{**kwargs, **group.extra})
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        kwargs = {"betas": tuple(cfg.betas), "weight_decay": cfg.weight_decay, "fused": _fusable(group.params)}
        return cls(group.params, lr=lr, **{**kwargs, **group.extra})
    raise SemilandError(f"unknown optim.name '{name}'; use one of {', '.join(OPTIMIZERS)}")


def _fusable(params: list[torch.Tensor]) -> bool | None:
    """Adam(W)'s fused kernel where torch has one for the parameters' device (CPU, CUDA): one pass over the
    weights instead of ~10 (0.013 vs 0.083 s per step for the Dubai sweep's 12.5 M-parameter U-Net on one CPU
    thread, a quarter of its training step). The same update rule; results differ from the default
    (for-each) kernel at rounding level (~1e-7 after 50 steps), as between thread counts. None: torch's default."""
    ok = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if params and ok else None


def lr_schedule(schedule: str, steps: int, warmup: int, power: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine / poly decay to 0, or constant. A closure on purpose: LambdaLR saves a
    callable object's attributes in checkpoints, which would pin a resumed run to the old `train.steps`."""
    if schedule not in ("cosine", "poly", "constant"):
        raise SemilandError(f"unknown optim.schedule '{schedule}'; use cosine, poly or constant")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, steps - warmup))
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if schedule == "poly":
            return (1 - t) ** power
        return 1.0

    return factor


NOTHING_KEPT = (
    "no pseudo-label was kept in the whole run (every unlabeled pixel stayed under method.threshold), so the "
    "unlabeled images taught nothing and this run is the supervised run: lower method.threshold or set method.top_q"
)


def seed_step(seed: int, rank: int, step: int) -> None:
    """Seed torch's, numpy's and Python's global generators for one training step of one process."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2)
    torch.manual_seed(int(state[0]))
    np.random.seed(int(state[1]))
    random.seed(int(state[1]))


def _channels_last(batch: dict[str, Any] | None) -> dict[str, Any] | None:
    if batch is None:
        return None
    return {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}


class SegTask(L.LightningModule):
    def __init__(
        self, method: Method, cfg: Config, classes: ClassTable, mean: list[float], std: list[float], min_size: int = 32
    ):
        super().__init__()
        self.method, self.cfg, self.classes = method, cfg, classes
        self.mean, self.std, self.min_size = mean, std, min_size
        self.automatic_optimization = False
        k = classes.num_classes
        # No per-update value check (a `unique` over every pixel: ~6 % of evaluating the Dubai unlabeled set):
        # predictions are class indices and masks are decoded against the class table before they get here.
        self.val_cm = MulticlassConfusionMatrix(k, ignore_index=classes.ignore_index, validate_args=False)
        self.test_cm = MulticlassConfusionMatrix(k, ignore_index=classes.ignore_index, validate_args=False)
        # one more per method head (DLLR's branches), scored beside the method by validation and `test` (which
        # never run at once); metric states are not saved
        self.head_cms = torch.nn.ModuleDict(
            {
                h: MulticlassConfusionMatrix(k, ignore_index=classes.ignore_index, validate_args=False)
                for h in method.heads
            }
        )
        self.n_optimizers = len(method.param_groups())
        self.test_metrics: dict[str, Any] | None = None
        self._recent: dict[Alarm, deque[float]] = {a: deque(maxlen=a.window) for a in method.alarms}
        self.warnings: list[dict[str, Any]] = []  # alarms that fired: also in <run>/warnings.json
        self.kept_max: float | None = None  # the largest share of pseudo-labels kept in a step (mask_ratio)
        # Channels-last (NHWC) weights and batches: oneDNN and cuDNN convolutions run faster in it (training
        # a U-Net / ResNet-18 step about 1.15× on this project's CPU); values are unchanged.
        self.to(memory_format=torch.channels_last)

    # Lightning counts every optimizer.step() in global_step; with several optimizers it runs ahead.
    @property
    def train_step(self) -> int:
        return self.global_step // self.n_optimizers

    def configure_optimizers(self):
        o = self.cfg.optim
        optimizers = [make_optimizer(g, o) for g in self.method.param_groups()]
        schedule = lr_schedule(o.schedule, self.cfg.train.steps, o.warmup_steps, o.poly_power)
        return optimizers, [LambdaLR(opt, schedule) for opt in optimizers]

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        step = self.train_step
        # Each step draws its random numbers (perturbations, CutMix boxes, affine views, noise, dropout) from the
        # global generators seeded by (seed, rank, step): a resumed run, in any process, draws what the
        # uninterrupted run drew, whatever Lightning's restore and data-loader start-up consumed before it.
        seed_step(self.cfg.train.seed, self.global_rank, step)
        labeled, unlabeled = _channels_last(batch["labeled"]), _channels_last(batch.get("unlabeled"))
        out = self.method.training_step(labeled, unlabeled, step)
        # one device sync for every term (a GPU waits at each Python `if` on a tensor); logged floats such as λ(t)
        # arrive as CPU scalars beside the loss's CUDA tensors, so each flag moves to the loss's device first
        device = out["loss"].device
        finite = torch.stack([torch.isfinite(v).all().to(device, non_blocking=True) for v in out.values()]).tolist()
        if bad := [k for k, ok in zip(out, finite) if not ok]:
            raise SemilandError(
                f"non-finite {', '.join(bad)} at step {step}: lower optim.lr or check the data for NaN "
                "(the last good checkpoint is kept)"
            )
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self.manual_backward(out["loss"])
        for opt in optimizers:
            if self.cfg.optim.grad_clip > 0:
                self.clip_gradients(opt, gradient_clip_val=self.cfg.optim.grad_clip, gradient_clip_algorithm="norm")
            opt.step()
        schedulers = self.lr_schedulers()
        for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
            sched.step()
        self.method.after_step(step)
        self._watch(out, step)
        if not self._loggers_write_now():
            return
        n = labeled["image"].shape[0]
        self.log("train/loss", out["loss"].detach(), prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v.detach().float() for k, v in out.items() if k != "loss"}, batch_size=n)
        self.log("train/lr", optimizers[0].param_groups[0]["lr"], batch_size=n)
        # Lightning takes a logged "step" as the row's step: the CSV then counts our steps, not optimizer calls
        self.log("step", float(step), batch_size=n)

    def _loggers_write_now(self) -> bool:
        """Whether the loggers write this step's metrics (every train.log_every steps, Lightning's own test).
        Each `self.log` costs host time (profiled on this project's CPU: 4 calls, 3 % of a 460 ms step), which a
        GPU's ~15 ms steps do not hide: the engine ran at 0.81 of plain PyTorch on an H200 while it logged every
        step (docs/benchmarks.md). Values logged on the other steps were never written (on_step metrics are not
        averaged), so the logs are unchanged."""
        connector = getattr(self._trainer, "_logger_connector", None)  # None outside a Trainer (tests)
        return connector is None or bool(connector.should_update_logs)

    def _watch(self, out: dict[str, torch.Tensor], step: int) -> None:
        """Check the method's alarms (instability signals); each warns once, on stderr and in the run folder."""
        fired = {w["message"] for w in self.warnings}
        for alarm, recent in self._recent.items():
            if alarm.key not in out:
                continue
            recent.append(float(out[alarm.key].detach()))  # a loss term may still carry its graph
            if len(recent) == alarm.window and alarm.message not in fired and alarm.test(list(recent)):
                self._warn(step, alarm.key, alarm.message)
        if "mask_ratio" in out:  # pseudo-labeling methods: the share of unlabeled pixels whose target was kept
            self.kept_max = max(self.kept_max or 0.0, float(out["mask_ratio"].detach()))
            if step == self.cfg.train.steps - 1 and self.kept_max == 0:
                self._warn(step, "mask_ratio", NOTHING_KEPT)

    def _warn(self, step: int, key: str, message: str) -> None:
        """Warn once on stderr and record it in <run>/warnings.json (the run report and sweep summary show it)."""
        self.warnings.append({"step": step, "key": key, "message": message})
        trainer = self._trainer  # None outside a Trainer (tests)
        if trainer is None or trainer.is_global_zero:
            print(f"\nsemiland: warning at step {step}: {message}", file=sys.stderr)
        if trainer is not None and trainer.is_global_zero:
            atomic_write_json(Path(trainer.default_root_dir) / "warnings.json", self.warnings)

    # -- evaluation ---------------------------------------------------------------------------------
    def _sliding(self, predict: Callable[[torch.Tensor], Logits], image: torch.Tensor) -> torch.Tensor:
        d = self.cfg.data
        multiple = max(32, self.min_size)
        return sliding_window_logits(
            at_scale(predict, d.scale, multiple), image, d.eval_tile, d.eval_overlap, multiple=multiple
        )

    def predict_logits(self, image: torch.Tensor, head: str | None = None) -> torch.Tensor:
        """(B, K, H, W) logits of the method, or of one of its `heads` alone, over sliding windows."""
        return self._sliding(self.method.predict_fn(head), image)

    def predict_logits_with_heads(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`predict_logits` of the method and of each head from one pass of the network over each window:
        the window's outputs travel stacked along the class axis, (B, K · (1 + heads), h, w), through the
        per-channel blending (resampled part by part: `at_scale`), and are split after; the same numbers as
        one pass each (tests/test_optical_sar.py)."""

        def together(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            main, heads = self.method.predict_with_heads(x)
            return (main, *(heads[h] for h in self.method.heads))

        parts = self._sliding(together, image).chunk(1 + len(self.method.heads), 1)
        return parts[0], dict(zip(self.method.heads, parts[1:], strict=True))

    def _score(self, logits: torch.Tensor, batch: dict[str, Any], cm: MulticlassConfusionMatrix) -> None:
        target = batch["mask"].masked_fill(~batch["valid"], self.classes.ignore_index)
        cm.update(class_indices(logits), target)  # (B, H, W) classes against the mask

    def _evaluate(self, batch: dict[str, Any], cm: MulticlassConfusionMatrix) -> None:
        """Score the method into `cm` and each head into its own, from one pass (no heads: the method alone)."""
        logits, heads = self.predict_logits_with_heads(batch["image"])
        self._score(logits, batch, cm)
        for head, head_cm in self.head_cms.items():
            self._score(heads[head], batch, head_cm)

    def _computed(self, cm: MulticlassConfusionMatrix) -> dict[str, Any]:
        """The metrics of `cm` and of each head's (as `heads`), every matrix reset for the next evaluation."""
        names = list(self.classes.names)
        m = confusion_metrics(cm.compute().cpu().numpy(), names)
        cm.reset()
        if self.head_cms:
            m["heads"] = {h: confusion_metrics(c.compute().cpu().numpy(), names) for h, c in self.head_cms.items()}
            for c in self.head_cms.values():
                c.reset()
        return m

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.val_cm)

    def on_validation_epoch_end(self) -> None:
        m = self._computed(self.val_cm)
        # 0 rather than NaN when nothing was evaluated, so "best" checkpoint selection stays defined.
        self.log("val/mIoU", m["mIoU"] or 0.0, prog_bar=True)
        self.log("val/OA", m["OA"] or 0.0)
        # each head alone too (DLLR's branches): a branch that loses a class the fused map still shows (the
        # sweep's `sar` set, docs/benchmarks.md) is seen while training, not only by `semiland test`
        for head, hm in m.get("heads", {}).items():
            self.log(f"val/{head}/mIoU", hm["mIoU"] or 0.0)
        self.log("step", float(self.train_step))
        root = getattr(self.trainer, "default_root_dir", None)
        if self.trainer.is_global_zero and root and not self.trainer.sanity_checking:
            atomic_write_json(Path(root) / "val_metrics.json", {"step": self.train_step, **m})

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_cm)

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._computed(self.test_cm)

    # -- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        np_state = np.random.get_state()
        checkpoint["semiland"] = {
            "format": FORMAT,
            "config": self.cfg.to_dict(),
            "classes": self.classes.to_dict(),
            "method": self.method.name,
            "in_channels": len(self.mean),
            "train_step": self.train_step,
            "warnings": self.warnings,  # a resumed run keeps what fired before, and what its targets kept
            "kept_max": self.kept_max,
            "rng": {  # plain types and tensors only: the file must load with weights_only=True
                "torch": torch.get_rng_state(),
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
                "python": random.getstate(),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("semiland", {})
        self.warnings, self.kept_max = list(meta.get("warnings", [])), meta.get("kept_max")
        rng = checkpoint.get("semiland", {}).get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            kind, keys, *rest = rng["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
            random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in rng["python"]))
