"""Labeled / unlabeled / val / test splits: by region, by fraction, by count, or from a saved file.

Splits are seeded and saved as JSON (ids "region/stem") in the run folder; `split_mode=file` reuses one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semiland.data.sources import DatasetSpec
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, read_text_file

SETS = ("labeled", "unlabeled", "val", "test")


@dataclass
class Split:
    labeled: list[str]
    unlabeled: list[str]
    val: list[str]
    test: list[str]
    info: dict[str, Any] = field(default_factory=dict)  # how it was made (mode, seed, regions)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        path = Path(path)
        if not path.is_file():
            raise SemilandError(f"split file {path} not found")
        try:
            raw = json.loads(read_text_file(path, "split file"))
            return cls(**{k: list(raw[k]) for k in SETS}, info=raw.get("info", {}))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise SemilandError(
                f"split file {path} is not a semiland split ({err}); make one with `semiland fit`"
            ) from None

    def summary(self) -> str:
        return ", ".join(f"{k} {len(getattr(self, k))}" for k in SETS)


def _names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise SemilandError(f"data.{key} must be a list of region names in split_mode=region, got {value!r}")


def _by_region(spec: DatasetSpec, want: dict[str, Any], seed: int = 0) -> dict[str, list[str]]:
    regions = spec.regions
    chosen: dict[str, list[str]] = {}
    test_same_as_val = want.get("test") == "val"  # small datasets evaluate on their validation regions
    for key in ("labeled", "val") if test_same_as_val else ("labeled", "val", "test"):
        chosen[key] = _names(want.get(key), key)
    chosen.setdefault("test", [])
    chosen["unlabeled"] = (
        [r for r in regions if r not in {*chosen["labeled"], *chosen["val"], *chosen["test"]}]
        if want.get("unlabeled", "rest") == "rest"
        else _names(want.get("unlabeled"), "unlabeled")
    )
    seen: dict[str, str] = {}
    maskless = spec.unlabeled_regions  # always unlabeled (make_split adds their images)
    for key, names in chosen.items():
        for name in names:
            if name in maskless and key == "unlabeled":
                continue
            if name in maskless:
                raise SemilandError(
                    f"region '{name}' (data.{key}) has no masks/ folder: its images can only be unlabeled; add its "
                    "masks, or choose another region"
                )
            if name not in regions:
                raise SemilandError(f"region '{name}' (data.{key}) does not exist; regions are: {', '.join(regions)}")
            if name in seen:
                raise SemilandError(f"region '{name}' is in both data.{seen[name]} and data.{key}")
            seen[name] = key
    if test_same_as_val:
        chosen["test"] = chosen["val"]
    ids = {key: [s.id for s in spec.samples if s.region in names] for key, names in chosen.items()}
    count = want.get("labeled_count") or 0
    if count:  # a few labeled images of the labeled regions; their other images are unlabeled
        if not isinstance(count, int) or count < 0 or count > len(ids["labeled"]):
            raise SemilandError(
                f"data.labeled_count must be an image count in [0, {len(ids['labeled'])}] (the labeled regions' "
                f"images), got {count!r}"
            )
        keep = set(np.random.default_rng(seed).choice(ids["labeled"], size=count, replace=False).tolist())
        ids["unlabeled"] = [i for i in ids["labeled"] if i not in keep] + ids["unlabeled"]
        ids["labeled"] = [i for i in ids["labeled"] if i in keep]
    return ids


def _take(value: Any, n_total: int, key: str, mode: str) -> int:
    if value is None or value == 0:
        return 0
    if mode == "fraction":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
            raise SemilandError(f"data.{key} must be a fraction in (0, 1] in split_mode=fraction, got {value!r}")
        return max(1, round(value * n_total))
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SemilandError(f"data.{key} must be an image count in split_mode=count, got {value!r}")
    return value


# The validation and test images of a fraction / count split are one fixed draw: every seed and every labeled
# budget is evaluated on the same images, so the seeds' spread and the curves against the budget measure the
# labeled images, not test-set variance (S4Net's and MiniFrance's sensitivity studies keep their test sets).
EVAL_DRAW_SEED = 0


def _by_amount(spec: DatasetSpec, want: dict[str, Any], mode: str, seed: int) -> dict[str, list[str]]:
    ids = [s.id for s in spec.samples]
    fixed = [ids[i] for i in np.random.default_rng(EVAL_DRAW_SEED).permutation(len(ids))]
    n_val = _take(want.get("val"), len(ids), "val", mode)
    test_same_as_val = want.get("test") == "val"
    n_test = 0 if test_same_as_val else _take(want.get("test"), len(ids), "test", mode)
    val, test = fixed[:n_val], fixed[n_val : n_val + n_test]
    held = set(val + test)
    rest = [i for i in ids if i not in held]
    train = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]  # the seed draws the labeled
    n_lab = _take(want.get("labeled"), len(train), "labeled", mode)
    if n_lab > len(train):
        raise SemilandError(f"data.labeled asks for {n_lab} images but only {len(train)} are left after val / test")
    labeled, rest = train[:n_lab], train[n_lab:]
    unl = want.get("unlabeled", "rest")
    unlabeled = rest if unl == "rest" else rest[: _take(unl, len(train), "unlabeled", mode)]
    return {"labeled": labeled, "unlabeled": unlabeled, "val": val, "test": val if test_same_as_val else test}


def _by_ids(spec: DatasetSpec, want: dict[str, Any]) -> dict[str, list[str]]:
    known = spec.by_id()
    chosen = {k: list(want.get(k) or []) for k in ("labeled", "val", "test")}
    taken = {i for ids in chosen.values() for i in ids}
    unl = want.get("unlabeled", "rest")
    chosen["unlabeled"] = [s.id for s in spec.samples if s.id not in taken] if unl == "rest" else list(unl)
    missing = [i for ids in chosen.values() for i in ids if i not in known]
    if missing:
        raise SemilandError(f"the split names {len(missing)} images not in the dataset, e.g. '{missing[0]}'")
    return chosen


def make_split(
    spec: DatasetSpec,
    want: dict[str, Any],
    seed: int,
    oracle: bool = False,
    transductive: bool = False,
    unlabeled_share: float = 1.0,
) -> Split:
    """`want` holds split_mode, labeled, unlabeled, val, test, split_file (DataConfig fields). `transductive`:
    the val and test images also join the unlabeled set (never the labeled one, oracle or not).
    `unlabeled_share` < 1 keeps that share of the unlabeled images (see `unlabeled_subset`)."""
    mode = want.get("split_mode", "region")
    if mode == "file":
        split = Split.load(want.get("split_file") or "")
        known = spec.by_id()
        missing = [i for k in SETS for i in getattr(split, k) if i not in known]
        if missing:
            raise SemilandError(f"split file names {len(missing)} images not in the dataset, e.g. '{missing[0]}'")
    elif mode == "region":
        split = Split(**_by_region(spec, want, seed))
    elif mode == "ids":  # explicit sample ids per set (a dataset's official lists)
        split = Split(**_by_ids(spec, want))
    elif mode in ("fraction", "count"):
        split = Split(**_by_amount(spec, want, mode, seed))
    else:
        raise SemilandError(f"unknown data.split_mode '{mode}'; use region, fraction, count, ids or file")
    if mode != "file":
        split.unlabeled += [s.id for s in spec.unlabeled]
    if oracle:  # the upper bound: every training image that has a mask is labeled
        with_mask = {s.id for s in spec.samples}
        split.labeled += [i for i in split.unlabeled if i in with_mask]
        split.unlabeled = [i for i in split.unlabeled if i not in with_mask]
    # a run's own split.json (what a resume reads back) holds the share already drawn: drawing again would halve it
    drawn = split.info.get("unlabeled_share") if mode == "file" else None
    if drawn is not None and drawn != unlabeled_share:
        raise SemilandError(
            f"split file {want.get('split_file')} keeps {drawn} of the unlabeled images, the config asks "
            f"data.unlabeled_share={unlabeled_share}; set data.unlabeled_share={drawn} or use a split made without it"
        )
    if unlabeled_share < 1 and drawn is None:
        split.unlabeled = unlabeled_subset(split.unlabeled, unlabeled_share, seed)
    if transductive:  # after the oracle: evaluation images are only ever unlabeled training images
        have = set(split.unlabeled)
        split.unlabeled += [i for i in dict.fromkeys(split.val + split.test) if i not in have]
    if not split.labeled:
        raise SemilandError(f"the split has no labeled image ({split.summary()}); check data.labeled")
    split.info = {"mode": mode, "seed": seed, "oracle": oracle, "transductive": transductive, "dataset": spec.name}
    if unlabeled_share < 1:
        split.info["unlabeled_share"] = unlabeled_share
    return split


def unlabeled_subset(ids: list[str], share: float, seed: int) -> list[str]:
    """`share` of the unlabeled images (at least one), in their order. The draw is the first images of one seeded
    permutation, so for one seed a smaller share is a subset of a larger one: a curve of a method's gain against
    the unlabeled amount (does more imagery help?) adds images instead of drawing new ones at each point."""
    order = np.random.default_rng([seed, 1]).permutation(len(ids))  # [seed, 1]: not labeled_count's draw
    return [ids[k] for k in sorted(order[: max(1, round(share * len(ids)))].tolist())]
