"""Leave-one-tile-out folds for `bench sweep --folds` (issue #40, "a protocol with power").

Nine test images and three seeds of one split cannot separate methods that differ by two points. With the
dataset's regions R0 … Rn-1 in order, fold i tests on region Ri and validates on Ri+1 (wrapping around); the
other regions are for training. Two kinds of label budget per fold:
- `region:N` — N images of one training region, Ri+2 (the few images of one tile a user labels); every other
  training image is unlabeled;
- `random:N` — N images drawn (seeded by the run's seed) across all training regions, as the SSL papers'
  1/8, 1/16 splits; the rest unlabeled.
Each (kind, fold) is one sweep budget, named `<kind><N>-on-<test region>`; the oracle of a fold (every training
image labeled) is shared by its budgets. `fold_table` pairs each method with supervised of the same fold, seed,
step count and machine, whatever its label (`sup_long`, `sup_long_xeon`: `stats.baseline`), and pools the pairs of
every fold: mean difference with a 95 % interval, pairs won, a paired t-test, and the share of the supervised →
oracle gap recovered.
"""

from __future__ import annotations

import math
import re
import statistics

from scipy.stats import t as student_t
from scipy.stats import ttest_1samp

from semiland.bench.sweep.layout import ORACLE, TEST, VAL, CellRow, Score
from semiland.bench.sweep.stats import baseline, class_scores, trained_as
from semiland.bench.sweep.tables import Table
from semiland.errors import SemilandError

KINDS = ("region", "random")
FOLD_BUDGET = re.compile(r"^(?P<kind>region|random)(?P<n>\d+)-on-(?P<test>.+)$")


def parse_folds(text: str) -> list[tuple[str, int]]:
    """ "region:2,random:7" → [("region", 2), ("random", 7)], one line on anything else."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        kind, _, n = item.partition(":")
        if kind not in KINDS or not n.isdigit() or int(n) < 1:
            raise SemilandError(f"--folds '{item}': give KIND:N with KIND region or random and N ≥ 1 labeled images, "
                                "e.g. --folds region:2,random:7")  # fmt: skip
        out.append((kind, int(n)))
    if not out:
        raise SemilandError("--folds needs at least one KIND:N, e.g. --folds region:2,random:7")
    return out


def fold_budgets(
    regions: list[str], kinds: list[tuple[str, int]], tests: list[str] | None = None
) -> dict[str, list[str]]:
    """Sweep budgets (name → overrides) of every fold and kind; the regions in the dataset's order. `tests`:
    only the folds that test on these regions (a development subset: settings are chosen on their
    validation tiles before every fold runs)."""
    if len(regions) < 3:
        raise SemilandError(
            f"--folds needs at least 3 regions (test, validation, training); the data has {len(regions)}"
        )
    unknown = [t for t in tests or [] if t not in regions]
    if unknown:
        raise SemilandError(f"--fold-tests: no region '{unknown[0]}'; the regions are {', '.join(regions)}")
    n = len(regions)
    budgets = {}
    for kind, count in kinds:
        for i, test in enumerate(regions):
            if tests and test not in tests:
                continue
            val = regions[(i + 1) % n]
            train = [regions[(i + k) % n] for k in range(2, n)]
            labeled = train[:1] if kind == "region" else train
            budgets[f"{kind}{count}-on-{test}"] = [
                "data.split_mode=region", f"data.test=[{test}]", f"data.val=[{val}]",
                f"data.labeled=[{','.join(labeled)}]", "data.unlabeled=rest", f"data.labeled_count={count}",
            ]  # fmt: skip
    return budgets


def is_oracle(row: CellRow) -> bool:
    """A supervised cell trained on every training image, under any label (`oracle_long`)."""
    recipe = row.recipe
    return row.method == ORACLE or (recipe is not None and recipe.method == "supervised" and recipe.oracle)


def fold_oracle(rows: list[CellRow], row: CellRow) -> CellRow | None:
    """The oracle whose lead over `row` (a supervised cell) is its fold's gap: an oracle of any budget of the
    same fold (one training pool) and seed, ranked by the same step count, then the same machine — a gap's end
    only, so one from another machine serves where none trained on this one."""
    found = [r for r in rows if _fold(r.budget) == _fold(row.budget) and r.seed == row.seed and is_oracle(r)]
    return max(found, key=lambda r: (r.steps == row.steps, r.device == row.device, r.method == ORACLE), default=None)


def _fold(budget: str) -> str:
    """A fold budget's test region (the fold), else the budget itself."""
    return m["test"] if (m := FOLD_BUDGET.match(budget)) else budget


