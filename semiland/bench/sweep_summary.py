"""The summary of a `semiland bench sweep` folder: per method and budget, mean ± std over seeds, the difference
to supervised paired by seed, the share of the supervised → oracle gap recovered and the time ratio, written as
results.csv / results.json, summary.md and summary.html (with figures). Reads finished cells' rows only, so it
can run beside the processes still training the sweep (`--summary-only`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import yaml
from scipy.stats import ttest_1samp

from semiland.data.prepare import prepare_data
from semiland.engine.run_folder import RunFolder, read_log
from semiland.engine.runner import load_task
from semiland.report.figures import plot_panels
from semiland.report.run_report import RunOutcome, panel_rows

ORACLE = "oracle"


def cell_folder(out: Path, method: str, budget: str, seed: int) -> Path:
    """Where a sweep keeps one cell's run: OUT/<method>/<budget>/seed<k>."""
    return out / method / budget / f"seed{seed}"


def cell_run(cell: Path) -> Path:
    """The run folder of a cell's final model: the cell itself, or a self-training cell's last round's student
    (round<k>/student) — never the `teacher/` such a cell holds when it trained its teacher again."""
    students = sorted(cell.glob("round*/student"), key=lambda p: int(p.parent.name.removeprefix("round")))
    return students[-1] if students else cell


def cell_method(run: Path) -> dict[str, Any]:
    """The `method:` section a cell's run trained with (its resolved config.yaml), {} where unreadable: a label
    such as `fixmatch_flex` names a configuration, this names the registered method and its settings."""
    try:
        method = yaml.safe_load(RunFolder(run).config.read_text())["method"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    return method if isinstance(method, dict) else {}


def _stats(rows: list[dict[str, Any]], method: str, budget: str, key: str) -> tuple[float, float, int]:
    """Mean, std (0 for one seed) and count of 100 × `key` over the seeds of one method and budget."""
    vals = [100 * r[key] for r in rows if r["method"] == method and r["budget"] == budget and r.get(key) is not None]
    if not vals:
        return float("nan"), float("nan"), 0
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)


def _paired(
    rows: list[dict[str, Any]],
    method: str,
    budget: str,
    key: str,
    versus: str = "supervised",
    versus_key: str | None = None,
) -> dict[str, Any]:
    """100 × (`key` of `method` − `versus_key` (default `key`) of `versus`) seed by seed (same seed: same
    initialisation and crops), so the spread between seeds that both share cancels: mean, std, seeds won, seeds
    paired, each seed's difference (`by_seed`) and `p`, a one-sample t-test of the differences against 0 (NaN
    under 3 seeds or with no spread). A method against itself with another key compares two of its scores (a
    head alone against the whole method)."""

    def by_seed(m: str, k: str) -> dict[int, float]:
        return {r["seed"]: r[k] for r in rows if r["method"] == m and r["budget"] == budget and r.get(k) is not None}

    versus_key = versus_key or key
    sup, own = by_seed(versus, versus_key), by_seed(method, key)
    diffs = {s: 100 * (own[s] - sup[s]) for s in sorted(own) if s in sup}
    d = list(diffs.values())
    if (method, key) == (versus, versus_key) or not d:
        return {"mean": float("nan"), "std": float("nan"), "wins": 0, "n": 0, "by_seed": {}, "p": float("nan")}
    std = statistics.stdev(d) if len(d) > 1 else 0.0
    p = float(ttest_1samp(d, 0.0).pvalue) if len(d) >= 3 and std > 0 else float("nan")
    return {"mean": statistics.mean(d), "std": std, "wins": sum(x > 0 for x in d), "n": len(d), "by_seed": diffs,
            "p": p}  # fmt: skip


def cost_seconds(row: dict[str, Any]) -> float | None:
    """A cell's cost: its process's CPU time (immune to other load and to pauses; one-thread sweep processes),
    or its wall time for cells from before that was recorded; None where the row says its time is not a
    measure of cost (`"time_unreliable": "why"`, e.g. a process paused mid-cell) and for a cell trained on a
    GPU (its CPU time is not its cost, and several cells share one GPU): left out of every mean."""
    if row.get("time_unreliable") or str(row.get("device", "cpu")).startswith("cuda"):
        return None
    return row.get("fit_cpu_seconds") or row["fit_seconds"]


