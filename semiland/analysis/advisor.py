"""A labeling advisor built on MiniFrance's two conditions for a useful split (§4, §6.2):
(1) every class appears in the labeled split; (2) the training data covers the test data's appearance —
plus a third learned from our own benchmark (docs/benchmarks.md): (3) every class in a useful *amount*.

Candidates (regions or images) are scored by what labeling them would add to the current labeled set:
    score = new classes + class-amount gain + appearance coverage gain
*New classes* counts classes present in the candidate's masks but absent from the labeled set. The *class
amount* of a labeled set is mean_k min(1, s_k / τ) over the target's classes, s_k the class's share of the
set's labeled pixels and τ = 1 / (2 × number of target classes) (half a uniform share): 1 when no class is
scarce. mIoU weighs classes equally, so the classes are weighted equally too, not by their target shares.
Both are known only where masks exist (designing a split on a labeled dataset; 0 for mask-less tiles). The
*coverage gain* is the increase of IoT(labeled map → target map) ∈ [0, 1] on the appearance plane, the
target being the test units when given, else every unit. One new class outweighs the other two terms.
`suggest` picks greedily up to a budget; `random_baseline` gives the same scores for random picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semiland.analysis.appearance import Plane, appearance_map, iot

MIN_CLASS_PIXELS = 1  # a class counts as present in a set from this many labeled pixels


@dataclass
class Candidate:
    unit: str
    new_classes: list[str]
    class_amount_gain: float
    coverage_gain: float
    score: float


@dataclass
class AdvisorData:
    """Per sub-tile: its unit (region or image id), 2-D position and class pixel counts."""

    units: list[str]
    xy: np.ndarray  # (N, 2)
    counts: np.ndarray  # (N, K)
    class_names: list[str]
    plane: Plane

    def rows(self, units: set[str]) -> np.ndarray:
        return np.array([u in units for u in self.units], dtype=bool)

    def classes_in(self, units: set[str]) -> set[int]:
        return set(np.flatnonzero(self.counts[self.rows(units)].sum(0) >= MIN_CLASS_PIXELS).tolist())

    def map_of(self, units: set[str]) -> np.ndarray:
        return appearance_map(self.xy[self.rows(units)], self.plane)

    def class_amount(self, units: set[str], classes: list[int]) -> float:
        """mean over `classes` of min(1, share / τ), τ = 1 / (2 len(classes)); 0 for a set without masks."""
        counts = self.counts[self.rows(units)].sum(0)[classes].astype(float)
        if not classes or counts.sum() == 0:
            return 0.0
        tau = 1 / (2 * len(classes))
        return float(np.minimum(1.0, counts / counts.sum() / tau).mean())


def describe(c: dict) -> str:
    """One candidate (a `Candidate.__dict__`, as saved in JSON) in words: what labeling it would add."""
    new = f"new classes {', '.join(c['new_classes'])}; " if c["new_classes"] else ""
    return f"{new}class amount {c['class_amount_gain']:+.2f}; appearance coverage {c['coverage_gain']:+.2f}"


def rank(data: AdvisorData, labeled: set[str], candidates: list[str], target: set[str]) -> list[Candidate]:
    """Candidates by descending score (ties: unit name) for adding one of them to `labeled`."""
    have = data.classes_in(labeled)
    target_map = data.map_of(target)
    # the classes that count: the target's where it has masks, else every class seen anywhere
    classes = sorted(data.classes_in(target) or data.classes_in(set(data.units)))
    base = iot(data.map_of(labeled), target_map) if labeled else 0.0
    amount = data.class_amount(labeled, classes)
    out = []
    for unit in candidates:
        new = sorted(data.classes_in({unit}) - have)
        more = data.class_amount(labeled | {unit}, classes) - amount
        gain = iot(data.map_of(labeled | {unit}), target_map) - base
        out.append(Candidate(unit, [data.class_names[k] for k in new], more, gain, len(new) + more + gain))
    return sorted(out, key=lambda c: (-c.score, c.unit))


def suggest(
    data: AdvisorData, budget: int, candidates: list[str], target: set[str], labeled: set[str] | None = None
) -> tuple[list[Candidate], dict[str, float | list[str]]]:
    """Greedy picks (each the best given the previous ones) and the two conditions for the result."""
    chosen = set(labeled or ())
    picks: list[Candidate] = []
    pool = [c for c in candidates if c not in chosen]
    for _ in range(min(budget, len(pool))):
        best = rank(data, chosen, pool, target)[0]
        picks.append(best)
        chosen.add(best.unit)
        pool.remove(best.unit)
    return picks, conditions(data, chosen, set(pool), target)


def conditions(data: AdvisorData, labeled: set[str], unlabeled: set[str], target: set[str]) -> dict:
    """MiniFrance's conditions: classes of the target missing from the labeled set; IoT coverage of the
    target by the labeled set and by the whole training set (labeled ∪ unlabeled)."""
    target_map = data.map_of(target)
    missing = sorted(data.classes_in(target) - data.classes_in(labeled))
    return {
        "missing_classes": [data.class_names[k] for k in missing],
        "iot_labeled": iot(data.map_of(labeled), target_map),
        "iot_training": iot(data.map_of(labeled | unlabeled), target_map),
    }


def random_baseline(
    data: AdvisorData, budget: int, candidates: list[str], target: set[str], draws: int = 20, seed: int = 0
) -> dict[str, float]:
    """The conditions for `draws` random labeled sets of the same budget: mean missing classes and IoT."""
    rng = np.random.default_rng(seed)
    missing, cover = [], []
    for _ in range(draws):
        pick = set(rng.choice(candidates, size=min(budget, len(candidates)), replace=False).tolist())
        c = conditions(data, pick, set(candidates) - pick, target)
        missing.append(len(c["missing_classes"]))
        cover.append(c["iot_labeled"])
    return {"missing_classes": float(np.mean(missing)), "iot_labeled": float(np.mean(cover)), "draws": draws}
