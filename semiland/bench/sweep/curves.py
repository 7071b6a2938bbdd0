"""Sensitivity curves of a sweep (S4Net's Table 4 / Fig. 5, MiniFrance's Fig. 10): test mIoU against the number of
labeled images, and against the unlabeled loss weight λ (`method.lambda_u`), mean ± std over seeds, one line per
method — drawn whenever the sweep has several labeled counts or several λ of one method, each with its CSV.

The points pool every budget with the same labeled count (and every seed); the oracle, trained on every image, is
no point of a count curve. λ is read from each cell's config.yaml, so variants named any way count.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from semiland.bench.sweep.layout import ORACLE, CellRow, cell_folder, cell_method, cell_run
from semiland.io import atomic_write_text
from semiland.report.figures import plot_sensitivity

Point = dict[str, Any]  # a curve's point: line, panel, x, mean, std, n


def _points(groups: dict[tuple[str, str, float], list[float]]) -> list[Point]:
    return [
        {"line": line, "panel": panel, "x": x, "mean": statistics.fmean(v),
         "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
        for (line, panel, x), v in sorted(groups.items())
    ]  # fmt: skip


def labeled_curve(rows: list[CellRow], methods: list[str]) -> list[Point]:
    """Test mIoU (%) per method against `labeled_images`; empty unless the sweep has two labeled counts or more."""
    groups: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for r in rows:
        if r.method in methods and r.method != ORACLE and r.mIoU is not None and r.labeled_images:
            groups[(r.method, "", float(r.labeled_images))].append(100 * r.mIoU)
    return _points(groups) if len({x for _, _, x in groups}) > 1 else []


def _method_settings(cell: Path) -> tuple[str, float | None]:
    """(the registered method, its lambda_u or None) from a cell's config.yaml."""
    method = cell_method(cell_run(cell))
    lam = method.get("lambda_u")
    return str(method.get("name", "")), None if lam is None else float(lam)


def lambda_curve(rows: list[CellRow], methods: list[str], out: Path) -> list[Point]:
    """Test mIoU (%) against λ, one line per registered method, one panel per budget; only the methods that ran
    with two values of λ or more in a budget."""
    groups: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for r in rows:
        if r.method not in methods or r.method in ("supervised", ORACLE) or r.mIoU is None:
            continue
        name, lam = _method_settings(cell_folder(out, r.method, r.budget, r.seed))
        if lam is not None:
            groups[(name, r.budget, lam)].append(100 * r.mIoU)
    lams: dict[tuple[str, str], set[float]] = defaultdict(set)
    for line, panel, x in groups:
        lams[(line, panel)].add(x)
    return _points({k: v for k, v in groups.items() if len(lams[k[:2]]) > 1})


def _write_csv(points: list[Point], path: Path, names: tuple[str, ...]) -> None:
    """One row per point; `names` of line, (panel, where the curve has panels,) x."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*names, "mean_mIoU", "std_mIoU", "n"])
    for p in points:
        where = [p["line"], p["panel"]] if len(names) == 3 else [p["line"]]
        writer.writerow([*where, f"{p['x']:g}", f"{p['mean']:.4f}", f"{p['std']:.4f}", p["n"]])
    atomic_write_text(path, buf.getvalue())


def write_curves(rows: list[CellRow], methods: list[str], out: Path) -> list[tuple[str, str]]:
    """The curves this sweep has, as figures + CSV under OUT/figures; (caption, figure path relative to OUT)."""
    figures = []
    if points := labeled_curve(rows, methods):
        _write_csv(points, out / "figures/curve_labeled.csv", ("method", "labeled_images"))
        plot_sensitivity(points, "labeled images", out / "figures/curve_labeled.png", log_x=True)
        figures.append(("Test mIoU against the number of labeled images: mean ± std over seeds (and budgets with "
                        "that count), one line per method (figures/curve_labeled.csv)", "figures/curve_labeled.png"))  # fmt: skip
    if points := lambda_curve(rows, methods, out):
        supervised = {
            b: statistics.fmean(100 * r.mIoU for r in rows if r.method == "supervised" and r.budget == b)
            for b in {p["panel"] for p in points}
            if any(r.method == "supervised" and r.budget == b for r in rows)
        }
        _write_csv(points, out / "figures/curve_lambda.csv", ("method", "budget", "lambda_u"))
        plot_sensitivity(points, "λ (method.lambda_u)", out / "figures/curve_lambda.png", baselines=supervised)
        figures.append(("Test mIoU against the unlabeled loss weight λ: mean ± std over seeds, one line per method, "
                        "supervised dashed (figures/curve_lambda.csv)", "figures/curve_lambda.png"))  # fmt: skip
    return figures