def last_val_classes(folder: Path) -> dict[str, float]:
    """Per-class IoU of a run's last validation (val_metrics.json; self-training: the last round's student), as
    `val_last:IoU/<class>`: which classes the validation set can see at all. Empty where no validation ran."""
    path = cell_run(folder) / "val_metrics.json"
    per_class = json.loads(path.read_text()).get("per_class", {}) if path.is_file() else {}
    return {f"val_last:IoU/{name}": c["IoU"] for name, c in per_class.items() if c.get("IoU") is not None}


def cell_costs(rows: list[dict[str, Any]]) -> list[float]:
    return [c for c in map(cost_seconds, rows) if c is not None]


def _fmt_paired(p: dict[str, float]) -> str:
    return "–" if not p["n"] else f"{p['mean']:+.2f} ± {p['std']:.2f} ({p['wins']}/{p['n']})"


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    table = []
    classes = [k for k in rows[0] if k.startswith("IoU/")] if rows else []
    val_classes = list(dict.fromkeys(k for r in rows for k in r if k.startswith("val_last:IoU/")))
    for budget in dict.fromkeys(r["budget"] for r in rows):
        sup, _, _ = _stats(rows, "supervised", budget, "mIoU")
        orc, _, _ = _stats(rows, ORACLE, budget, "mIoU")
        sup_time = cell_costs([r for r in rows if r["method"] == "supervised" and r["budget"] == budget])
        for method in [*methods, ORACLE]:
            mean, std, n = _stats(rows, method, budget, "mIoU")
            if n == 0:
                continue
            # paired with supervised of its own machine where `supervised_rerun` trained there and supervised not
            paired_rows, sup_label = _base_on_own_device(rows, method, "supervised", budget, methods)
            oa, oa_std, _ = _stats(rows, method, budget, "OA")
            val, val_std, _ = _stats(rows, method, budget, "val_mIoU")
            secs = cell_costs([r for r in rows if r["method"] == method and r["budget"] == budget])
            # a share of the gap exists only when the oracle leads (NaN compares False)
            has_gap = method not in ("supervised", ORACLE) and orc - sup > 1e-9
            table.append(
                {
                    "budget": budget,
                    "method": method,
                    "n": n,
                    "mIoU": mean,
                    "mIoU_std": std,
                    "OA": oa,
                    "OA_std": oa_std,
                    "val_mIoU": val,
                    "val_mIoU_std": val_std,
                    "val:vs_supervised": _paired(paired_rows, method, budget, "val_mIoU"),
                    **{k: _stats(rows, method, budget, k)[0] for k in [*classes, *val_classes]},
                    **_class_changes(paired_rows, method, budget, classes),
                    "supervised_base": sup_label,
                    "vs_supervised": (paired := _paired(paired_rows, method, budget, "mIoU")),
                    # the paired difference: the same as the difference of means once every seed is in, and
                    # not a comparison of one seed with three while a sweep runs
                    "gap_recovered": paired["mean"] / (orc - sup) if has_gap else float("nan"),
                    "time_vs_supervised": statistics.mean(secs) / statistics.mean(sup_time)
                    if sup_time and secs
                    else float("nan"),
                    **_on_stats(paired_rows, method, budget),
                    **_versus_base(rows, method, budget, methods),
                }
            )
    return table


