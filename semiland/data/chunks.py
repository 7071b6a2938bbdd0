"""Training crops cut several at a time from one window read (a chunk), for stores that read by window.

A 64² crop read by window from a tiled, compressed GeoTIFF decodes every tile it touches (256² or 512² px
each) for 4 096 pixels: ~10× what the crop of an image held in memory costs (docs/benchmarks.md,
read-speed). A chunk is a `CHUNK`² window with its corner on the `ALIGN` grid, whole tiles, read once and cut
into as many crops as its area holds, so each decoded pixel serves once on average.

Which chunk and which crop an item gets are functions of its index (no state carried from item to item), so
a stream stays reproducible and a resumed run draws what an uninterrupted one would:

    item i → batch n = i // batch and place j = i % batch in it; batch n is drawn by loader process
    (lane) n % lanes (the DataLoader deals batches round-robin), as that process's k-th batch, k = n // lanes
    slot (lane, j) walks a sequence of chunks; chunk c serves `uses(c)` of the slot's batches in turn

So every batch holds crops of `batch` different chunks (as many places as independent random crops), and
a process holds one chunk per slot: `batch` × CHUNK² × bands values per stream and process.

Crop corners fall uniformly over the image, as the whole-image path draws them: chunks overlap (their corners
are ALIGN apart), so a corner reachable from `count` chunks is kept with probability 1 / count, and each
chunk is drawn in proportion to the kept probability mass it holds (`axis_plan`).
"""

from __future__ import annotations

import bisect
import dataclasses
from functools import lru_cache

import numpy as np

from semiland.data.raster import Box
from semiland.data.sources import LoadedSample
from semiland.data.store import REDRAWS, SampleStore, cut

CHUNK = 512  # side (px at data.scale) of a chunk: the window read at once and cut into crops
ALIGN = 256  # chunk corners on this grid: whole tiles of a 256- or 512-tiled GeoTIFF, none decoded in vain


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """Chunks along one axis of an image: their start offsets, the probability of drawing each, their extent."""

    starts: list[int]
    weights: np.ndarray  # (len(starts),) sums to 1
    extent: int  # chunk length along this axis (the image's where it is shorter than a chunk)
    counts: np.ndarray  # (length - crop + 1,) how many chunks reach each crop corner; (1,) where none moves


@lru_cache(maxsize=256)
def axis_plan(length: int, crop: int, chunk: int) -> AxisPlan:
    """Chunk starts along an axis of `length` px: every ALIGN px, plus one flush with the end; weights that
    make the corners of crops kept with probability 1 / count uniform over [0, length - crop]."""
    if length <= chunk or length <= crop:
        return AxisPlan([0], np.ones(1), min(length, chunk), np.ones(max(1, length - crop + 1), dtype=np.int64))
    starts = list(range(0, length - chunk + 1, ALIGN))
    if starts[-1] != length - chunk:
        starts.append(length - chunk)
    reach = chunk - crop  # a chunk at s reaches corners s … s + reach
    cover = np.zeros(length - crop + 2, dtype=np.int64)
    for s in starts:
        cover[s] += 1
        cover[s + reach + 1] -= 1
    counts = np.cumsum(cover)[:-1]
    inverse = np.concatenate([[0.0], np.cumsum(1.0 / counts)])
    mass = np.array([inverse[s + reach + 1] - inverse[s] for s in starts])  # kept mass each chunk holds
    return AxisPlan(starts, mass / mass.sum(), chunk, counts)