def _pairs(rows: list[CellRow], method: str, budgets: list[str], score: Score) -> list[tuple[str, float, float]]:
    """(budget, method − supervised, oracle − supervised) × 100 for each cell of `method` whose `baseline`
    finished; the oracle's gap is NaN where none did."""
    out = []
    for r in (r for b in budgets for r in rows if r.budget == b and r.method == method):
        sup = baseline(rows, r, strict=True)  # the protocol pairs within one step count and machine only
        if sup is None or (own := r.get(score)) is None or (base := sup.get(score)) is None:
            continue
        ora = r if is_oracle(r) else fold_oracle(rows, sup)
        gap = ora.get(score) if ora is not None else None
        out.append((r.budget, 100 * (own - base), math.nan if gap is None else 100 * (gap - base)))
    return out


def pooled(diffs: list[float]) -> dict[str, float]:
    """Mean, 95 % interval half-width (t), wins, n and the paired t-test's p of differences (NaN where undefined)."""
    n = len(diffs)
    mean = statistics.mean(diffs) if diffs else math.nan
    sd = statistics.stdev(diffs) if n > 1 else math.nan
    half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else math.nan
    p = float(ttest_1samp(diffs, 0.0).pvalue) if n >= 3 and sd > 0 else math.nan
    return {"mean": mean, "ci": half, "wins": sum(d > 0 for d in diffs), "n": n, "p": p}


def _fold_kinds(rows: list[CellRow]) -> dict[str, list[str]]:
    """Budget kind ("region2") → its fold budgets, in the rows' order."""
    kinds: dict[str, list[str]] = {}
    for b in dict.fromkeys(r.budget for r in rows):
        if m := FOLD_BUDGET.match(b):
            kinds.setdefault(f"{m['kind']}{m['n']}", []).append(b)
    return kinds


def _compared(rows: list[CellRow], methods: list[str]) -> list[str]:
    """The labels a fold table compares with their baseline: the methods, then the oracles (every label trained
    on every image); a plain supervised label is a baseline, not a row."""
    baselines = trained_as(rows, "supervised")
    oracles = list(dict.fromkeys([ORACLE, *(r.method for r in rows if is_oracle(r))]))
    return [m for m in methods if m not in baselines and m not in oracles] + oracles


def _fmt(x: float, signed: bool = True) -> str:
    return "–" if math.isnan(x) else (f"{x:+.2f}" if signed else f"{x:.2f}")


def _pooled_row(rows: list[CellRow], method: str, budgets: list[str], score: Score) -> list[str] | None:
    """Δ mean, 95 % CI, won, p, gap, recovered of `method` on `score`, pooled over `budgets` × seeds."""
    pairs = _pairs(rows, method, budgets, score)
    if not pairs:
        return None
    s = pooled([d for _, d, _ in pairs])
    gaps = [g for _, _, g in pairs if not math.isnan(g)]
    gap = statistics.mean(gaps) if gaps else math.nan
    an_oracle = any(r.method == method and is_oracle(r) for r in rows)
    recovered = 100 * s["mean"] / gap if gaps and gap > 0 and not an_oracle else math.nan
    return [
        str(len({b for b, _, _ in pairs})), _fmt(s["mean"]), f"± {_fmt(s['ci'], False)}", f"{s['wins']}/{s['n']}",
        "–" if math.isnan(s["p"]) else f"{s['p']:.3g}", _fmt(gap, False),
        "–" if math.isnan(recovered) else f"{recovered:.0f} %",
    ]  # fmt: skip


def fold_table(rows: list[CellRow], methods: list[str], score: Score = TEST) -> Table | None:
    """Per budget kind and method: the pooled pairs of every fold and seed (None when no budget is a fold)."""
    table = []
    for kind, budgets in _fold_kinds(rows).items():
        for method in _compared(rows, methods):
            if (cells := _pooled_row(rows, method, budgets, score)) is not None:
                table.append([kind, method, *cells])
    if not table:
        return None
    where = "validation tiles' mIoU (where methods and settings are chosen)" if score == VAL else f"test {score.key}"
    caption = (
        f"Leave-one-tile-out: {where} minus supervised of the same fold and seed, pooled over folds × seeds "
        "(mean, 95 % interval, pairs won, paired t-test p; gap = oracle − supervised; recovered = mean / gap)"
    )
    header = ["budget", "method", "folds paired", "Δ mean", "95 % CI", "won", "p", "gap", "recovered"]
    return caption, header, table


def fold_class_table(rows: list[CellRow], methods: list[str]) -> Table | None:
    """The same pooling per class (test IoU): which classes a method gains or loses across the folds."""
    classes = class_scores(rows)
    table = []
    for kind, budgets in _fold_kinds(rows).items():
        for method in [m for m in _compared(rows, methods) if m != ORACLE]:
            for score in classes:
                if (cells := _pooled_row(rows, method, budgets, score)) is not None:
                    table.append([kind, method, score.cls, *cells])
    if not table:
        return None
    caption = "Leave-one-tile-out per class: test IoU minus supervised, pooled over folds × seeds (as above)"
    return (
        caption,
        ["budget", "method", "class", "folds paired", "Δ mean", "95 % CI", "won", "p", "gap", "recovered"],
        table,
    )
