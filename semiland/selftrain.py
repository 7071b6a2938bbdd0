"""`semiland self-train`: offline self-training in rounds (see `methods/self_training.py` for the loss).

OUT/round0/            the teacher: the supervised method on the labeled images
OUT/round<r>/pseudo/   pseudo-labels of every unlabeled image (<region>/<stem>.png, index PNG, 255 = not kept;
                       a raster larger than 2048² that GDAL reads: <stem>.tif, tiled, labeled by blocks with
                       top_q's quantiles per block)
                       + pseudo_stats.json (coverage, class shares, the share of each class's predictions
                       kept; accuracy and per-class recall / precision where true labels exist)
OUT/round<r>/student/  a fresh student on labeled + pseudo-labeled images; the next round's teacher
OUT/self_training.json the per-round table
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semiland.config import Config, MethodConfig
from semiland.console import progress_bar
from semiland.data.classes import IGNORE_INDEX
from semiland.data.prepare import PreparedData
from semiland.data.raster import Box, box_window
from semiland.data.sources import LoadedSample
from semiland.data.store import BLOCK, SampleStore
from semiland.engine.run_config import load_config
from semiland.engine.runner import device_for_inference, fit, load_task
from semiland.engine.sliding import class_indices
from semiland.errors import SemilandError
from semiland.io import atomic_path, atomic_write_json, plan_output_folder, write_output_folder
from semiland.methods.selection import confident_pseudo
from semiland.report.run_report import test_run


@contextmanager
def pseudo_raster(path: Path, shape: tuple[int, int]) -> Iterator[Any]:
    """A tiled, compressed uint8 GeoTIFF of `shape` (H, W) for a large raster's pseudo-labels, written by block
    and read back by window; 255 (not kept) where nothing is written."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=shape[0], width=shape[1], count=1, dtype="uint8", tiled=True,
            blockxsize=256, blockysize=256, compress="deflate", nodata=IGNORE_INDEX,
        ) as dst:  # fmt: skip
            yield dst


def select_pixels(probs: torch.Tensor, threshold: float, top_q: float) -> np.ndarray:
    """(K, H, W) probabilities → pseudo-labels (H, W), uint8, with IGNORE_INDEX where not kept.

    top_q > 0: keep, for every predicted class, its top-q fraction of pixels by confidence (rare classes
    keep pixels even when their confidence is low); else keep max p ≥ threshold.
    """
    pred, keep = confident_pseudo(probs[None], threshold, top_q)  # the online methods' selection, one image
    pseudo = torch.where(keep[0], pred[0], torch.full_like(pred[0], IGNORE_INDEX))
    return pseudo.cpu().numpy().astype(np.uint8)


