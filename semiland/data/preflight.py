"""The pre-flight pass before training: every mask of the labeled, validation and test images decoded (by
blocks where the raster is large) and every image's bands checked, so a bad file is named before the work,
not after it; and a one-screen summary of what will run, with each class's share of the labeled pixels and a
warning for a class the labeled images barely or never show (a model cannot learn a class it never sees,
whatever the method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semiland.console import progress_bar
from semiland.data.prepare import PreparedData
from semiland.data.store import SampleStore

RARE = 0.01  # a class under 1 % of the labeled pixels is "barely seen"
BAR_FROM = 20  # images: a progress bar from this many on


@dataclass
class Preflight:
    labeled_pixels: np.ndarray  # (K,) labeled pixels per class
    evaluated_pixels: np.ndarray  # (K,) validation + test pixels per class
    warnings: list[str]

    def shares(self) -> np.ndarray:
        return self.labeled_pixels / max(1, int(self.labeled_pixels.sum()))


def preflight(data: PreparedData, bands: list[int] | None, progress: bool = True) -> Preflight:
    """Decode every mask of the labeled, validation and test images (an unknown colour, a size mismatch or a
    band count named now, not after training); count classes. (Every unlabeled image was opened when the
    data's index was built.)"""
    spec, split, classes = data.spec, data.split, data.spec.classes
    store = SampleStore(spec, bands, data.mean, data.std, cache=False, windowed=True, index=data.index)
    k = classes.num_classes
    counts = {"labeled": np.zeros(k, np.int64), "evaluated": np.zeros(k, np.int64)}
    with_masks = [(i, "labeled") for i in split.labeled] + [
        (i, "evaluated") for i in dict.fromkeys(split.val + split.test)
    ]
    total = len(with_masks)
    with progress_bar(
        total=total, desc="checking the data", unit="image", disable=not progress or total < BAR_FROM
    ) as bar:
        for sample_id, kind in with_masks:
            for _, sample in store.blocks(sample_id):  # reads and decodes: raises one line on bad input
                if sample.mask is not None:
                    kept = sample.mask[sample.mask != classes.ignore_index]
                    counts[kind] += np.bincount(kept.ravel(), minlength=k)[:k]
            bar.update()
    return Preflight(counts["labeled"], counts["evaluated"], class_warnings(data, counts))


def class_warnings(data: PreparedData, counts: dict[str, np.ndarray]) -> list[str]:
    names = data.spec.classes.names
    labeled, evaluated = counts["labeled"], counts["evaluated"]
    share = labeled / max(1, int(labeled.sum()))
    ev_share = evaluated / max(1, int(evaluated.sum()))
    out = []
    never = [i for i in range(len(names)) if labeled[i] == 0]
    if never:
        held = ", ".join(f"{names[i]} {100 * ev_share[i]:.0f} %" for i in never if evaluated[i] > 0)
        out.append(
            f"the labeled images show no {', '.join(names[i] for i in never)}: no method can learn "
            f"{'it' if len(never) == 1 else 'them'} from this split"
            + (f" (validation + test pixels: {held})" if held else "")
            + "; label images that show them (semiland suggest-split picks some)"
        )
    rare = [i for i in range(len(names)) if 0 < share[i] < RARE]
    if rare:
        out.append(
            "the labeled images barely show "
            + ", ".join(f"{names[i]} ({100 * share[i]:.2f} % of labeled pixels)" for i in rare)
            + ": expect low IoU there, and semi-supervised methods to lose them to the common classes"
        )
    return out


def summary(data: PreparedData, check: Preflight) -> list[str]:
    """The lines printed before training: the data, the split and the labeled class shares."""
    split, names = data.split, data.spec.classes.names
    shares = check.shares()
    lines = [
        f"data: {data.spec.name} at {data.spec.root}; {split.summary()} images; {data.in_channels} bands; "
        f"{len(names)} classes"
        + (
            "; the val and test images are unlabeled training images too (transductive)"
            if split.info.get("transductive")
            else ""
        ),
        "labeled pixels by class: " + ", ".join(f"{n} {100 * s:.1f} %" for n, s in zip(names, shares, strict=True)),
    ]
    return lines + [f"warning: {w}" for w in check.warnings]
