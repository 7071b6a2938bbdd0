"""The summary's tables (caption, header, rows) and their markdown: the main table, variants against their
base, the classes each validation set can see, seed by seed, and per-class changes.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from semiland.bench.sweep.layout import ORACLE, CellRow, Score


def fmt_paired(p: dict[str, float]) -> str:
    return "–" if not p["n"] else f"{p['mean']:+.2f} ± {p['std']:.2f} ({p['wins']}/{p['n']})"


def fmt_number(x: float, pct: bool = False, unit: str = "") -> str:
    if x != x:  # NaN: not measured (e.g. no supervised cell to compare with yet)
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.2f}{unit}"


def _signed(x: float) -> str:
    return "–" if x != x else f"{x:+.2f}"


Table = tuple[str, list[str], list[list[str]]]  # (caption, header, rows) of one summary table


def summary_sets(table: list[dict[str, Any]]) -> list[str]:
    """The `--also-on` sets of a summary (`stats.summarise`'s entries), in first-seen order."""
    return list(dict.fromkeys(on for r in table for on in r["sets"]))


def _classes(table: list[dict[str, Any]], on: str) -> list[Score]:
    """The per-class scores a summary's entries hold on `on`, in first-seen order."""
    return list(dict.fromkeys(c for r in table for c in r["classes"] if c.on == on and c.metric == "IoU"))


def _set(r: dict[str, Any], on: str) -> dict[str, Any]:
    """An entry's statistics on one `--also-on` set (no seed where it has none)."""
    nan = float("nan")
    none = {"n": 0, "mean": nan, "std": nan, "wins": 0, "by_seed": {}, "p": nan}
    return r["sets"].get(on) or {"mIoU": nan, "mIoU_std": nan, "n": 0, "vs_supervised": none}


def _versus_note(r: dict[str, Any]) -> str:
    """ " vs supervised_rerun" (or "…; seeds 0, 1: supervised_rerun") where a row's Δ vs supervised is paired
    with supervised trained again on its own machine (`base_on_own_device`); "" where with supervised."""
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
            fmt_paired(r["vs_supervised"]) + _versus_note(r),
            f"{r['OA']:.2f} ± {r['OA_std']:.2f}",
            f"{fmt_number(r['val_mIoU'])} ± {fmt_number(r['val_mIoU_std'])}",
            fmt_number(r["gap_recovered"], pct=True),
            fmt_number(r["time_vs_supervised"], unit="×"),
        ]  # fmt: skip
        for r in table
    ]
    for on in summary_sets(table):  # each --also-on set's mIoU beside the test's (its own seed count if it differs)
        head += [f"{on} mIoU", f"Δ {on} (paired)"]
        for row, r in zip(main, table):
            n = (st := _set(r, on))["n"]
            seeds = "" if n in (0, r["n"]) else f" ({n} seed{'s' if n > 1 else ''})"
            cell = f"{fmt_number(st['mIoU'])} ± {fmt_number(st['mIoU_std'])}{seeds}" if n else "–"
            row += [cell, fmt_paired(st["vs_supervised"])]
    tables: list[Table] = [("Test mIoU", head, main), seed_table(table)]
    classes = _classes(table, "test")
    if classes:
        rows = [
            [r["budget"], r["method"], *(fmt_number(r["classes"].get(c, math.nan)) for c in classes)] for r in table
        ]
        head = ["budget", "method", *(c.cls for c in classes)]
        tables.append(("Per-class test IoU (mean over seeds)", head, rows))
    for on in summary_sets(table):
        per_class = _classes(table, on)
        head = ["budget", "method", "seeds", "mIoU", "Δ vs supervised (paired)", *(c.cls for c in per_class)]
        rows = [
            [
                r["budget"],
                r["method"],
                str(st["n"]),
                f"{fmt_number(st['mIoU'])} ± {fmt_number(st['mIoU_std'])}",
                fmt_paired(st["vs_supervised"]),
                *(fmt_number(r["classes"].get(c, math.nan)) for c in per_class),
            ]  # fmt: skip
            for r in table
            if (st := _set(r, on))["n"]
        ]
        tables.append((f"Also evaluated on `{on}` (`--also-on`; mean over the seeds that have it)", head, rows))
    if classes:
        tables.append(class_change_table(table, ["test", *summary_sets(table)]))
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
    keys = _classes(table, "val_last")
    if not keys:
        return None
    # NaN (or absent): the method's cells have no val_metrics.json
    measured = [(r, {k: v for k in keys if not math.isnan(v := r["classes"].get(k, math.nan))}) for r in table]
    rows = [
        [r["budget"], r["method"], *(fmt_number(vals.get(k, math.nan)) for k in keys)] for r, vals in measured if vals
    ]
    caption = "Per-class validation IoU (each run's last validation, mean over seeds)"
    for budget in dict.fromkeys(r["budget"] for r in table):
        others = [vals for r, vals in measured if r["budget"] == budget and r["method"] != ORACLE]
        seen = {k: [vals[k] for vals in others if k in vals] for k in keys}
        if blind := [f"{k.cls} (best {max(v):.1f})" for k, v in seen.items() if v and max(v) < BLIND]:
            caption += (f"; {budget}: no method but the oracle reaches {BLIND:.0f} IoU points on average on "
                        f"{', '.join(blind)} — validation mIoU cannot rank methods on it")  # fmt: skip
    return caption, ["budget", "method", *(k.cls for k in keys)], rows


