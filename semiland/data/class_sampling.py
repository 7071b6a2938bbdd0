"""Rare-class sampling of labeled crops (Hoyer et al., "DAFormer", CVPR 2022, §3.3).

A labeled crop drawn uniformly mostly shows the classes that cover most of the labeled images; a class few
labeled pixels show is then seen in few crops, learnt late, and a semi-supervised method whose targets follow the
model's class balance teaches it away further (docs/benchmarks.md: FixMatch's lost building and vegetation).
Rare-class sampling draws a class c first, with

    P(c) = exp((1 - f_c) / T) / sum_c' exp((1 - f_c') / T),    f_c = c's share of the labeled pixels,

then a labeled pixel of c (uniformly among all of them, so an image in proportion to how much of c it shows), and
cuts the crop so that it holds that pixel at a random place. Small T favours the rarest class (the paper's
T = 0.01 on Cityscapes' 19 classes); large T draws the classes nearly uniformly (still far from the pixel shares).

Positions come from one pass over the labeled masks by blocks (`SampleStore.blocks`), keeping at most `POINTS`
per image and class: memory stays bounded for labeled rasters of any size.
"""

from __future__ import annotations

import numpy as np

from semiland.data.store import SampleStore
from semiland.errors import SemilandError

POINTS = 4096  # pixel positions kept per (labeled image, class)
SEED_TAG = 0x5C5  # the positions' subsample draws from its own generator: the crops' draws stay the stream's


class RareClassCrops:
    """Crop windows (at `data.scale`) centred near a pixel of a class drawn by rare-class sampling."""

    def __init__(
        self, store: SampleStore, ids: list[str], num_classes: int, ignore_index: int, temperature: float, seed: int
    ):
        if temperature <= 0:
            raise ValueError("rare-class sampling needs a temperature > 0")
        rng = np.random.default_rng([seed, SEED_TAG])
        self.ids = ids
        self.shapes = [store.shape(i, scaled=True) for i in ids]
        found = [_positions(store, sample_id, num_classes, ignore_index, rng) for sample_id in ids]
        self.points = [points for points, _ in found]  # [image][class] → (n ≤ POINTS, 2) int64 (row, col) at scale
        self.counts = np.stack([counts for _, counts in found])  # (images, K) labeled pixels
        present = self.counts.sum(0) > 0
        if not present.any():
            raise SemilandError("data.rare_class_temperature: the labeled images hold no labeled pixel")
        self.shares = self.counts.sum(0) / self.counts.sum()  # (K,) f_c
        logits = np.where(present, (1 - self.shares) / temperature, -np.inf)
        weights = np.exp(logits - logits[present].max())  # the largest is 1: no overflow at small T
        self.class_p = weights / weights.sum()  # (K,) P(c); 0 for a class no labeled pixel shows

    def window(self, rng: np.random.Generator, size: int) -> tuple[str, int, int]:
        """(sample id, top, left) of a size×size crop holding a pixel of a class drawn by P(c)."""
        c = int(rng.choice(len(self.class_p), p=self.class_p))
        per_image = self.counts[:, c]
        i = int(rng.choice(len(self.ids), p=per_image / per_image.sum()))
        row, col = self.points[i][c][int(rng.integers(len(self.points[i][c])))]
        height, width = self.shapes[i]
        top = int(np.clip(row - rng.integers(size), 0, max(0, height - size)))
        left = int(np.clip(col - rng.integers(size), 0, max(0, width - size)))
        return self.ids[i], top, left

    def describe(self, names: list[str]) -> str:
        """One line: each class's share of the labeled pixels and of the crops' drawn classes."""
        return ", ".join(
            f"{name} {100 * s:.0f} % → {100 * p:.0f} %"
            for name, s, p in zip(names, self.shares, self.class_p, strict=True)
        )


def _positions(
    store: SampleStore, sample_id: str, k: int, ignore: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to `POINTS` positions of each class in the sample, drawn uniformly over its pixels of that class (a
    block's positions weighted by how many pixels each one stands for), mapped to `data.scale`; and the sample's
    (K,) labeled pixel counts."""
    (h, w), (out_h, out_w) = store.shape(sample_id), store.shape(sample_id, scaled=True)
    counts = np.zeros(k, np.int64)
    found: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(k)]  # per class: (positions, weight)
    for (top, left, _, block_w), sample in store.blocks(sample_id):
        assert sample.mask is not None, "labeled samples carry a mask"
        flat = sample.mask.ravel()
        for c in np.unique(flat):
            if c == ignore or not 0 <= c < k:
                continue
            where = np.flatnonzero(flat == c)
            counts[c] += where.size
            kept = rng.choice(where, size=min(where.size, POINTS), replace=False)
            rows, cols = np.divmod(kept, block_w)
            scaled = np.stack([(top + rows) * out_h // h, (left + cols) * out_w // w], axis=1)
            found[c].append((scaled, where.size / kept.size))
    out = []
    for parts in found:
        if not parts:
            out.append(np.zeros((0, 2), np.int64))
            continue
        positions = np.concatenate([p for p, _ in parts])
        weight = np.concatenate([np.full(len(p), wt) for p, wt in parts])
        if len(positions) > POINTS:
            positions = positions[rng.choice(len(positions), POINTS, replace=False, p=weight / weight.sum())]
        out.append(positions)
    return out, counts
