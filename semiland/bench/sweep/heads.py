"""A method's heads scored alone: the sweep summary's "Each head alone" table.

A method with `heads` (DLLR: one network per modality, whose fused prediction is what it is scored on) has
each head scored on its own as well (`semiland test`; the cells' `[SET:]alone/<head>/…` keys, `sweep.head_scores`).
Per budget, method, head and set the table gives the head's mIoU, its difference to the whole method and to
supervised, seed by seed, and its per-class IoU: whether fusing helps, and whether a class one modality cannot
see is lost by the other too (the Dubai simulated SAR's vegetation, docs/benchmarks.md).
"""

from __future__ import annotations

import re
from typing import Any

from semiland.bench.sweep.layout import CellRow
from semiland.bench.sweep.stats import base_on_own_device, extra_sets, paired_stats, seed_stats
from semiland.bench.sweep.tables import Table, fmt_number, fmt_p_value, fmt_paired

HEAD_KEY = re.compile(r"^(?:(?P<on>[^:/]+):)?alone/(?P<head>[^/]+)/mIoU$")


def _heads_of(rows: list[CellRow]) -> list[tuple[str, str]]:
    """(set prefix, head) pairs the cells hold, in first-seen order: ("", "optical"), ("unlabeled:", "sar"), …"""
    found = (HEAD_KEY.match(k) for r in rows for k in r)
    return list(dict.fromkeys((f"{m['on']}:" if m["on"] else "", m["head"]) for m in found if m))


def _with_p(p: dict[str, Any]) -> str:
    """A paired difference with its t-test's p where there is one (3 seeds or more)."""
    return fmt_paired(p) + ("" if (q := fmt_p_value(p)) == "–" else f", p {q}")


def heads_table(rows: list[CellRow], methods: list[str]) -> Table | None:
    """One row per budget, method, head and set; None when no cell has a head scored."""
    pairs = _heads_of(rows)
    if not pairs:
        return None
    classes = [k.removeprefix("IoU/") for k in dict.fromkeys(k for r in rows for k in r if k.startswith("IoU/"))]
    order = {on: i for i, on in enumerate(["", *(f"{s}:" for s in extra_sets(rows))])}
    out = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        for method in methods:
            same_machine, _ = base_on_own_device(rows, method, "supervised", budget, methods)
            for on, head in sorted(pairs, key=lambda p: (order.get(p[0], len(order)), p[1])):
                key = f"{on}alone/{head}/mIoU"
                mean, std, n = seed_stats(rows, method, budget, key)
                if not n:
                    continue
                own = paired_stats(rows, method, budget, key, versus=method, versus_key=f"{on}mIoU")
                sup = paired_stats(same_machine, method, budget, key, versus_key=f"{on}mIoU")
                per_class = (seed_stats(rows, method, budget, f"{on}alone/{head}/IoU/{c}")[0] for c in classes)
                out.append([budget, method, head, on.rstrip(":") or "test", f"{mean:.2f} ± {std:.2f} ({n})",
                            _with_p(own), _with_p(sup), *(fmt_number(x) for x in per_class)])  # fmt: skip
    caption = ("Each head alone (`Method.heads`: DLLR's branches; points, paired by seed with the whole method and "
               "with supervised; per-class IoU mean over seeds)")  # fmt: skip
    head = ["budget", "method", "head", "set", "mIoU (seeds)", "Δ vs the method", "Δ vs supervised", *classes]
    return caption, head, out