def chunk_side(crop: int) -> int:
    """A chunk's side for a crop size: CHUNK, or larger so that every crop corner lies in some chunk."""
    return max(CHUNK, ALIGN * -(-crop // ALIGN) + ALIGN)


@dataclasses.dataclass(frozen=True)
class Chunk:
    sample_id: str
    box: Box  # (top, left, h, w) at data.scale
    uses: int  # batches of its slot it serves
    rows: AxisPlan  # the image's chunks along each axis (where crop corners are kept)
    cols: AxisPlan


class ChunkedCrops:
    """The crops of one stream (`CropStream`), cut from chunks; see the module's docstring."""

    def __init__(self, store: SampleStore, ids: list[str], crop: int, seed: int, labeled: bool,
                 key: tuple[int, ...], batch: int, lanes: int, ranks: int = 1):  # fmt: skip
        """`lanes`: the loader processes (1 for none); `ranks`: DDP ranks taking every ranks-th item of the
        stream (DistributedSampler), whose own items are then numbered i // ranks."""
        self.store, self.ids, self.crop, self.seed, self.labeled = store, ids, crop, seed, labeled
        self.key, self.batch, self.lanes, self.ranks = key, batch, max(1, lanes), max(1, ranks)
        self.side = chunk_side(crop)
        self._walks: dict[tuple, list[Chunk]] = {}  # slot → its chunks so far
        self._held: dict[tuple, tuple[int, LoadedSample]] = {}  # slot → (chunk number, pixels)

    def _slot_seed(self, slot: tuple, number: int, attempt: int = 0) -> list[int]:
        # 7 keeps chunk draws apart from the items' own generators ([seed, epoch, index, labeled, *key])
        return [self.seed, *slot, number, attempt, int(self.labeled), 7, *self.key]

    def _draw_chunk(self, slot: tuple, number: int, attempt: int = 0, sample_id: str | None = None) -> Chunk:
        rng = np.random.default_rng(self._slot_seed(slot, number, attempt))
        if sample_id is None:
            sample_id = self.ids[int(rng.integers(len(self.ids)))]
        height, width = self.store.shape(sample_id, scaled=True)  # from the headers: no pixel decoded
        rows, cols = axis_plan(height, self.crop, self.side), axis_plan(width, self.crop, self.side)
        top = rows.starts[int(rng.choice(len(rows.starts), p=rows.weights))]
        left = cols.starts[int(rng.choice(len(cols.starts), p=cols.weights))]
        uses = max(1, rows.extent * cols.extent // self.crop**2)
        return Chunk(sample_id, (top, left, rows.extent, cols.extent), uses, rows, cols)

    def locate(self, index: int, epoch: int) -> tuple[tuple, int, Chunk]:
        """The slot, chunk number and chunk that item `index` of `epoch` is cut from (no pixels read)."""
        mine, rank = divmod(index, self.ranks)
        n, place = divmod(mine, self.batch)
        lane, k = n % self.lanes, n // self.lanes
        slot = (epoch, rank, lane, place)
        if slot not in self._walks:
            self._walks = {s: w for s, w in self._walks.items() if s[0] == epoch}  # earlier epochs' dropped
        walk = self._walks.setdefault(slot, [])
        served = sum(c.uses for c in walk)
        while served <= k:
            walk.append(self._draw_chunk(slot, len(walk)))
            served += walk[-1].uses
        number = bisect.bisect_right(np.cumsum([c.uses for c in walk]).tolist(), k)
        return slot, number, walk[number]

    def pixels(self, slot: tuple, number: int, chunk: Chunk) -> tuple[Chunk, LoadedSample]:
        """The chunk's pixels, read once per slot and chunk; a chunk with no valid pixel (all nodata) is moved,
        up to REDRAWS times, in the same image (its size, hence its uses, unchanged)."""
        held = self._held.get(slot)
        if held is not None and held[0] == number:
            return chunk, held[1]
        for attempt in range(REDRAWS):
            if attempt:
                chunk = self._draw_chunk(slot, number, attempt, chunk.sample_id)
            sample = self.store.region(chunk.sample_id, self.labeled, chunk.box)
            if sample.valid.any():
                break
        self._walks[slot][number] = chunk
        self._held = {s: h for s, h in self._held.items() if s[0] == slot[0]}  # earlier epochs' chunks dropped
        self._held[slot] = (number, sample)
        return chunk, sample

    def __call__(self, index: int, epoch: int, rng: np.random.Generator) -> LoadedSample:
        """Item `index`'s crop: its chunk (read when its slot moves on to it) and a corner in it drawn from
        `rng`, kept with probability 1 / (chunks reaching it) so that corners are uniform over the image; a
        crop with no valid pixel is drawn again, up to REDRAWS times."""
        slot, number, chunk = self.locate(index, epoch)
        chunk, sample = self.pixels(slot, number, chunk)
        top0, left0, h, w = chunk.box
        for _ in range(REDRAWS):
            top = corner(rng, chunk.rows, top0, h, self.crop)
            left = corner(rng, chunk.cols, left0, w, self.crop)
            part = cut(sample, (top, left, self.crop, self.crop))
            if part.valid.any():
                break
        return part


def corner(rng: np.random.Generator, plan: AxisPlan, start: int, extent: int, crop: int) -> int:
    """A crop corner's offset in a chunk at `start` along one axis, kept with probability 1 / (chunks that
    reach it): uniform over the image once chunks are drawn by `plan.weights`."""
    if extent <= crop:
        return 0
    while True:
        offset = int(rng.integers(0, extent - crop + 1))
        if rng.random() * plan.counts[start + offset] < 1:
            return offset