@torch.no_grad()
def pseudo_label(
    ckpt: Path, data: PreparedData, cfg: Config, out: Path, threshold: float, top_q: float
) -> dict[str, Any]:
    task, _ = load_task(ckpt)
    device = device_for_inference()
    task.to(device)
    # rasters larger than a BLOCK² block that GDAL reads are labeled block by block (bounded memory)
    store = SampleStore(data.spec, cfg.data.bands, data.mean, data.std, cache=False, windowed=True, index=data.index)
    k = data.spec.classes.num_classes
    refs = data.spec.by_id()
    predicted = np.zeros(k, dtype=np.int64)  # the teacher's argmax per class, kept or not
    kept_per_class = np.zeros(k, dtype=np.int64)
    truth_vs_pseudo = np.zeros((k, k), dtype=np.int64)  # kept pixels with a true label: truth × pseudo-label
    truth_total = np.zeros(k, dtype=np.int64)  # every valid pixel with a true label, kept or not
    total = kept = 0

    def label(sample: LoadedSample, core: Box) -> np.ndarray:
        """Pseudo-labels of the `core` (top, left, h, w) of `sample` (context around it), counted; scored
        against the sample's true mask where it carries one."""
        nonlocal total, kept
        image = torch.from_numpy(store.normalise(sample.image, sample.valid))[None].to(device)
        top, left, h, w = core
        probs = task.predict_logits(image)[0].softmax(0)[:, top : top + h, left : left + w]
        valid = sample.valid[top : top + h, left : left + w]
        pseudo = select_pixels(probs, threshold, top_q)
        pseudo[~valid] = IGNORE_INDEX
        mask = pseudo != IGNORE_INDEX
        total += int(valid.sum())
        kept += int(mask.sum())
        predicted[:] += np.bincount(class_indices(probs, 0).cpu().numpy()[valid], minlength=k)[:k]
        kept_per_class[:] += np.bincount(pseudo[mask], minlength=k)[:k]
        if sample.mask is not None:  # true labels exist: measure the pseudo-labels
            truth = sample.mask[top : top + h, left : left + w]
            known = valid & (truth != IGNORE_INDEX)
            truth_total[:] += np.bincount(truth[known], minlength=k)[:k]
            scored = mask & known
            np.add.at(truth_vs_pseudo, (truth[scored], pseudo[scored]), 1)
        return pseudo

    for sample_id in progress_bar(data.split.unlabeled, desc="pseudo-labels", unit="image"):
        grid = store.block_grid(sample_id, BLOCK)
        truth = refs[sample_id].mask is not None  # read with the image, only to score the pseudo-labels
        (out / sample_id).parent.mkdir(parents=True, exist_ok=True)
        if grid is None:
            sample = store.raw(sample_id, labeled=truth)
            pseudo = label(sample, (0, 0, *sample.valid.shape))
            with atomic_path(out / f"{sample_id}.png") as tmp:
                Image.fromarray(pseudo).save(tmp, format="PNG")
            continue
        with atomic_path(out / f"{sample_id}.tif") as tmp, pseudo_raster(tmp, store.shape(sample_id)) as dst:
            for block in grid:  # the eval tile of context around each block, as evaluation predicts blocks
                sample, core = store.with_context(sample_id, block, cfg.data.eval_tile, labeled=truth)
                pseudo = label(sample, core)
                dst.write(pseudo[None], window=box_window(block))
    names = data.spec.classes.names
    correct, scored_per_class = np.diag(truth_vs_pseudo), truth_vs_pseudo.sum(0)

    def per_class(num: np.ndarray, den: np.ndarray) -> dict[str, float | None]:
        return {n: float(a) / float(b) if b else None for n, a, b in zip(names, num, den)}

    stats = {
        "images": len(data.split.unlabeled),
        "coverage": kept / max(total, 1),
        "class_share": {n: float(c) / max(kept, 1) for n, c in zip(names, kept_per_class)},
        # of the pixels the teacher predicts as each class, the share kept (no true label needed): a class the
        # threshold starves is one the student learns to under-predict
        "class_kept": per_class(kept_per_class, predicted),
        "class_predicted_share": {n: float(c) / max(float(predicted.sum()), 1.0) for n, c in zip(names, predicted)},
        "accuracy": float(correct.sum()) / float(scored_per_class.sum()) if scored_per_class.sum() else None,
        "threshold": threshold,
        "top_q": top_q,
    }
    if truth_total.sum():  # per class: its share of the true labels, and the pseudo-labels' recall and precision
        stats["class_true_share"] = {n: float(c) / float(truth_total.sum()) for n, c in zip(names, truth_total)}
        stats["class_recall"] = per_class(correct, truth_total)
        stats["class_precision"] = per_class(correct, scored_per_class)
    atomic_write_json(out / "pseudo_stats.json", stats)
    return stats


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def starved_classes(stats: dict[str, Any], factor: float = 0.5) -> list[str]:
    """Warnings for the classes whose predicted pixels a confidence threshold keeps at under `factor` times the
    overall coverage: their pseudo-labels are too few, so the student learns to under-predict them (the
    Dubai sweep's self-training lost vegetation this way, docs/benchmarks.md). None under `top_q`, which keeps
    the same share of every class."""
    if stats["top_q"] > 0:
        return []
    overall = stats["coverage"]
    return [
        f"warning: the pseudo-labels keep {100 * share:.0f} % of the teacher's {name} pixels (all classes: "
        f"{100 * overall:.0f} %), so the student will under-predict {name}; method.top_q=0.5 keeps each class's "
        "most confident half instead of one threshold"
        for name, share in stats["class_kept"].items()
        if share is not None and share < factor * overall
    ]