def variant_base(label: str, labels: list[str]) -> str | None:
    """The method a sweep row is a variant of, by its label: the longest `_`-separated prefix that is another
    row's label (`dllr_no_masking` → `dllr`, `fixmatch_p0` → `fixmatch`), supervised excepted (every row is
    compared with it already); None for a row that is no one's variant."""
    parts = label.split("_")
    bases = ("_".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
    return next((b for b in bases if b in labels and b != "supervised"), None)


def _versus_base(rows: list[dict[str, Any]], method: str, budget: str, methods: list[str]) -> dict[str, Any]:
    """A variant's Δ vs its base method (`variant_base`) seed by seed on every set, as `vs_base` {set: paired}:
    an ablation's answer (what switching one part off costs) with the base's own seed spread taken out."""
    if not (base := variant_base(method, methods)):
        return {}
    keys = {"test": "mIoU", **{on: f"{on}:mIoU" for on in extra_sets(rows)}, "val": "val_mIoU"}
    paired_rows, label = _base_on_own_device(rows, method, base, budget, methods)
    return {
        "base": label,
        "vs_base": {name: _paired(paired_rows, method, budget, key, versus=base) for name, key in keys.items()},
    }


def _base_on_own_device(
    rows: list[dict[str, Any]], method: str, base: str, budget: str, methods: list[str]
) -> tuple[list[dict[str, Any]], str]:
    """`rows` with a seed's `base` cell replaced by `<base>_rerun`'s where that re-run trained on the variant's
    device and the base's own cell did not, and the base's label saying which seeds took the re-run. Float32 CPU runs are bit-identical on
    one CPU but not across CPU generations (docs/benchmarks-log.md): a variant paired with a base from
    another machine carries that machine's difference too; `<base>_rerun − <base>` measures it."""
    swap, label = rerun_seeds(rows, method, base, budget, methods)
    if not swap:
        return rows, label
    again = f"{base}_rerun"
    in_cell = lambda r, m: r["method"] == m and r["budget"] == budget and r["seed"] in swap  # noqa: E731
    paired = [r for r in rows if not in_cell(r, base)] + [{**r, "method": base} for r in rows if in_cell(r, again)]
    return paired, label


def rerun_seeds(
    rows: list[dict[str, Any]], method: str, base: str, budget: str, methods: list[str]
) -> tuple[list[int], str]:
    """The seeds whose `base` cell a `method` cell is paired with `<base>_rerun`'s instead (the re-run trained on
    that cell's device, the base's own cell did not), and the label saying so: `base`, `<base>_rerun`, or
    "`base`; seeds 1, 2: `<base>_rerun`"."""
    again = f"{base}_rerun"
    if method == again or again not in methods:
        return [], base

    def devices(m: str) -> dict[int, Any]:
        return {r["seed"]: r.get("device") for r in rows if r["method"] == m and r["budget"] == budget}

    own, first, rerun = devices(method), devices(base), devices(again)
    swap = [s for s in sorted(own) if s in rerun and rerun[s] == own[s] and first.get(s) != own[s]]
    if not swap:
        return [], base
    some = f"{base}; seed{'s' * (len(swap) > 1)} {', '.join(map(str, swap))}: {again}"
    return swap, again if len(swap) == len(own) else some


def extra_sets(rows: list[dict[str, Any]]) -> list[str]:
    """The `--also-on` sets some row (a cell's, or a summary's) was evaluated on, in first-seen order."""
    return list(dict.fromkeys(k.removesuffix(":mIoU") for r in rows for k in r if k.endswith(":mIoU")))


def _on_stats(rows: list[dict[str, Any]], method: str, budget: str) -> dict[str, Any]:
    """Per `--also-on` set: mean ± std mIoU, seed count, the difference to supervised, per-class means."""
    stats: dict[str, Any] = {}
    for on in extra_sets(rows):
        mean, std, n = _stats(rows, method, budget, f"{on}:mIoU")
        classes = dict.fromkeys(k for r in rows for k in r if k.startswith(f"{on}:IoU/"))
        paired = _paired(rows, method, budget, f"{on}:mIoU")
        stats |= {f"{on}:mIoU": mean, f"{on}:mIoU_std": std, f"{on}:n": n, f"{on}:vs_supervised": paired}
        stats |= {k: _stats(rows, method, budget, k)[0] for k in classes}
        stats |= _class_changes(rows, method, budget, list(classes), f"{on}:")
    return stats


def _class_changes(
    rows: list[dict[str, Any]], method: str, budget: str, classes: list[str], prefix: str = ""
) -> dict[str, Any]:
    """Which classes a method's Δ mIoU comes from: per class key (`IoU/c`, or `set:IoU/c` with `prefix` "set:")
    its paired change vs supervised (`Δ<key>`), and the seeds paired (`<prefix>Δseeds`)."""
    paired = {k: _paired(rows, method, budget, k) for k in classes}
    return {**{f"Δ{k}": p["mean"] for k, p in paired.items()},
            f"{prefix}Δseeds": max((p["n"] for p in paired.values()), default=0)}  # fmt: skip


def _fmt(x: float, pct: bool = False, unit: str = "") -> str:
    if x != x:  # NaN: not measured (e.g. no supervised cell to compare with yet)
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.2f}{unit}"


