"""Segmentation metrics from one confusion matrix (rows = truth, columns = prediction).

IoU_k = TP / (TP + FP + FN); mIoU is the macro mean over classes present in the evaluation (union > 0),
as the papers report it; precision, recall, F1 per class; overall accuracy; Cohen's kappa.
Ignored pixels never enter the matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semiland.io import finite_or_none


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def confusion_metrics(cm: np.ndarray, names: list[str]) -> dict[str, Any]:
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(1)  # true pixels per class
    predicted = cm.sum(0)
    fp, fn = predicted - tp, support - tp
    iou = _div(tp, tp + fp + fn)
    precision, recall = _div(tp, predicted), _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    f1 = np.where(~np.isnan(precision) & ~np.isnan(recall) & np.isnan(f1), 0.0, f1)  # p = r = 0 → F1 = 0
    total = cm.sum()
    oa = tp.sum() / total if total else float("nan")
    expected = (support * predicted).sum() / total**2 if total else float("nan")
    kappa = (oa - expected) / (1 - expected) if total and expected < 1 else float("nan")
    present = ~np.isnan(iou)
    return finite_or_none(
        {  # undefined metrics (no pixel of a class, an empty matrix) become None
            "mIoU": float(np.nanmean(iou)) if present.any() else None,
            "OA": float(oa),
            "kappa": float(kappa),
            "mF1": float(np.nanmean(f1)) if (~np.isnan(f1)).any() else None,
            "pixels": int(total),
            "per_class": {
                name: {
                    "IoU": float(iou[k]),
                    "precision": float(precision[k]),
                    "recall": float(recall[k]),
                    "F1": float(f1[k]),
                    "support": int(support[k]),
                }
                for k, name in enumerate(names)
            },
            "classes": list(names),
            "confusion_matrix": cm.astype(np.int64).tolist(),
        }
    )


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table: one row per class, then the summary line."""

    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:6.2f}"

    width = max(12, *(len(n) for n in metrics["classes"]))
    lines = [f"{'class':<{width}}    IoU   prec    rec     F1    pixels"]
    for name, m in metrics["per_class"].items():
        lines.append(
            f"{name:<{width}} {pct(m['IoU'])} {pct(m['precision'])} {pct(m['recall'])} {pct(m['F1'])} {m['support']:>9}"
        )
    lines.append(
        f"{'mean':<{width}} {pct(metrics['mIoU'])}  (mIoU)   OA {pct(metrics['OA'])}   kappa {pct(metrics['kappa'])}"
    )
    return "\n".join(lines)
