"""`semiland bench train-speed`: our engine's training step vs a plain PyTorch loop, side by side.

Both loops train the same architecture (fresh weights of the same seed) on the same in-memory batches,
with the same loss (`supervised_ce`), optimizer (AdamW) and schedule, on the same device, in one process.
They alternate (plain, engine, plain, engine, …) so drift of the machine hits both; the first steps of each
repeat are warm-up and not timed. Goal: engine throughput ≥ 0.95 × plain (overhead ≤ 5 %).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.paired import SIMULATED_SAR_BANDS
from semiland.engine.precision import machine, strict_float32
from semiland.engine.run_config import config_from_dict
from semiland.engine.runner import build_task, make_trainer, quiet_lightning
from semiland.engine.task import lr_schedule, make_optimizer
from semiland.io import atomic_write_json
from semiland.methods.base import ParamGroup, supervised_ce

WARMUP = 3
AUTOCAST = {"bf16-mixed": torch.bfloat16}  # train.precision → autocast dtype (16-mixed would need a GradScaler)


class FixedBatches(Dataset):
    """`n` precomputed samples; item i is the same tensors for both loops."""

    def __init__(self, n: int, bands: int, size: int, classes: int):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, bands, size, size, generator=g)
        self.masks = torch.randint(0, classes, (n, size, size), generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i],
            "mask": self.masks[i],
            "valid": torch.ones_like(self.masks[i], dtype=torch.bool),
        }


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def _config(args: argparse.Namespace, steps: int, accelerator: str) -> Any:
    return config_from_dict(
        {
            "model": {"arch": args.arch, "encoder": args.encoder},
            "method": {"name": "supervised"},
            "optim": {"name": "adamw", "lr": 1e-3, "schedule": "cosine"},
            "train": {
                "steps": steps,
                "val_every": steps,
                "accelerator": accelerator,
                "progress": False,
                "log_every": 10,
                "precision": args.precision,
            },
        }
    )


def plain_loop(args, cfg, classes, loader, device) -> float:
    torch.manual_seed(0)
    task = build_task(cfg, classes, [0.0] * args.bands, [1.0] * args.bands)
    model = task.method.model.to(device).train()
    opt = make_optimizer(ParamGroup(list(model.parameters())), cfg.optim)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule("cosine", cfg.train.steps, 0, 0.9))
    times = []
    dtype = AUTOCAST.get(cfg.train.precision)  # what Lightning's mixed precision plugin does, by hand
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = supervised_ce(model(batch["image"]), batch, 255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return args.batch * (len(times) - WARMUP) / (times[-1] - times[WARMUP - 1])


def engine_loop(args, cfg, classes, loader, log_dir: Path) -> float:
    torch.manual_seed(0)
    task = build_task(cfg, classes, [0.0] * args.bands, [1.0] * args.bands)
    timer = StepTimer()
    trainer = make_trainer(cfg, log_dir, task.n_optimizers)
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, L.pytorch.callbacks.ModelCheckpoint)] + [
        timer
    ]
    trainer.fit(task, train_dataloaders={"labeled": loader})
    t = timer.times
    return args.batch * (len(t) - WARMUP) / (t[-1] - t[WARMUP - 1])


def run_train_speed(args: argparse.Namespace) -> int:
    quiet_lightning()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    steps = args.steps + WARMUP
    classes = ClassTable(names=tuple(f"c{k}" for k in range(5)), colors=tuple((k, k, k) for k in range(5)))
    cfg = _config(args, steps, accelerator)
    data = FixedBatches(steps * args.batch, args.bands, args.size, 5)
    loader = DataLoader(data, batch_size=args.batch, shuffle=False, drop_last=True)
    plain, engine = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            plain.append(plain_loop(args, cfg, classes, loader, device))
            engine.append(engine_loop(args, cfg, classes, loader, Path(tmp) / f"r{r}"))
            print(f"repeat {r + 1}/{args.repeats}: plain {plain[-1]:.2f} samples/s, engine {engine[-1]:.2f} samples/s")
    p, e = statistics.median(plain), statistics.median(engine)
    result = {
        "plain_samples_per_s": p,
        "engine_samples_per_s": e,
        "ratio": e / p,
        "plain_all": plain,
        "engine_all": engine,
        "setup": f"{args.arch}/{args.encoder}, batch {args.batch} x {args.bands} x {args.size}^2, "
        f"{args.steps} timed steps x {args.repeats} repeats, {device.type}, precision {args.precision}",
        "machine": machine(),
    }
    print(
        f"\n{result['setup']}\nplain PyTorch: {p:.2f} samples/s   semiland engine: {e:.2f} samples/s   "
        f"ratio {e / p:.3f} (goal >= 0.95)"
    )
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def model_channels(d: DataConfig, optical: int) -> list[int]:
    """Band groups the model sees for `optical` bands: + simulated SAR (`data.simulate_sar`), one modality."""
    if not d.simulate_sar:
        return [optical]
    groups = {"both": [optical, SIMULATED_SAR_BANDS], "optical": [optical], "sar": [SIMULATED_SAR_BANDS]}
    return groups[d.modality]


def run_step_cost(args: argparse.Namespace) -> int:
    """`semiland bench step-cost`: each method's training step against supervised's, side by side.

    The sweep's wall times depend on what else the machine ran; this measures the step alone: every method of
    `--methods` (sweep syntax) trains `--steps` timed steps on the same in-memory batches (labeled and
    unlabeled crops of the config's size and batch sizes) in one process, methods alternating over
    `--repeats`, the first steps of each untimed. Reports seconds per step and the ratio to supervised.
    DLLR needs its band groups: `data.simulate_sar=true` (the Dubai test bed: optical + 2 bands) or e.g.
    `dllr=dllr:data.channels=[3,2]` (3 optical + 2 SAR bands).
    """
    from semiland.bench.sweep.plan import parse_methods
    from semiland.engine.run_config import load_config

    quiet_lightning()
    strict_float32()  # the sweep's arithmetic: its float32 is float32 on a GPU too (no TF32)
    methods = parse_methods(args.methods)
    base = load_config(args.config, args.overrides)
    d, steps = base.data, args.steps + WARMUP
    bands = len(d.mean) if d.mean else args.bands
    classes = ClassTable(names=tuple(f"c{k}" for k in range(5)), colors=tuple((k, k, k) for k in range(5)))
    size = d.crop_size  # crops are cut at the training resolution (after data.scale): what the model sees

    def batches(c: int, n: int) -> DataLoader:  # the same tensors for every method with c bands
        return DataLoader(FixedBatches(steps * n, c, size, 5), batch_size=n)

    fixed = ["train.progress=false", f"train.steps={steps}", f"train.val_every={steps}", "train.loggers=[]"]
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, own in methods.items():
                cfg = load_config(args.config, [*args.overrides, *own, *fixed])
                groups = cfg.data.channels or model_channels(cfg.data, bands)
                cfg.data.channels = groups
                c = sum(groups)
                torch.manual_seed(0)
                task = build_task(cfg, classes, [0.0] * c, [1.0] * c)
                timer = StepTimer()
                trainer = make_trainer(cfg, Path(tmp) / f"{name}-{r}", task.n_optimizers)
                keep = [c for c in trainer.callbacks if not isinstance(c, L.pytorch.callbacks.ModelCheckpoint)]
                trainer.callbacks = [*keep, timer]
                loaders = {"labeled": batches(c, d.batch_size)}
                if task.method.uses_unlabeled:
                    loaders["unlabeled"] = batches(c, d.unlabeled_batch_size)
                trainer.fit(task, train_dataloaders=loaders)
                t = timer.times
                seconds[name].append((t[-1] - t[WARMUP - 1]) / (len(t) - WARMUP))
                print(f"repeat {r + 1}/{args.repeats}: {name} {seconds[name][-1]:.3f} s/step", flush=True)
    per_step = {m: statistics.median(v) for m, v in seconds.items()}
    sup = per_step.get("supervised")
    result = {
        "setup": f"{base.model.arch}/{base.model.encoder} width {base.model.width}, {d.batch_size} labeled + "
        f"{d.unlabeled_batch_size} unlabeled x {bands} x {size}^2, precision {base.train.precision}, "
        f"{args.steps} timed steps x {args.repeats} repeats",
        "seconds_per_step": per_step,
        "vs_supervised": {m: (s / sup if sup else None) for m, s in per_step.items()},
        "all": seconds,
        "machine": machine(),
    }
    lines = [result["setup"] + f"; {result['machine']}", "", "| method | s / step | × supervised |", "|---|---|---|"]
    lines += [f"| {m} | {s:.3f} | {s / sup:.2f} |" if sup else f"| {m} | {s:.3f} | – |" for m, s in per_step.items()]
    print("\n" + "\n".join(lines))
    if args.json:
        atomic_write_json(args.json, result)
    return 0
