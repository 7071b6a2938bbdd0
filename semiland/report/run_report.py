"""Assemble a run report (one or several runs on the same split) from trained tasks and their logs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps

from semiland.data.datamodule import EVAL_BLOCK
from semiland.data.prepare import PreparedData
from semiland.data.raster import natural_colour
from semiland.data.store import SampleStore
from semiland.engine.precision import machine
from semiland.engine.runner import FitResult, evaluate_checkpoint, is_rank_zero
from semiland.engine.sliding import class_indices
from semiland.engine.task import SegTask
from semiland.report.figures import (
    display_rgb,
    plot_confusion,
    plot_curves,
    plot_health,
    plot_panels,
    plot_per_class_iou,
    plot_target_shares,
)
from semiland.report.html import Report, write_report


@dataclass
class RunOutcome:
    label: str  # e.g. "supervised"
    metrics: dict[str, Any]  # test metrics
    run_dir: Path  # the run's folder: logs/metrics.csv, its warnings
    task: SegTask
    seconds: float

    @property
    def log_csv(self) -> Path:
        return self.run_dir / "logs" / "metrics.csv"


def test_run(
    ckpt: str | Path, out_dir: Path, overrides: list[str] | None = None, on: str = "test"
) -> tuple[dict[str, Any], SegTask]:
    """`semiland test`: evaluate a checkpoint (`engine.runner.evaluate_checkpoint`: metrics.json) and draw its
    confusion matrix beside (confusion_matrix.png); the metrics and the loaded task."""
    metrics, task = evaluate_checkpoint(ckpt, out_dir, overrides, on)
    if is_rank_zero():
        plot_confusion(metrics, out_dir / "confusion_matrix.png")
    return metrics, task


def evaluate_run(result: FitResult, label: str, seconds: float) -> RunOutcome:
    """Test a finished run's best checkpoint (writes <run>/test/) and keep what its report needs."""
    metrics, task = test_run(result.best_ckpt, result.run_dir / "test")
    return RunOutcome(label, metrics, result.run_dir, task, seconds)


def _downsample(a: np.ndarray, max_side: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(a.shape[-2:]) / max_side)))
    return a[..., ::step, ::step]


