"""Where a method's pixels went: the sweep summary's last two tables. A method's mIoU lead or loss is a sum over
classes; `confusion_shifts` names the pixels that moved against supervised of the same seed (on the Dubai sweep:
the methods pushing the rare vegetation class towards water on the unlabeled images, docs/benchmarks.md), and
`class_shares` how much of each class every method predicts against the masks' own shares (there: supervised
predicts a fifth of the vegetation the unlabeled tiles hold, and the methods less still). Reads each finished
cell's confusion matrix (`<set folder>/metrics.json`: rows are the true class, columns the predicted one), so it
runs beside a sweep still training.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from semiland.bench.sweep.layout import ORACLE, CellRow, cell_folder, cell_run
from semiland.bench.sweep.stats import baseline, with_baselines
from semiland.engine.run_folder import evaluation_folder


def _confusion(folder: Path) -> tuple[np.ndarray, list[str]] | None:
    """The (K, K) confusion matrix of one evaluation (pixel counts) and its class names; None if not evaluated."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return np.asarray(metrics["confusion_matrix"], dtype=np.float64), list(metrics["classes"])


def _shares(folder: Path) -> tuple[np.ndarray, list[str]] | None:
    """(K, K) row-normalised confusion matrix of one evaluation (the share of each true class's pixels given
    each predicted class; NaN rows for classes absent there) and its class names; None if not evaluated."""
    if (found := _confusion(folder)) is None:
        return None
    cm, names = found
    with np.errstate(invalid="ignore", divide="ignore"):
        return cm / cm.sum(1, keepdims=True), names


def _evaluated(cell: Path, on: str) -> Path:
    """A cell's evaluation folder for set `on`; a self-training cell keeps its test set's under its last
    round's student (round<k>/student/test), its `--also-on` sets at the top."""
    own = cell / evaluation_folder(on)
    return own if own.is_dir() else cell_run(cell) / evaluation_folder(on)


def confusion_shifts(rows: list[CellRow], out: Path, sets: list[str], top: int = 3) -> list[dict[str, Any]]:
    """Per budget, method and evaluation set: the `top` largest changes of a (true → predicted) share against
    the cell's supervised `baseline` (of its step count and machine where one trained, as in the main table), in
    points of the true class's pixels, averaged over the paired seeds (changes under 0.05 points are not
    listed)."""
    cells = [r for r in rows if not r.same_as]
    found = []
    for budget in dict.fromkeys(r.budget for r in rows):
        methods = dict.fromkeys(
            r.method for r in cells if r.budget == budget and r.method not in ("supervised", ORACLE)
        )
        for method in methods:
            own = sorted((r for r in cells if (r.method, r.budget) == (method, budget)), key=lambda r: r.seed)
            base_of = {r.seed: b.method for r in own if (b := baseline(cells, r)) is not None}
            _, versus = with_baselines(cells, method, "supervised", budget)
            for on in sets:
                diffs, names = [], []
                for seed in base_of:
                    mine = _shares(_evaluated(cell_folder(out, method, budget, seed), on))
                    base = _shares(_evaluated(cell_folder(out, base_of[seed], budget, seed), on))
                    if mine and base and mine[1] == base[1]:
                        diffs.append(100 * (mine[0] - base[0]))
                        names = mine[1]
                if not diffs:
                    continue
                with warnings.catch_warnings():  # a class absent from the set: an all-NaN row, left NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.stack(diffs), axis=0)  # (K, K) points
                np.fill_diagonal(mean, np.nan)  # a class kept is the IoU tables' business; here: where it went
                moved = sorted(((abs(d), i) for i, d in enumerate(mean.flat) if abs(d) >= 0.05), reverse=True)
                k = len(names)
                moves = [(names[i // k], names[i % k], float(mean.flat[i])) for _, i in moved[:top]]
                found.append({"budget": budget, "method": method, "set": on, "seeds": len(diffs), "moves": moves,
                              "versus": versus})  # fmt: skip
    return found


def shifts_table(found: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]]:
    """The summary table: one row per budget, method and set."""
    caption = (
        "Largest confusion changes vs supervised of the same seed (points of the true class's pixels; "
        "+: the method gives more of them this label)"
    )
    rows = [
        [f["budget"], f["method"], f["set"], str(f["seeds"]) + ("" if f["versus"] == "supervised" else f" vs {f['versus']}"),
         "; ".join(f"{true} → {pred} {d:+.1f}" for true, pred, d in f["moves"])]
        for f in found
    ]  # fmt: skip
    return caption, ["budget", "method", "set", "seeds", "true → predicted"], rows


def class_shares(rows: list[CellRow], out: Path, sets: list[str], methods: list[str]) -> list[dict[str, Any]]:
    """Per budget and evaluation set: the masks' class shares (`truth`, % of the labeled pixels) and, per method
    (`methods`' order, the oracle last), the mean over its seeds of the shares it predicts on those pixels. A
    class a method stops predicting shows here even where its IoU was small to begin with."""
    cells = {(r.method, r.budget, r.seed) for r in rows if not r.same_as}
    found = []
    for budget in dict.fromkeys(r.budget for r in rows):
        for on in sets:
            truth, names, per_method = None, None, []
            for method in dict.fromkeys([*methods, ORACLE]):
                counts = []
                for seed in sorted(s for m, b, s in cells if (m, b) == (method, budget)):
                    found_cm = _confusion(_evaluated(cell_folder(out, method, budget, seed), on))
                    if found_cm is None or (names is not None and found_cm[1] != names) or not found_cm[0].sum():
                        continue
                    cm, names = found_cm
                    truth = 100 * cm.sum(1) / cm.sum()  # rows: the masks, the same pixels for every cell of a set
                    counts.append(100 * cm.sum(0) / cm.sum())  # columns: what the cell predicted
                if counts:
                    per_method.append((method, len(counts), np.mean(counts, axis=0).tolist()))
            if per_method:
                found.append({"budget": budget, "set": on, "classes": names, "truth": truth.tolist(),
                              "methods": per_method})  # fmt: skip
    return found


def shares_table(found: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]]:
    """The summary table: per budget and set, the truth row, then one row per method."""
    caption = "Predicted class shares (% of the evaluated pixels, mean over seeds; `truth`: the masks' own shares)"
    names = found[0]["classes"]
    rows = []
    for f in found:
        rows.append([f["budget"], f["set"], "truth", "–", *(f"{x:.1f}" for x in f["truth"])])
        rows += [[f["budget"], f["set"], m, str(n), *(f"{x:.1f}" for x in xs)] for m, n, xs in f["methods"]]
    return caption, ["budget", "set", "method", "seeds", *names], rows