def seed_table(table: list[dict[str, Any]]) -> Table:
    """Each method's Δ mIoU vs supervised seed by seed on every set (test, each `--also-on` set, validation),
    with the mean ± std, seeds won and the t-test's p: what a reading of the sweep quotes, from the cells alone."""

    def paired(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        on_sets = [(on, _set(r, on)["vs_supervised"]) for on in summary_sets(table)]
        return [("test", r["vs_supervised"]), *on_sets, ("val", r["val:vs_supervised"])]

    seeds = sorted({s for r in table for _, p in paired(r) for s in p["by_seed"]})
    rows = [[r["budget"], r["method"], name, *_seed_cells(p, seeds)] for r in table for name, p in paired(r) if p["n"]]
    caption = "Δ mIoU vs supervised seed by seed (points; p: one-sample t-test of the paired differences, from 3 seeds)"
    return caption, ["budget", "method", "set", *(f"seed {s}" for s in seeds), "mean ± std (won)", "p"], rows


def _seed_cells(p: dict[str, Any], seeds: list[int]) -> list[str]:
    """A paired difference's cells: each seed's Δ, mean ± std (seeds won), the t-test's p."""
    return [*(_signed(p["by_seed"].get(s, float("nan"))) for s in seeds), fmt_paired(p), fmt_p_value(p)]


def fmt_p_value(p: dict[str, Any]) -> str:
    """A paired difference's t-test p, "–" where there is none (under 3 seeds, or no spread)."""
    return "–" if p["p"] != p["p"] else f"{p['p']:.2g}"


def class_change_table(table: list[dict[str, Any]], sets: list[str]) -> Table:
    """Per set ("test", "unlabeled" …) and method, each class's IoU change vs supervised of the same seed: a
    class whose IoU falls by 10 points costs 10 / K points of mIoU."""
    names = [c.cls for c in _classes(table, "test")]
    rows = [
        [r["budget"], r["method"], on, str(r["changed_seeds"][on]),
         *(_signed(r["changes"].get(Score.iou(c, on), math.nan)) for c in names)]
        for on in sets
        for r in table
        if r["method"] != "supervised" and r["changed_seeds"].get(on)
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


def trained_on(rows: list[CellRow]) -> str:
    """Where the cells trained (a sweep continued across machines, a GPU's cells beside a CPU's): the summary's
    machine is only the one that wrote it."""
    counts = Counter(r.device or "not recorded" for r in rows if not r.same_as)
    return "Cells trained on: " + "; ".join(f"{d} ({n})" for d, n in counts.most_common())