@torch.no_grad()
def panel_rows(
    runs: list[RunOutcome], data: PreparedData, n: int = 3, max_side: int = 600, auxiliary: bool = True
) -> list[dict[str, Any]]:
    """n test images: the image, its truth and each run's map (+ a multi-task run's auxiliary output)."""
    bands = runs[0].task.cfg.data.bands
    store = SampleStore(data.spec, bands, data.mean, data.std, cache=False, windowed=True, index=data.index)
    classes = data.spec.classes
    rows = []
    chosen = data.split.test[:: max(1, len(data.split.test) // n)][:n]
    refs = data.spec.by_id()
    rgb, caption = natural_colour(refs[chosen[0]].image, bands) if chosen else (None, "")
    for sample_id in chosen:
        sample, part = store.central(sample_id, EVAL_BLOCK)  # a raster larger than a block: its centre
        image = torch.from_numpy(store.normalise(sample.image, sample.valid))[None]
        preds = {}
        for run in runs:
            device = next(run.task.parameters()).device
            run.task.eval()
            pred = class_indices(run.task.predict_logits(image.to(device)))[0].cpu().numpy()
            pred[~sample.valid] = classes.ignore_index
            preds[run.label] = classes.colorize(_downsample(pred, max_side))
            if auxiliary:
                preds.update(auxiliary_panels(run, image.to(device), sample.valid, max_side, rgb))
        rows.append(
            {
                "title": sample_id + part,
                "image": display_rgb(_downsample(sample.image, max_side), _downsample(sample.valid, max_side), rgb),
                "image_title": caption,
                "truth": classes.colorize(_downsample(sample.mask, max_side)),
                "preds": preds,
            }
        )
    return rows


def auxiliary_panels(
    run: RunOutcome, image: torch.Tensor, valid: np.ndarray, max_side: int, rgb: tuple[int, int, int] | None = None
) -> dict[str, np.ndarray]:
    """A multi-task method's auxiliary output (MiniFrance Figs. 15–18): its reconstruction of the image or
    its unsupervised segmentation (clusters in arbitrary colours). Empty for other methods."""
    auxiliary = getattr(run.task.method, "auxiliary", None)
    if auxiliary is None:
        return {}
    h, w = image.shape[-2:]
    m = max(32, run.task.min_size)
    padded = torch.nn.functional.pad(image, (0, -w % m, 0, -h % m))  # any architecture accepts it
    aux = auxiliary(padded)[..., :h, :w][0].cpu().numpy()
    if aux.ndim == 3:  # (C, H, W) reconstruction
        aux, valid = _downsample(aux, max_side), _downsample(valid, max_side)
        return {f"{run.label}: reconstruction": display_rgb(aux, valid, rgb)}
    clusters = CLUSTER_COLORS[_downsample(aux, max_side) % len(CLUSTER_COLORS)]
    clusters[~_downsample(valid, max_side)] = 0
    return {f"{run.label}: clusters": clusters}


# 20 distinct colours for unsupervised clusters (matplotlib's tab20), (20, 3) uint8.
CLUSTER_COLORS = (np.array(colormaps["tab20"].colors) * 255).astype(np.uint8)


def run_warnings(run_dir: Path) -> list[dict[str, Any]]:
    """The alarms that fired during the run in `run_dir` (its warnings.json, written atomically by the engine:
    {"step", "key", "message"} each); none when the file is absent."""
    path = run_dir / "warnings.json"
    return json.loads(path.read_text()) if path.is_file() else []


TARGETS_CAPTION = "Class shares of the pseudo-labels (a class sinking to 0 is being unlearned)"


def _logs_by_key(runs: list[RunOutcome], keys: Callable[[Any], Sequence[str]]) -> dict[str, dict[str, Path]]:
    """{training_step output key: {run label: its log}} for the keys each run's method names (`keys(method)`)."""
    out: dict[str, dict[str, Path]] = {}
    for r in runs:
        for key in keys(r.task.method):
            out.setdefault(key, {})[r.label] = r.log_csv
    return out


def build_run_report(
    out_dir: Path, title: str, runs: list[RunOutcome], data: PreparedData, intro: list[str], command: str
) -> Path:
    figures = out_dir / "figures"
    results = {r.label: r.metrics for r in runs}
    # a method's heads scored alone (DLLR: each modality's branch), as rows of their own after the runs
    results |= {f"{r.label}: {h} alone": m for r in runs for h, m in r.metrics.get("heads", {}).items()}
    plot_per_class_iou(results, figures / "per_class_iou.png")
    plot_curves({r.label: r.log_csv for r in runs}, figures / "training_curves.png")
    for r in runs:
        plot_confusion(r.metrics, figures / f"confusion_{r.label}.png")
    # generative methods: the instability signals the engine watched; any method's own signals (DLLR's)
    health = _logs_by_key(runs, lambda m: [alarm.key for alarm in m.alarms])
    if health:
        plot_health(health, figures / "training_health.png")
    signals = _logs_by_key(runs, lambda m: m.signals)
    if signals:
        plot_health(signals, figures / "method_signals.png")
    warnings = [f"{r.label}, step {w['step']}: {w['message']}" for r in runs for w in run_warnings(r.run_dir)]
    classes = data.spec.classes
    targets = plot_target_shares(
        {r.label: r.log_csv for r in runs}, list(classes.names), list(classes.colors), figures / "target_shares.png"
    )
    rows = panel_rows(runs, data)
    if rows:
        plot_panels(rows, list(classes.names), list(classes.colors), figures / "panels.png")
    report = Report(
        title=title,
        intro=[*intro, *(f"Warning — {w}" for w in warnings)],
        results=results,
        extra_rows={r.label: {"train time": f"{r.seconds:.0f} s", "steps": str(r.task.cfg.train.steps)} for r in runs},
        figures=[
            ("Per-class IoU", "figures/per_class_iou.png"),
            ("Training curves", "figures/training_curves.png"),
            *([("Training health (instability signals)", "figures/training_health.png")] if health else []),
            *([("Method signals (training_step outputs, smoothed)", "figures/method_signals.png")] if signals else []),
            *([(TARGETS_CAPTION, "figures/target_shares.png")] if targets else []),
            *([("Image / ground truth / prediction (test images)", "figures/panels.png")] if rows else []),
            *[(f"Confusion matrix — {r.label}", f"figures/confusion_{r.label}.png") for r in runs],
        ],
        colors=list(zip(classes.names, classes.colors)),
        details={
            "dataset": f"{data.spec.name} at {data.spec.root}",
            "split": data.split.summary(),
            "labeled images": ", ".join(data.split.labeled[:12]) + (" …" if len(data.split.labeled) > 12 else ""),
            "test images": ", ".join(data.split.test[:12]) + (" …" if len(data.split.test) > 12 else ""),
            "ignored classes": ", ".join(classes.ignored_names) or "none",
            "model": f"{runs[0].task.cfg.model.arch} / {runs[0].task.cfg.model.encoder}",
            "machine": machine(),
            "command": command,
        },
    )
    return write_report(report, out_dir / "report.html")
