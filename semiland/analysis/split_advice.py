"""`semiland suggest-split`: the advisor's labeled set for a budget, as a split file ready for training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semiland.analysis.advisor import random_baseline, rank, suggest
from semiland.analysis.run import AnalyzeOptions, class_source, embed, restrict
from semiland.data.sources import DatasetSpec
from semiland.data.splits import Split
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, ensure_writable_dir


def suggest_split(
    spec: DatasetSpec, out: Path, opts: AnalyzeOptions, budget: int, test: list[str], val: list[str]
) -> dict[str, Any]:
    """Pick `budget` units (regions or images) to label, outside the test / val regions, so that the labeled
    set holds every class and covers the target's appearance (the test regions, else the whole dataset)."""
    out = ensure_writable_dir(out)
    if budget < 1:
        raise SemilandError(f"--budget must be at least 1, got {budget}")
    spec = restrict(spec, opts.regions)
    unknown = sorted(set(test + val) - {s.region for s in spec.samples})
    if unknown:
        raise SemilandError(f"--test / --val regions {unknown} are not labeled regions of the dataset {spec.regions}")
    a = embed(spec, out, opts)
    adv = a.advisor(opts.unit)
    held = set(test + val)
    unit_region = dict(zip(adv.units, a.inv.regions, strict=True))
    with_mask = {s.id for s in spec.samples}
    unit_of = dict(zip(a.inv.ids, adv.units, strict=True))
    candidates = sorted({u for i, u in unit_of.items() if unit_region[u] not in held and i in with_mask})
    if not candidates:
        raise SemilandError("no labeled region or image is left to pick from outside --test / --val")
    target = {u for u in adv.units if unit_region[u] in test} or set(adv.units)
    picks, cond = suggest(adv, budget, candidates, target)
    first = rank(adv, set(), candidates, target)  # every candidate's score as the first pick
    chosen = {p.unit for p in picks}
    ids = sorted(set(a.inv.ids))
    split = Split(
        labeled=[i for i in ids if unit_of[i] in chosen],
        unlabeled=[i for i in ids if unit_of[i] not in chosen and unit_region[unit_of[i]] not in held],
        val=[i for i in ids if unit_region[unit_of[i]] in val],
        test=[i for i in ids if unit_region[unit_of[i]] in test],
        info={"mode": "advisor", "budget": budget, "unit": opts.unit, "features": a.inv.extractor},
    )
    split_file = out / "suggested_split.json"
    split.save(split_file)
    result = {
        "picks": [p.__dict__ for p in picks],
        "ranking": [c.__dict__ for c in first],
        "conditions": cond,
        "random_baseline": random_baseline(adv, budget, candidates, target, seed=opts.seed),
        "target": "test regions" if test else "all data",
        "features": a.inv.note,
        "class_source": class_source(opts),
        "split_file": split_file.name,  # beside this file (the folder may be moved or swapped in by --overwrite)
    }
    atomic_write_json(out / "suggestion.json", result)
    return result