def _signed(x: float) -> str:
    return "–" if x != x else f"{x:+.2f}"


Table = tuple[str, list[str], list[list[str]]]  # (caption, header, rows) of one summary table


def _versus_note(r: dict[str, Any]) -> str:
    """ " vs supervised_rerun" (or "…; seeds 0, 1: supervised_rerun") where a row's Δ vs supervised is paired
    with supervised trained again on its own machine (`_base_on_own_device`); "" where with supervised."""
    label = r.get("supervised_base", "supervised")
    return "" if label == "supervised" else f" vs {label.removeprefix('supervised; ')}"


def summary_tables(table: list[dict[str, Any]]) -> list[Table]:
    """The summary as tables of text cells, rendered to Markdown (summary.md) and HTML (summary.html)."""
    head = ["budget", "method", "seeds", "test mIoU (mean ± std)", "Δ vs supervised (paired by seed; seeds won)", "OA",
            "val mIoU", "gap recovered", "time vs supervised"]  # fmt: skip
    main = [
        [
            r["budget"],
            r["method"],
            str(r["n"]),
            f"{r['mIoU']:.2f} ± {r['mIoU_std']:.2f}",
            _fmt_paired(r["vs_supervised"]) + _versus_note(r),
            f"{r['OA']:.2f} ± {r['OA_std']:.2f}",
            f"{_fmt(r['val_mIoU'])} ± {_fmt(r['val_mIoU_std'])}",
            _fmt(r["gap_recovered"], pct=True),
            _fmt(r["time_vs_supervised"], unit="×"),
        ]  # fmt: skip
        for r in table
    ]
    for on in extra_sets(table):  # each --also-on set's mIoU beside the test's (its own seed count if it differs)
        head += [f"{on} mIoU", f"Δ {on} (paired)"]
        for row, r in zip(main, table):
            n = r[f"{on}:n"]
            seeds = "" if n in (0, r["n"]) else f" ({n} seed{'s' if n > 1 else ''})"
            cell = f"{_fmt(r[f'{on}:mIoU'])} ± {_fmt(r[f'{on}:mIoU_std'])}{seeds}" if n else "–"
            row += [cell, _fmt_paired(r[f"{on}:vs_supervised"])]
    tables: list[Table] = [("Test mIoU", head, main), seed_table(table)]
    classes = [k for k in (table[0] if table else {}) if k.startswith("IoU/")]
    if classes:
        rows = [[r["budget"], r["method"], *(_fmt(r[k]) for k in classes)] for r in table]
        tables.append(("Per-class test IoU (mean over seeds)", ["budget", "method", *(k[4:] for k in classes)], rows))
    for on in extra_sets(table):
        per_class = [k for k in table[0] if k.startswith(f"{on}:IoU/")]
        head = [
            "budget",
            "method",
            "seeds",
            "mIoU",
            "Δ vs supervised (paired)",
            *(k.split("/", 1)[1] for k in per_class),
        ]
        rows = [
            [
                r["budget"],
                r["method"],
                str(r[f"{on}:n"]),
                f"{_fmt(r[f'{on}:mIoU'])} ± {_fmt(r[f'{on}:mIoU_std'])}",
                _fmt_paired(r[f"{on}:vs_supervised"]),
                *(_fmt(r.get(k, float("nan"))) for k in per_class),
            ]  # fmt: skip
            for r in table
            if r[f"{on}:n"]
        ]
        tables.append((f"Also evaluated on `{on}` (`--also-on`; mean over the seeds that have it)", head, rows))
    if classes:
        tables.append(class_change_table(table, ["", *(f"{on}:" for on in extra_sets(table))]))
    if val_table := validation_class_table(table):
        tables.append(val_table)
    if variants := variant_table(table):
        tables.append(variants)
    return tables