def self_train(
    config: str | Path, overrides: list[str], out_dir: Path, teacher: tuple[Path, PreparedData] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the rounds into `out_dir`; returns (per-round rows, the last student's test metrics).

    `teacher` = (checkpoint, its prepared data) of an already trained supervised run to use as round 0
    (the sweep reuses its supervised cell); without it round 0 is trained here.
    """
    cfg = load_config(config, [*overrides, "method.name=self_training"])
    st = cfg.method
    if st.rounds < 1:
        raise SemilandError("method.rounds must be at least 1")
    if teacher is None:
        print("== round 0: teacher on labeled images ==")
        result = fit(dataclasses.replace(cfg, method=MethodConfig(name="supervised")), out_dir / "round0")
        ckpt, data = result.best_ckpt, result.data
        rows = [{"round": 0, "test_mIoU": test_run(ckpt, out_dir / "round0" / "test")[0]["mIoU"]}]
    else:
        (ckpt, data), rows = teacher, [{"round": 0, "test_mIoU": None, "teacher": str(teacher[0])}]
    if not data.split.unlabeled:
        raise SemilandError("self-training needs unlabeled images; the split has none (data.unlabeled)")
    metrics: dict[str, Any] = {}
    for r in range(1, st.rounds + 1):
        pseudo_dir = out_dir / f"round{r}" / "pseudo"
        stats = pseudo_label(ckpt, data, cfg, pseudo_dir, st.threshold, st.top_q)
        acc = "–" if stats["accuracy"] is None else f"{100 * stats['accuracy']:.1f} %"
        print(
            f"== round {r}: pseudo-labels cover {100 * stats['coverage']:.1f} % of unlabeled pixels, accuracy {acc} =="
        )
        print("   per class, share of the pseudo-labels (share of the teacher's predictions kept):")
        print(
            "   "
            + ", ".join(
                f"{n} {100 * s:.1f} % ({_pct(stats['class_kept'][n])})" for n, s in stats["class_share"].items()
            )
        )
        for line in starved_classes(stats):
            print(line)
        student_cfg = load_config(
            config,
            [
                *overrides,
                "method.name=self_training",
                f"data.pseudo_labels={pseudo_dir}",
                f"train.seed={cfg.train.seed + r}",
            ],
        )
        result = fit(student_cfg, out_dir / f"round{r}" / "student")
        metrics = test_run(result.best_ckpt, out_dir / f"round{r}" / "student" / "test")[0]
        rows.append({"round": r, "test_mIoU": metrics["mIoU"], **{f"pseudo_{k}": v for k, v in stats.items()}})
        ckpt = result.best_ckpt
    return rows, metrics


def run_self_training(config: str, overrides: list[str], out: str, overwrite: bool) -> int:
    cfg = load_config(config, [*overrides, "method.name=self_training"])  # a bad config fails before the folder is made
    inputs = [config, cfg.data.root, cfg.data.split_file, cfg.model.weights_path]
    target = plan_output_folder(Path(out).absolute(), overwrite, "self-training folder", inputs)
    with write_output_folder(target) as out_dir:  # an earlier output is replaced only when this one finished
        rows, _ = self_train(config, overrides, out_dir)
        atomic_write_json(out_dir / "self_training.json", rows)
    print(f"\n{'round':<6} {'test mIoU':>9} {'coverage':>9} {'pseudo acc':>10}")
    for row in rows:
        cov = row.get("pseudo_coverage")
        acc = row.get("pseudo_accuracy")
        print(
            f"{row['round']:<6} {100 * (row['test_mIoU'] or 0):9.2f} {'' if cov is None else f'{100 * cov:8.1f}%':>9} "
            f"{'' if acc is None else f'{100 * acc:9.1f}%':>10}"
        )
    print(f"\nresults: {target.path / 'self_training.json'}")
    return 0
