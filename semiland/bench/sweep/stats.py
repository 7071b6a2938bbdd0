"""The summary's statistics over finished rows: per method and budget mean ± std over seeds, the difference
to supervised (or to a variant's base) paired by seed — on the same machine where a `<base>_rerun` trained
there — the share of the supervised → oracle gap recovered, the time ratio and per-class changes.
"""

from __future__ import annotations

import statistics
from typing import Any

from scipy.stats import ttest_1samp

from semiland.bench.sweep.layout import ORACLE, CellRow, cost_seconds


def seed_stats(rows: list[CellRow], method: str, budget: str, key: str) -> tuple[float, float, int]:
    """Mean, std (0 for one seed) and count of 100 × `key` over the seeds of one method and budget."""
    vals = [100 * r[key] for r in rows if r["method"] == method and r["budget"] == budget and r.get(key) is not None]
    if not vals:
        return float("nan"), float("nan"), 0
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)


def paired_stats(
    rows: list[CellRow],
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


def cell_costs(rows: list[CellRow]) -> list[float]:
    return [c for c in map(cost_seconds, rows) if c is not None]


def summarise(rows: list[CellRow], methods: list[str]) -> list[dict[str, Any]]:
    table = []
    classes = [k for k in rows[0] if k.startswith("IoU/")] if rows else []
    val_classes = list(dict.fromkeys(k for r in rows for k in r if k.startswith("val_last:IoU/")))
    for budget in dict.fromkeys(r["budget"] for r in rows):
        sup, _, _ = seed_stats(rows, "supervised", budget, "mIoU")
        orc, _, _ = seed_stats(rows, ORACLE, budget, "mIoU")
        sup_time = cell_costs([r for r in rows if r["method"] == "supervised" and r["budget"] == budget])
        for method in [*methods, ORACLE]:
            mean, std, n = seed_stats(rows, method, budget, "mIoU")
            if n == 0:
                continue
            # paired with supervised of its own machine where `supervised_rerun` trained there and supervised not
            paired_rows, sup_label = base_on_own_device(rows, method, "supervised", budget, methods)
            oa, oa_std, _ = seed_stats(rows, method, budget, "OA")
            val, val_std, _ = seed_stats(rows, method, budget, "val_mIoU")
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
                    "val:vs_supervised": paired_stats(paired_rows, method, budget, "val_mIoU"),
                    **{k: seed_stats(rows, method, budget, k)[0] for k in [*classes, *val_classes]},
                    **_class_changes(paired_rows, method, budget, classes),
                    "supervised_base": sup_label,
                    "vs_supervised": (paired := paired_stats(paired_rows, method, budget, "mIoU")),
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


def _versus_base(rows: list[CellRow], method: str, budget: str, methods: list[str]) -> dict[str, Any]:
    """A variant's Δ vs its base method (`variant_base`) seed by seed on every set, as `vs_base` {set: paired}:
    an ablation's answer (what switching one part off costs) with the base's own seed spread taken out."""
    if not (base := variant_base(method, methods)):
        return {}
    keys = {"test": "mIoU", **{on: f"{on}:mIoU" for on in extra_sets(rows)}, "val": "val_mIoU"}
    paired_rows, label = base_on_own_device(rows, method, base, budget, methods)
    return {
        "base": label,
        "vs_base": {name: paired_stats(paired_rows, method, budget, key, versus=base) for name, key in keys.items()},
    }


def base_on_own_device(
    rows: list[CellRow], method: str, base: str, budget: str, methods: list[str]
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


def rerun_seeds(rows: list[CellRow], method: str, base: str, budget: str, methods: list[str]) -> tuple[list[int], str]:
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


def extra_sets(rows: list[dict[str, Any]] | list[CellRow]) -> list[str]:
    """The `--also-on` sets some row (a cell's, or a summary's) was evaluated on, in first-seen order."""
    return list(dict.fromkeys(k.removesuffix(":mIoU") for r in rows for k in r if k.endswith(":mIoU")))


def _on_stats(rows: list[CellRow], method: str, budget: str) -> dict[str, Any]:
    """Per `--also-on` set: mean ± std mIoU, seed count, the difference to supervised, per-class means."""
    stats: dict[str, Any] = {}
    for on in extra_sets(rows):
        mean, std, n = seed_stats(rows, method, budget, f"{on}:mIoU")
        classes = dict.fromkeys(k for r in rows for k in r if k.startswith(f"{on}:IoU/"))
        paired = paired_stats(rows, method, budget, f"{on}:mIoU")
        stats |= {f"{on}:mIoU": mean, f"{on}:mIoU_std": std, f"{on}:n": n, f"{on}:vs_supervised": paired}
        stats |= {k: seed_stats(rows, method, budget, k)[0] for k in classes}
        stats |= _class_changes(rows, method, budget, list(classes), f"{on}:")
    return stats


def _class_changes(
    rows: list[CellRow], method: str, budget: str, classes: list[str], prefix: str = ""
) -> dict[str, Any]:
    """Which classes a method's Δ mIoU comes from: per class key (`IoU/c`, or `set:IoU/c` with `prefix` "set:")
    its paired change vs supervised (`Δ<key>`), and the seeds paired (`<prefix>Δseeds`)."""
    paired = {k: paired_stats(rows, method, budget, k) for k in classes}
    return {**{f"Δ{k}": p["mean"] for k, p in paired.items()},
            f"{prefix}Δseeds": max((p["n"] for p in paired.values()), default=0)}  # fmt: skip