def variant_table(table: list[dict[str, Any]]) -> Table | None:
    """Each variant row (an ablation: `dllr_no_cps`, `fixmatch_p0`, …) against its base method, seed by seed on
    every set; None when the sweep has no variant with a base cell of the same seed."""
    found = [(r, name, p) for r in table for name, p in r.get("vs_base", {}).items() if p["n"]]
    if not found:
        return None
    seeds = sorted({s for _, _, p in found for s in p["by_seed"]})
    rows = [[r["budget"], r["method"], r["base"], name, *_seed_cells(p, seeds)] for r, name, p in found]
    caption = ("Variants vs their base method, seed by seed (points: the variant minus its base of the same seed; "
               "an ablation below zero: the part it switches off was helping)")  # fmt: skip
    return caption, ["budget", "variant", "base", "set", *(f"seed {s}" for s in seeds), "mean ± std (won)", "p"], rows


BLIND = 2.0  # IoU points: a class no method but the oracle scores above on the validation set is unseen there


def validation_class_table(table: list[dict[str, Any]]) -> Table | None:
    """Per-class IoU on the validation set (each run's last validation, mean over seeds), and the classes it is
    blind to: where no method but the oracle gets a class right there, validation mIoU cannot tell methods
    apart on it, however much they differ on it elsewhere (Dubai's vegetation, docs/benchmarks.md)."""
    keys = list(dict.fromkeys(k for r in table for k in r if k.startswith("val_last:IoU/")))
    if not keys:
        return None
    # NaN (or absent): the method's cells have no val_metrics.json
    measured = [(r, {k: v for k in keys if not math.isnan(v := r.get(k, math.nan))}) for r in table]
    rows = [[r["budget"], r["method"], *(_fmt(vals.get(k, math.nan)) for k in keys)] for r, vals in measured if vals]
    caption = "Per-class validation IoU (each run's last validation, mean over seeds)"
    for budget in dict.fromkeys(r["budget"] for r in table):
        others = [vals for r, vals in measured if r["budget"] == budget and r["method"] != ORACLE]
        seen = {k: [vals[k] for vals in others if k in vals] for k in keys}
        if blind := [f"{k.split('/', 1)[1]} (best {max(v):.1f})" for k, v in seen.items() if v and max(v) < BLIND]:
            caption += (f"; {budget}: no method but the oracle reaches {BLIND:.0f} IoU points on average on "
                        f"{', '.join(blind)} — validation mIoU cannot rank methods on it")  # fmt: skip
    return caption, ["budget", "method", *(k.split("/", 1)[1] for k in keys)], rows


def seed_table(table: list[dict[str, Any]]) -> Table:
    """Each method's Δ mIoU vs supervised seed by seed on every set (test, each `--also-on` set, validation),
    with the mean ± std, seeds won and the t-test's p: what a reading of the sweep quotes, from the cells alone."""
    sets = [("test", "vs_supervised"), *((on, f"{on}:vs_supervised") for on in extra_sets(table)),
            ("val", "val:vs_supervised")]  # fmt: skip
    seeds = sorted({s for r in table for _, key in sets for s in r.get(key, {}).get("by_seed", {})})
    rows = [
        [r["budget"], r["method"], name, *_seed_cells(p, seeds)]
        for r in table
        for name, key in sets
        if (p := r.get(key)) and p["n"]
    ]
    caption = "Δ mIoU vs supervised seed by seed (points; p: one-sample t-test of the paired differences, from 3 seeds)"
    return caption, ["budget", "method", "set", *(f"seed {s}" for s in seeds), "mean ± std (won)", "p"], rows


