"""The summary's statistics over finished rows: per method and budget mean ± std over seeds, the difference
to supervised (or to a variant's base) paired by seed — each cell with its `baseline`: supervised (or the
base) of the same step count and machine where one trained, under any label — the share of the supervised →
oracle gap recovered, the time ratio and per-class changes.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from scipy.stats import ttest_1samp

from semiland.bench.sweep.layout import ORACLE, TEST, VAL, CellRow, Score, cost_seconds


def seed_stats(rows: list[CellRow], method: str, budget: str, score: Score) -> tuple[float, float, int]:
    """Mean, std (0 for one seed) and count of 100 × `score` over the seeds of one method and budget."""
    vals = [100 * v for r in rows if r.method == method and r.budget == budget and (v := r.get(score)) is not None]
    if not vals:
        return float("nan"), float("nan"), 0
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)


def paired_stats(
    rows: list[CellRow],
    method: str,
    budget: str,
    score: Score,
    versus: str = "supervised",
    versus_score: Score | None = None,
) -> dict[str, Any]:
    """100 × (`score` of `method` − `versus_score` (default `score`) of `versus`) seed by seed (same seed: same
    initialisation and crops), so the spread between seeds that both share cancels: mean, std, seeds won, seeds
    paired, each seed's difference (`by_seed`) and `p`, a one-sample t-test of the differences against 0 (NaN
    under 3 seeds or with no spread). A method against itself with another score compares two of its scores (a
    head alone against the whole method)."""

    def by_seed(m: str, k: Score) -> dict[int, float]:
        return {r.seed: v for r in rows if r.method == m and r.budget == budget and (v := r.get(k)) is not None}

    versus_score = versus_score or score
    sup, own = by_seed(versus, versus_score), by_seed(method, score)
    diffs = {s: 100 * (own[s] - sup[s]) for s in sorted(own) if s in sup}
    d = list(diffs.values())
    if (method, score) == (versus, versus_score) or not d:
        return {"mean": float("nan"), "std": float("nan"), "wins": 0, "n": 0, "by_seed": {}, "p": float("nan")}
    std = statistics.stdev(d) if len(d) > 1 else 0.0
    p = float(ttest_1samp(d, 0.0).pvalue) if len(d) >= 3 and std > 0 else float("nan")
    return {"mean": statistics.mean(d), "std": std, "wins": sum(x > 0 for x in d), "n": len(d), "by_seed": diffs,
            "p": p}  # fmt: skip


def cell_costs(rows: list[CellRow]) -> list[float]:
    return [c for c in map(cost_seconds, rows) if c is not None]


def class_scores(rows: list[CellRow], on: str = "test") -> list[Score]:
    """The per-class IoU scores some row holds on `on`, in first-seen order."""
    return list(dict.fromkeys(s for r in rows for s in r.score_names(on)))


def summarise(rows: list[CellRow], methods: list[str]) -> list[dict[str, Any]]:
    """One entry per budget and method (the oracle last): mean ± std over seeds, the paired difference to
    supervised on every set (`vs_supervised` on the test set, `sets[on]` per `--also-on` set, `val`), the gap
    recovered, the time ratio, per-class means (`classes`, by score) and paired changes (`changes`, by score;
    `changed_seeds`: the seeds paired, per set), and a variant's difference to its base (`vs_base`)."""
    table = []
    classes = class_scores(rows) + class_scores(rows, "val_last")
    for budget in dict.fromkeys(r.budget for r in rows):
        sup, _, _ = seed_stats(rows, "supervised", budget, TEST)
        orc, _, _ = seed_stats(rows, ORACLE, budget, TEST)
        for method in [*methods, ORACLE]:
            mean, std, n = seed_stats(rows, method, budget, TEST)
            if n == 0:
                continue
            # each seed paired with supervised of its own step count and machine where one trained there
            paired_rows, sup_label = with_baselines(rows, method, "supervised", budget)
            # the time against the same baseline cells (a 1400-step method against a 1400-step supervised)
            sup_time = cell_costs([r for r in paired_rows if r.method == "supervised" and r.budget == budget])
            oa, oa_std, _ = seed_stats(rows, method, budget, Score(metric="OA"))
            val, val_std, _ = seed_stats(rows, method, budget, VAL)
            secs = cell_costs([r for r in rows if r.method == method and r.budget == budget])
            # a share of the gap exists only when the oracle leads (NaN compares False)
            has_gap = method not in ("supervised", ORACLE) and orc - sup > 1e-9
            changes, changed_seeds = _class_changes(paired_rows, method, budget, class_scores(rows))
            entry = {
                "budget": budget,
                "method": method,
                "n": n,
                "mIoU": mean,
                "mIoU_std": std,
                "OA": oa,
                "OA_std": oa_std,
                "val_mIoU": val,
                "val_mIoU_std": val_std,
                "val:vs_supervised": paired_stats(paired_rows, method, budget, VAL),
                "classes": {c: seed_stats(rows, method, budget, c)[0] for c in classes},
                "changes": changes,
                "changed_seeds": {"test": changed_seeds},
                "supervised_base": sup_label,
                "vs_supervised": (paired := paired_stats(paired_rows, method, budget, TEST)),
                # the paired difference: the same as the difference of means once every seed is in, and
                # not a comparison of one seed with three while a sweep runs
                "gap_recovered": paired["mean"] / (orc - sup) if has_gap else float("nan"),
                "time_vs_supervised": statistics.mean(secs) / statistics.mean(sup_time)
                if sup_time and secs
                else float("nan"),
                "sets": {},
                **_versus_base(rows, method, budget, methods),
            }
            _add_set_stats(entry, paired_rows, method, budget)
            table.append(entry)
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
    scores = {"test": TEST, **{on: Score(on) for on in extra_sets(rows)}, "val": VAL}
    paired_rows, label = with_baselines(rows, method, base, budget)
    return {
        "base": label,
        "vs_base": {name: paired_stats(paired_rows, method, budget, sc, versus=base) for name, sc in scores.items()},
    }


