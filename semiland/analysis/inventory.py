"""The analysis unit: sub-tiles of every image, each with appearance features and class pixel counts.

Images are read one at a time (bounded memory) and cut into a grid of `subtile`-pixel windows (at most
`per_image` of them, evenly spread, so a 10,000² tile does not yield thousands); an image larger than
WINDOWED_PIXELS that GDAL reads gives only those windows' pixels (read by window, never whole). Features and counts are
cached in `OUT/cache/` under a key made of the files (path, size, mtime) and the settings, so re-running
the analysis with other plots or splits reads them back instantly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semiland.analysis.features import Extractor, make_extractor
from semiland.console import progress_bar
from semiland.data.index import RasterInfo, read_info
from semiland.data.sources import DatasetSpec, LoadedSample, SampleRef
from semiland.data.store import cut
from semiland.io import atomic_save

STATS_IMAGES = 16  # images sampled (evenly) to fix each band's [2 %, 98 %] scaling range
WINDOWED_PIXELS = 2048 * 2048  # larger images that GDAL reads are read by sub-tile window


def large_raster(ref: SampleRef) -> RasterInfo | None:
    """The header of a whole file (not a window of one) larger than WINDOWED_PIXELS that GDAL reads by window;
    None for any other image."""
    if ref.window is not None:
        return None
    info = read_info(ref.image)
    return info if info.windowed and info.pixels > WINDOWED_PIXELS else None


def image_parts(
    spec: DatasetSpec, ref: SampleRef, bands: list[int] | None, subtile: int, per_image: int
) -> Iterator[tuple[tuple[int, int, int, int], LoadedSample]]:
    """The image's sub-tile boxes (`grid_boxes`) and each box's pixels (+ mask): a large raster GDAL reads gives
    just those windows; any other image is read once, whole, and cut."""
    if info := large_raster(ref):
        for box in grid_boxes(info.height, info.width, subtile, per_image):
            yield box, spec.load(ref, bands, box)
        return
    whole = spec.load(ref, bands)
    for box in grid_boxes(*whole.valid.shape, subtile, per_image):
        yield box, cut(whole, box)


@dataclass
class Inventory:
    """One row per sub-tile. counts[i, k]: pixels of class k (labeled images; zeros otherwise)."""

    ids: list[str]  # sample id of each sub-tile's image
    regions: list[str]
    boxes: np.ndarray  # (N, 4) int: row, col, height, width inside the image
    features: np.ndarray  # (N, D) float32
    counts: np.ndarray  # (N, K) int64
    labeled: np.ndarray  # (N,) bool: the image has a mask
    extractor: str
    note: str

    def select(self, keep: np.ndarray) -> Inventory:
        ids = [self.ids[i] for i in np.flatnonzero(keep)]
        regions = [self.regions[i] for i in np.flatnonzero(keep)]
        return Inventory(
            ids, regions, self.boxes[keep], self.features[keep], self.counts[keep], self.labeled[keep],
            self.extractor, self.note,
        )  # fmt: skip

    def rows(self, ids: set[str]) -> np.ndarray:
        """(N,) bool: sub-tiles of the images in `ids`."""
        return np.array([i in ids for i in self.ids], dtype=bool)


def grid_boxes(h: int, w: int, subtile: int, per_image: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping `subtile` windows covering (h, w) (edge windows shifted inside); at most `per_image`,
    evenly spread. An image smaller than `subtile` is one window of its own size."""
    s_h, s_w = min(subtile, h), min(subtile, w)
    rows = sorted({min(r, h - s_h) for r in range(0, h, s_h)})
    cols = sorted({min(c, w - s_w) for c in range(0, w, s_w)})
    boxes = [(r, c, s_h, s_w) for r in rows for c in cols]
    if len(boxes) > per_image:
        boxes = [boxes[i] for i in np.linspace(0, len(boxes) - 1, per_image).round().astype(int)]
    return boxes


