"""Writing a sweep's summary: results.csv / results.json, summary.md and summary.html with every table and
figure — the main table and the paired readings (stats, tables, maps), the folds' pooled table (bench/folds),
the heads, confusion shifts, class shares, stability alarms and sensitivity curves (their modules), which all
read stats' and tables' helpers; this module stands above them all.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from semiland.bench.folds import fold_class_table, fold_table
from semiland.bench.sweep.confusions import class_shares, confusion_shifts, shares_table, shifts_table
from semiland.bench.sweep.curves import write_curves
from semiland.bench.sweep.heads import heads_table
from semiland.bench.sweep.layout import TEST, VAL, CellRow, Score
from semiland.bench.sweep.maps import plot_maps, val_curves
from semiland.bench.sweep.stability import stability, stability_table
from semiland.bench.sweep.stats import extra_sets, summarise
from semiland.bench.sweep.tables import markdown, summary_tables, trained_on
from semiland.engine.precision import machine
from semiland.engine.run_folder import evaluation_folder
from semiland.io import atomic_write_json, atomic_write_text
from semiland.report.figures import plot_sweep, plot_sweep_curves
from semiland.report.html import Report, write_report


def write_summary(rows: list[CellRow], methods: list[str], out: Path, command: str, quiet: bool = False) -> None:
    """Summarise the cells' `rows` for `methods` (supervised first) into OUT's summary files; print the tables
    unless `quiet`."""
    table = summarise(rows, methods)
    tables = summary_tables(table)
    # leave-one-tile-out budgets: the pooled reading, after the main table
    folds = (fold_table(rows, methods), fold_table(rows, methods, VAL), fold_class_table(rows, methods))
    tables[1:1] = [t for t in folds if t is not None]
    if heads := heads_table(rows, methods):
        tables.append(heads)
    sets = ["test", *extra_sets(rows)]
    if shifts := confusion_shifts([r for r in rows if r.method in methods], out, sets):
        tables.append(shifts_table(shifts))
    if shares := class_shares(rows, out, sets, methods):
        tables.append(shares_table(shares))
    if found := stability([r for r in rows if r.method in methods], out):  # methods with alarms only
        tables.append(stability_table(found))
    flat = [r.to_json() for r in rows]  # result.json's flat keys
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in flat for k in r)))
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_json(out / "results.json", {"runs": flat, "summary": _jsonable(table), "machine": machine()})
    where = trained_on(rows)
    md = f"# Sweep\n\nCommand: `{command}`\n\nMachine: {machine()}\n\n{where}\n\n{markdown(tables)}\n"
    atomic_write_text(out / "summary.md", md)
    figures = []
    for on in ["", *extra_sets(rows)]:  # the test set, then every --also-on set
        name = f"figures/sweep_{evaluation_folder(on or 'test')}.png"
        score = Score(on) if on else TEST
        points = [{"method": r.method, "budget": r.budget, "seed": r.seed, "mIoU": v}
                  for r in rows if (v := r.get(score)) is not None]  # fmt: skip
        plot_sweep(points, methods, "mIoU", out / name, f"mIoU on {on or 'the test set'}")
        figures.append((f"mIoU on {on or 'the test set'}: every seed, and its difference to supervised", name))
    curves = val_curves(rows, out)
    if any(curves.values()):
        plot_sweep_curves(curves, out / "figures/sweep_validation.png")
        figures.append(("Validation mIoU during training: one line per seed (collapses show here)",
                        "figures/sweep_validation.png"))  # fmt: skip
    figures += write_curves(rows, methods, out)
    if rows and (caption := plot_maps(rows, methods, out, out / "figures/sweep_maps.png")):
        figures.append((caption, "figures/sweep_maps.png"))
    report = Report(
        title="semiland sweep",
        intro=[f"Command: {command}", f"Machine: {machine()}", where],
        tables=tables,
        figures=figures,
    )
    write_report(report, out / "summary.html")
    if not quiet:
        paths = f"{out / 'results.csv'}, {out / 'summary.md'}, {out / 'summary.html'}"
        print("\n" + markdown(tables) + f"\n\nresults: {paths}")


def _jsonable(value: Any) -> Any:
    """The summary as JSON: its per-score dicts keyed by the scores' result.json names."""
    if isinstance(value, dict):
        return {k.key if isinstance(k, Score) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