def trained_as(rows: list[CellRow], label: str) -> set[str]:
    """The labels whose cells trained as `label`'s did (the same `Recipe`; steps and machine aside): `label`,
    and e.g. `supervised_rerun`, `sup_long`, `sup_long_xeon` for supervised."""
    recipes = {r.recipe for r in rows if r.method == label and r.recipe is not None}
    if not recipes:  # no cell under the label itself (`--no-baseline`): the rows' one recipe of that method
        found = {r.recipe for r in rows if r.recipe is not None and r.recipe.method == label and not r.recipe.oracle}
        recipes = found if len(found) == 1 else set()  # two supervised recipes: which is the baseline is unsaid
    return {label} | {r.method for r in rows if r.recipe is not None and r.recipe in recipes}


def baseline(rows: list[CellRow], row: CellRow, base: str = "supervised", strict: bool = False) -> CellRow | None:
    """The cell `row` is paired with: one of `base`'s recipe under any label (`trained_as`: supervised trained
    again on another machine, or for longer) of the same budget and seed, ranked by the same machine (float32
    runs differ across CPU generations, docs/benchmarks.md), then the same step count (supervised gains from
    more steps as the methods do), then the `base` label itself. `strict`: only one of the same machine and
    steps; None where there is none."""
    labels = trained_as(rows, base) - {row.method}
    found = [r for r in rows if r.budget == row.budget and r.seed == row.seed and r.method in labels]
    if strict:
        found = [r for r in found if r.steps == row.steps and r.device == row.device]
    return max(found, key=lambda r: (r.device == row.device, r.steps == row.steps, r.method == base), default=None)


def with_baselines(rows: list[CellRow], method: str, base: str, budget: str) -> tuple[list[CellRow], str]:
    """`rows` with `base`'s cells of `budget` replaced, seed by seed, by the `baseline` of each `method` cell
    (relabeled `base`), so that pairing by label pairs each cell with its baseline; and a label saying which
    cells those are: `base`, `sup_long`, or "base; seeds 1, 2: dllr_rerun", with the seeds whose baseline
    trained on another machine (where none of its own did; a row from before devices were recorded is not
    counted as another)."""
    if method == base:
        return rows, base
    own = [r for r in rows if r.method == method and r.budget == budget]
    chosen = {r.seed: (b, r) for r in own if (b := baseline(rows, r, base)) is not None}
    kept = [r for r in rows if not (r.method == base and r.budget == budget)]
    paired = kept + [replace(b, method=base) for b, _ in chosen.values()]
    labels = {s: b.method for s, (b, _) in chosen.items()}
    others = sorted(s for s, lab in labels.items() if lab != base)
    if not others:
        label = base
    elif len(others) == len(labels) and len(set(labels.values())) == 1:
        label = labels[others[0]]
    else:
        label = f"{base}; " + "; ".join(f"{_seeds([s for s in others if labels[s] == lab])}: {lab}"
                                        for lab in dict.fromkeys(labels[s] for s in others))  # fmt: skip
    away = sorted(s for s, (b, r) in chosen.items() if b.device != r.device and None not in (b.device, r.device))
    return paired, label + (f" ({_seeds(away)} trained on another machine)" if away else "")


def _seeds(seeds: list[int]) -> str:
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


def extra_sets(rows: list[CellRow]) -> list[str]:
    """The `--also-on` sets some row was evaluated on, in first-seen order."""
    return list(dict.fromkeys(s.on for r in rows for s in r.scores if s.on not in ("test", "val", "val_last")))


def _add_set_stats(entry: dict[str, Any], rows: list[CellRow], method: str, budget: str) -> None:
    """Per `--also-on` set, into a summary entry: mean ± std mIoU, seed count and the difference to supervised
    (`sets[on]`), per-class means and changes."""
    for on in extra_sets(rows):
        mean, std, n = seed_stats(rows, method, budget, Score(on))
        entry["sets"][on] = {"mIoU": mean, "mIoU_std": std, "n": n,
                             "vs_supervised": paired_stats(rows, method, budget, Score(on))}  # fmt: skip
        classes = class_scores(rows, on)
        entry["classes"] |= {c: seed_stats(rows, method, budget, c)[0] for c in classes}
        changes, entry["changed_seeds"][on] = _class_changes(rows, method, budget, classes)
        entry["changes"] |= changes


def _class_changes(
    rows: list[CellRow], method: str, budget: str, classes: list[Score]
) -> tuple[dict[Score, float], int]:
    """Which classes a method's Δ mIoU comes from: per class score its paired change vs supervised, and the
    number of seeds paired."""
    paired = {c: paired_stats(rows, method, budget, c) for c in classes}
    return {c: p["mean"] for c, p in paired.items()}, max((p["n"] for p in paired.values()), default=0)