def band_range(refs: list[SampleRef], spec: DatasetSpec, bands: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 2 % and 98 % quantiles over up to STATS_IMAGES evenly spaced images: (C,), (C,)."""
    picks = [refs[i] for i in np.linspace(0, len(refs) - 1, min(STATS_IMAGES, len(refs))).round().astype(int)]
    lows, highs = [], []
    for ref in picks:
        pixels_only = dataclasses.replace(ref, mask=None)
        if large_raster(ref):  # its sub-tiles' pixels
            parts = [s for _, s in image_parts(spec, pixels_only, bands, 256, STATS_IMAGES)]
            image = np.concatenate([p.image.reshape(p.image.shape[0], -1) for p in parts], 1)
            valid = np.concatenate([p.valid.ravel() for p in parts])
        else:
            s = spec.load(pixels_only, bands)
            image, valid = s.image.reshape(s.image.shape[0], -1), s.valid.ravel()
        px = image[:, valid][:, ::97] if valid.any() else image
        lo, hi = np.quantile(px, [0.02, 0.98], axis=1)
        lows.append(lo)
        highs.append(hi)
    lo, hi = np.median(lows, 0), np.median(highs, 0)
    return lo.astype(np.float32), np.maximum(hi, lo + 1e-6).astype(np.float32)


def _cache_key(refs: list[SampleRef], settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for ref in refs:
        for path in (ref.image, ref.mask, ref.sar):
            if path is not None:
                st = Path(path).stat()
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{ref.window}".encode())
    return h.hexdigest()[:16]


def build_inventory(
    spec: DatasetSpec,
    refs: list[SampleRef],
    out: Path,
    features: str = "auto",
    weights: str = "",
    subtile: int = 256,
    per_image: int = 16,
    batch: int = 32,
    bands: list[int] | None = None,
    progress: bool = True,
) -> Inventory:
    """Sub-tiles of `refs` with features and class counts; cached in `out/cache`."""
    settings = {"features": features, "weights": weights, "subtile": subtile, "per_image": per_image, "bands": bands}
    cache = out / "cache" / f"inventory-{_cache_key(refs, settings)}.npz"
    if cache.is_file():
        return _load(cache)
    lo, hi = band_range(refs, spec, bands)
    extractor: Extractor | None = None
    ids, regions, boxes, feats, counts, labeled = [], [], [], [], [], []
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if pending:
            feats.append(extractor(np.stack([t for t, _ in pending]), np.stack([v for _, v in pending])))
            pending.clear()

    k = spec.classes.num_classes
    for ref in progress_bar(refs, desc="analyse images", unit="image", disable=not progress):
        for (r, c, h, w), s in image_parts(spec, ref, bands, subtile, per_image):
            if extractor is None:
                extractor = make_extractor(features, s.image.shape[0], weights)
            tile = np.clip((s.image - lo[:, None, None]) / (hi - lo)[:, None, None], 0, 1).astype(np.float32)
            valid = s.valid
            if (h, w) != (subtile, subtile):  # small image: pad to the batch shape (padding is invalid)
                tile = np.pad(tile, ((0, 0), (0, subtile - h), (0, subtile - w)))
                valid = np.pad(valid, ((0, subtile - h), (0, subtile - w)))
            pending.append((tile, valid))
            m = s.mask
            counts.append(np.zeros(k, np.int64) if m is None else np.bincount(m[m < k].ravel(), minlength=k)[:k])
            ids.append(ref.id)
            regions.append(ref.region)
            boxes.append((r, c, h, w))
            labeled.append(s.mask is not None)
            if len(pending) == batch:
                flush()
    flush()
    inv = Inventory(
        ids, regions, np.asarray(boxes, np.int64).reshape(-1, 4), np.concatenate(feats) if feats else np.zeros((0, 0)),
        np.asarray(counts, np.int64).reshape(-1, k), np.asarray(labeled, bool),
        extractor.name if extractor else features, extractor.note if extractor else "",
    )  # fmt: skip
    _save(inv, cache)
    return inv


def _save(inv: Inventory, path: Path) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(
                f, ids=np.asarray(inv.ids), regions=np.asarray(inv.regions), boxes=inv.boxes,
                features=inv.features, counts=inv.counts, labeled=inv.labeled,
                meta=np.asarray([inv.extractor, inv.note]),
            )  # fmt: skip

    atomic_save(path, save)


def _load(path: Path) -> Inventory:
    with np.load(path, allow_pickle=False) as z:
        meta = z["meta"].tolist()
        return Inventory(
            z["ids"].tolist(), z["regions"].tolist(), z["boxes"], z["features"], z["counts"], z["labeled"],
            meta[0], meta[1],
        )  # fmt: skip
