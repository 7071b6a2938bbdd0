"""A method's heads scored alone: the sweep summary's "Each head alone" table.

A method with `heads` (DLLR: one network per modality, whose fused prediction is what it is scored on) has
each head scored on its own as well (`semiland test`; the cells' scores with a `head`, `cells.head_scores`).
Per budget, method, head and set the table gives the head's mIoU, its difference to the whole method and to
supervised, seed by seed, and its per-class IoU: whether fusing helps, and whether a class one modality cannot
see is lost by the other too (the Dubai simulated SAR's vegetation, docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from semiland.bench.sweep.layout import CellRow, Score
from semiland.bench.sweep.stats import class_scores, extra_sets, paired_stats, seed_stats, with_baselines
from semiland.bench.sweep.tables import Table, fmt_number, fmt_p_value, fmt_paired


def _heads_of(rows: list[CellRow]) -> list[Score]:
    """The heads' mIoU scores the cells hold (per set and head), in first-seen order."""
    return list(dict.fromkeys(s for r in rows for s in r.scores if s.head and s.metric == "mIoU"))


def _with_p(p: dict[str, Any]) -> str:
    """A paired difference with its t-test's p where there is one (3 seeds or more)."""
    return fmt_paired(p) + ("" if (q := fmt_p_value(p)) == "–" else f", p {q}")


def heads_table(rows: list[CellRow], methods: list[str]) -> Table | None:
    """One row per budget, method, head and set; None when no cell has a head scored."""
    heads = _heads_of(rows)
    if not heads:
        return None
    classes = [c.cls for c in class_scores(rows)]
    order = {on: i for i, on in enumerate(["test", *extra_sets(rows)])}
    out = []
    for budget in dict.fromkeys(r.budget for r in rows):
        for method in methods:
            same_machine, _ = with_baselines(rows, method, "supervised", budget)
            for head in sorted(heads, key=lambda h: (order.get(h.on, len(order)), h.head)):
                mean, std, n = seed_stats(rows, method, budget, head)
                if not n:
                    continue
                whole = Score(head.on)  # the method's own mIoU on the same set
                own = paired_stats(rows, method, budget, head, versus=method, versus_score=whole)
                sup = paired_stats(same_machine, method, budget, head, versus_score=whole)
                per_class = (seed_stats(rows, method, budget, Score.iou(c, head.on, head.head))[0] for c in classes)
                out.append([budget, method, head.head, head.on, f"{mean:.2f} ± {std:.2f} ({n})",
                            _with_p(own), _with_p(sup), *(fmt_number(x) for x in per_class)])  # fmt: skip
    caption = ("Each head alone (`Method.heads`: DLLR's branches; points, paired by seed with the whole method and "
               "with supervised; per-class IoU mean over seeds)")  # fmt: skip
    head = ["budget", "method", "head", "set", "mIoU (seeds)", "Δ vs the method", "Δ vs supervised", *classes]
    return caption, head, out
