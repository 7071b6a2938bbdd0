"""The summary's picture material from the cells' own files: validation curves from the training logs and
one panel of maps per method (image, mask, supervised, each method) from the cells' models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semiland.bench.sweep.layout import ORACLE, CellRow, cell_folder, cell_run
from semiland.data.prepare import prepare_data
from semiland.engine.run_folder import RunFolder, read_log
from semiland.engine.runner import load_task
from semiland.report.figures import plot_panels
from semiland.report.run_report import RunOutcome, panel_rows


def val_curves(rows: list[CellRow], out: Path) -> dict[tuple[str, str], list[list[tuple[float, float]]]]:
    """(budget, method) → each seed's validation mIoU curve [(step, value), …], from the cells' logs (a
    self-training cell: its last student's)."""
    curves: dict[tuple[str, str], list[list[tuple[float, float]]]] = {}
    for r in rows:
        log = cell_run(cell_folder(out, r.method, r.budget, r.seed)) / "logs" / "metrics.csv"
        if log.is_file() and not r.same_as:
            curves.setdefault((r.budget, r.method), []).append(read_log(log).get("val/mIoU", []))
    return curves


def cell_model(out: Path, row: CellRow) -> Path | None:
    """A finished cell's kept model (self-training: its last student's), or None (a cell restored from a mirror,
    an early cell of the Dubai sweep, or `--no-models`)."""
    ckpt = RunFolder(cell_run(cell_folder(out, row.method, row.same_as or row.budget, row.seed))).best
    return ckpt if ckpt.is_file() else None


@torch.no_grad()
def plot_maps(rows: list[CellRow], methods: list[str], out: Path, path: Path) -> str | None:
    """Every method's map of two test images side by side (first budget, the first seed where supervised kept
    its model), from the cells' kept models; returns the figure's caption, None when supervised has none."""
    budget = rows[0].budget
    seeds = sorted(r.seed for r in rows if r.method == "supervised" and r.budget == budget and cell_model(out, r))
    if not seeds:
        return None
    cells = {r.method: r for r in rows if r.budget == budget and r.seed == seeds[0]}
    groups: dict[tuple, list[RunOutcome]] = {}  # by input (optical; optical + SAR; SAR alone): its own data
    missing = []
    for method in [m for m in [*methods, ORACLE] if m in cells]:
        ckpt = cell_model(out, cells[method])
        if ckpt is None:
            missing.append(method)
            continue
        task, cfg = load_task(ckpt)
        d = cfg.data
        key = (d.simulate_sar, d.modality, str(d.bands), str(d.sar_bands))
        groups.setdefault(key, []).append(RunOutcome(method, {}, ckpt.parent.parent, task, 0))
    panels: list[dict[str, Any]] = []
    for runs in groups.values():  # the same split: the same two test images in every group
        data = prepare_data(runs[0].task.cfg)  # the group's input; every cell of a budget has its split
        for i, row in enumerate(panel_rows(runs, data, n=2, max_side=400, auxiliary=False)):
            if i < len(panels):
                panels[i]["preds"].update(row["preds"])
            else:
                panels.append(row)
    classes = data.spec.classes
    plot_panels(panels, list(classes.names), list(classes.colors), path)
    absent = f" (no model kept: {', '.join(missing)})" if missing else ""
    return f"Maps of two test images, budget {budget}, seed {seeds[0]}: each method's kept model{absent}"