def _seed_cells(p: dict[str, Any], seeds: list[int]) -> list[str]:
    """A paired difference's cells: each seed's Δ, mean ± std (seeds won), the t-test's p."""
    return [*(_signed(p["by_seed"].get(s, float("nan"))) for s in seeds), _fmt_paired(p), _fmt_p(p)]


def _fmt_p(p: dict[str, Any]) -> str:
    """A paired difference's t-test p, "–" where there is none (under 3 seeds, or no spread)."""
    return "–" if p["p"] != p["p"] else f"{p['p']:.2g}"


def class_change_table(table: list[dict[str, Any]], prefixes: list[str]) -> Table:
    """Per set (`prefixes`: "" for the test set, "unlabeled:" …) and method, each class's IoU change vs supervised
    of the same seed: a class whose IoU falls by 10 points costs 10 / K points of mIoU."""
    names = [k[4:] for k in table[0] if k.startswith("IoU/")]
    rows = [
        [r["budget"], r["method"], pre.rstrip(":") or "test", str(r[f"{pre}Δseeds"]),
         *(_signed(r.get(f"Δ{pre}IoU/{c}", float("nan"))) for c in names)]
        for pre in prefixes
        for r in table
        if r["method"] != "supervised" and r.get(f"{pre}Δseeds")
    ]  # fmt: skip
    caption = (
        "Per-class IoU change vs supervised, paired by seed (IoU points; a class's change ÷ the number of classes is "
        "its part of the Δ mIoU)"
    )
    return caption, ["budget", "method", "set", "seeds", *names], rows


def markdown(tables: list[Table]) -> str:
    blocks = []
    for i, (caption, head, rows) in enumerate(tables):
        lines = [] if i == 0 else [f"{caption}:", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def val_curves(rows: list[dict[str, Any]], out: Path) -> dict[tuple[str, str], list[list[tuple[float, float]]]]:
    """(budget, method) → each seed's validation mIoU curve [(step, value), …], from the cells' logs (a
    self-training cell: its last student's)."""
    curves: dict[tuple[str, str], list[list[tuple[float, float]]]] = {}
    for r in rows:
        log = cell_run(cell_folder(out, r["method"], r["budget"], r["seed"])) / "logs" / "metrics.csv"
        if log.is_file() and not r.get("same_as"):
            curves.setdefault((r["budget"], r["method"]), []).append(read_log(log).get("val/mIoU", []))
    return curves


def cell_model(out: Path, row: dict[str, Any]) -> Path | None:
    """A finished cell's kept model (self-training: its last student's), or None (a cell restored from a mirror,
    an early cell of the Dubai sweep, or `--no-models`)."""
    ckpt = RunFolder(cell_run(cell_folder(out, row["method"], row.get("same_as") or row["budget"], row["seed"]))).best
    return ckpt if ckpt.is_file() else None


@torch.no_grad()
def plot_maps(rows: list[dict[str, Any]], methods: list[str], out: Path, path: Path) -> str | None:
    """Every method's map of two test images side by side (first budget, the first seed where supervised kept
    its model), from the cells' kept models; returns the figure's caption, None when supervised has none."""
    budget = rows[0]["budget"]
    seeds = sorted(
        r["seed"] for r in rows if r["method"] == "supervised" and r["budget"] == budget and cell_model(out, r)
    )
    if not seeds:
        return None
    cells = {r["method"]: r for r in rows if r["budget"] == budget and r["seed"] == seeds[0]}
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


def trained_on(rows: list[dict[str, Any]]) -> str:
    """Where the cells trained (a sweep continued across machines, a GPU's cells beside a CPU's): the summary's
    machine is only the one that wrote it."""
    counts = Counter(r.get("device", "not recorded") for r in rows if not r.get("same_as"))
    return "Cells trained on: " + "; ".join(f"{d} ({n})" for d, n in counts.most_common())
