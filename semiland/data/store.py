"""A dataset's samples by id: loaded whole (cached in memory when asked) or by window, normalised per band, cut
into training crops. Files GDAL reads are read by window when the store is `windowed` (rasters of any size:
only a crop's, a block's or a preview's pixels are read); JPEG / PNG are decoded whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from semiland.data.augment import crop_pad, random_crop_window
from semiland.data.classes import IGNORE_INDEX
from semiland.data.index import RasterInfo, read_info
from semiland.data.raster import Box, box_window, opened
from semiland.data.sources import DatasetSpec, LoadedSample
from semiland.data.stats import normalise
from semiland.data.vector import is_vector
from semiland.errors import SemilandError

REDRAWS = 10  # draws of a crop window before an all-nodata one is kept (an image that is nodata throughout)
BLOCK = 2048  # a labeled raster larger than BLOCK² is checked by blocks of this side


class SampleStore:
    """Loads samples by id (cached in memory when asked) and normalises images per band; cuts training crops,
    reading only the crop's window of files GDAL reads when `windowed` (rasters of any size)."""

    def __init__(
        self,
        spec: DatasetSpec,
        bands: list[int] | None,
        mean: list[float] | None,
        std: list[float] | None,
        cache: bool,
        pseudo_labels: str = "",
        scale: float = 1.0,
        windowed: bool = False,
        index: dict[str, RasterInfo] | None = None,
    ):
        """`mean` / `std` None: raw access only (used to compute them). `pseudo_labels`: a folder of index masks
        `<region>/<stem>.png` (255 = ignore) that unlabeled samples carry as their "mask" (self-training).
        `index`: the files' headers by sample id (`PreparedData.index`); read when missing."""
        self.spec, self.bands, self.cache_on, self.scale = spec, bands, cache, scale
        self.pseudo_dir = Path(pseudo_labels) if pseudo_labels else None
        self.refs = spec.by_id()
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None] if mean is not None else None
        self.std = np.asarray(std, dtype=np.float32)[:, None, None] if std is not None else None
        self._cache: dict[tuple[str, bool], LoadedSample] = {}
        self.windowed = windowed
        self.index = dict(index or {})

    def info(self, sample_id: str) -> RasterInfo:
        if sample_id not in self.index:
            self.index[sample_id] = read_info(self.refs[sample_id].image)
        return self.index[sample_id]

    def by_window(self, sample_id: str) -> bool:
        """Whether this sample is read by window: the store is windowed and GDAL reads its file."""
        return self.windowed and self.info(sample_id).windowed

    def shape(self, sample_id: str, scaled: bool = False) -> tuple[int, int]:
        """(H, W) of the sample without reading its pixels; `scaled`: at `data.scale`."""
        ref = self.refs[sample_id]
        h, w = ref.window[2:] if ref.window else (self.info(sample_id).height, self.info(sample_id).width)
        return scaled_shape((h, w), self.scale) if scaled else (h, w)

    def raw(self, sample_id: str, labeled: bool = True, scaled: bool = False) -> LoadedSample:
        """Image (+ its mask when `labeled`). Unlabeled samples never read the true mask, even where one
        exists on disk (Dubai's "unlabeled" tiles have them): they carry only pseudo-labels, if given.
        `scaled`: resampled to `data.scale` (training crops; evaluation stays at the native resolution)."""
        key = (sample_id, labeled, scaled and self.scale != 1)
        if key in self._cache:
            return self._cache[key]
        sample = self.load(sample_id, labeled)
        if not labeled and self.pseudo_dir is not None:
            sample.mask = read_pseudo_mask(self.pseudo_dir, sample_id, sample.valid.shape)
        if key[2]:
            sample = rescale(sample, scaled_shape(sample.valid.shape, self.scale))
        if self.cache_on:
            self._cache[key] = sample
        return sample

    def load(self, sample_id: str, labeled: bool = True, window: Box | None = None) -> LoadedSample:
        """The sample (its mask only when `labeled`), whole or its `window`, its band count checked."""
        ref = self.refs[sample_id] if labeled else dataclasses.replace(self.refs[sample_id], mask=None)
        sample = self.spec.load(ref, self.bands, window)
        if self.mean is not None and sample.image.shape[0] != len(self.mean):
            raise SemilandError(
                f"{ref.image} has {sample.image.shape[0]} bands but the run uses "
                f"{len(self.mean)}; select bands with data.bands"
            )
        return sample

    def block_grid(self, sample_id: str, side: int) -> list[Box] | None:
        """side² blocks (the last of a row or column shorter) covering the sample where it is read by window
        and larger than one block; None where it is read whole."""
        if not self.by_window(sample_id):
            return None
        height, width = self.shape(sample_id)
        if height * width <= side * side:
            return None
        return [
            (top, left, min(side, height - top), min(side, width - left))
            for top in range(0, height, side)
            for left in range(0, width, side)
        ]

    def blocks(self, sample_id: str) -> Iterator[tuple[Box, LoadedSample]]:
        """The labeled sample in `BLOCK`² blocks where `block_grid` gives them (its mask's size checked against
        the image's from the headers), else whole, each with its (top, left, h, w) box at the native resolution:
        masks read in bounded memory."""
        ref, grid = self.refs[sample_id], self.block_grid(sample_id, BLOCK)
        if grid is None:
            sample = self.raw(sample_id)
            yield (0, 0, *sample.valid.shape), sample
            return
        height, width = self.shape(sample_id)
        if ref.mask is not None and ref.window is None and not is_vector(ref.mask):
            mask = read_info(ref.mask)
            if (mask.height, mask.width) != (height, width):
                raise SemilandError(
                    f"mask {ref.mask} is {mask.width}x{mask.height} px but image {ref.image} is "
                    f"{width}x{height}; masks must match their image"
                )
        for box in grid:
            yield box, self.load(sample_id, window=box)

    def with_context(self, sample_id: str, block: Box, margin: int, labeled: bool = True) -> tuple[LoadedSample, Box]:
        """A block of the sample and `margin` px of context around it (clipped to the raster), and where the
        block lies in it (top, left, h, w): a block predicted with the context a whole-image prediction sees."""
        top, left, h, w = block
        r0, c0 = max(0, top - margin), max(0, left - margin)
        sample = self.load(sample_id, labeled, (r0, c0, top + h + margin - r0, left + w + margin - c0))
        return sample, (top - r0, left - c0, h, w)

    def central(self, sample_id: str, side: int) -> tuple[LoadedSample, str]:
        """The labeled sample whole, or its central side² window where it is larger and read by window (a
        report's preview of a raster of any size), and a note saying which part it is ("" when whole)."""
        height, width = self.shape(sample_id)
        if not self.by_window(sample_id) or max(height, width) <= side:
            return self.raw(sample_id), ""
        top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
        sample = self.load(sample_id, window=(top, left, side, side))
        return sample, f" (its central {min(side, height)} × {min(side, width)} px of {height:,} × {width:,})"

    def normalise(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.std is not None, "a raw-only store cannot normalise"
        return normalise(image, valid, self.mean, self.std)

    def crop(self, sample_id: str, labeled: bool, rng: np.random.Generator, size: int) -> LoadedSample:
        """A random size×size training crop at `data.scale` (padded past the border: image 0, valid False,
        mask ignore). A window with no valid pixel (all nodata) is drawn again, up to `REDRAWS` times."""
        if self.by_window(sample_id):
            height, width = self.shape(sample_id, scaled=True)
        else:  # the (cached) pixels the crop is cut from
            height, width = self.raw(sample_id, labeled, scaled=True).valid.shape
        for _ in range(REDRAWS):
            top, left = random_crop_window(rng, height, width, size)
            part = self.region(sample_id, labeled, (top, left, size, size))
            if part.valid.any():
                break
        return part

    def region(self, sample_id: str, labeled: bool, box: Box) -> LoadedSample:
        """The (top, left, h, w) box of the sample at `data.scale`, padded past the border. Read by window when
        the store is windowed and GDAL reads the file, else cut from the whole (cached) sample; the two are
        equal at scale 1."""
        if not self.by_window(sample_id):
            return cut(self.raw(sample_id, labeled, scaled=True), box)
        return self._read_region(sample_id, labeled, box)

    def _read_region(self, sample_id: str, labeled: bool, box: Box) -> LoadedSample:
        """The box at `data.scale`, reading only the file window under it. At scale 1 it equals the whole
        sample's box; otherwise the window under the box and a margin of two output pixels, its edges on the
        output pixel grid, is resampled as `rescale` resamples the whole sample (equal up to the kernel's
        reach at the window's edge)."""
        top, left, size_h, size_w = box
        (h, w), (out_h, out_w) = self.shape(sample_id), self.shape(sample_id, scaled=True)
        m = 0 if (h, w) == (out_h, out_w) else 2
        o0, p0 = max(0, top - m), max(0, left - m)  # the window in output pixels…
        o1, p1 = min(out_h, top + size_h + m), min(out_w, left + size_w + m)
        r0, c0 = round(o0 * h / out_h), round(p0 * w / out_w)  # …and in the file's pixels
        r1 = h if o1 == out_h else round(o1 * h / out_h)
        c1 = w if p1 == out_w else round(p1 * w / out_w)
        sample = self.load(sample_id, labeled, (r0, c0, r1 - r0, c1 - c0))
        if not labeled and self.pseudo_dir is not None:
            sample.mask = read_pseudo_mask(self.pseudo_dir, sample_id, (h, w), (r0, c0, r1 - r0, c1 - c0))
        if m:
            sample = rescale(sample, (o1 - o0, p1 - p0))
        return cut(sample, (top - o0, left - p0, size_h, size_w))


def cut(sample: LoadedSample, box: Box) -> LoadedSample:
    """The (top, left, h, w) box of a sample, padded past its border (image 0, valid False, mask ignore)."""
    top, left, h, w = box
    return LoadedSample(
        crop_pad(sample.image, top, left, (h, w), 0.0),
        crop_pad(sample.valid, top, left, (h, w), False),
        None if sample.mask is None else crop_pad(sample.mask, top, left, (h, w), IGNORE_INDEX),
    )


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H, W) of an image trained at `data.scale`."""
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def rescale(sample: LoadedSample, size: tuple[int, int]) -> LoadedSample:
    """A sample resampled to `size` (H, W): image antialiased-bilinear, valid where every contributing
    pixel was valid (nodata never bleeds into training pixels), mask by nearest neighbour."""

    def resize(a: np.ndarray, mode: str) -> torch.Tensor:  # (C, H, W) → (C, h', w')
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]
        smooth = mode == "bilinear"
        return F.interpolate(
            x, size=size, mode=mode, **({"antialias": True, "align_corners": False} if smooth else {})
        )[0]

    image = resize(sample.image, "bilinear").numpy()
    valid = resize(sample.valid[None], "bilinear")[0].numpy() > 0.999
    image[:, ~valid] = 0.0
    mask = None if sample.mask is None else resize(sample.mask[None], "nearest")[0].numpy().astype(np.int64)
    return LoadedSample(image, valid, mask)


def read_pseudo_mask(folder: Path, sample_id: str, shape: tuple[int, int], window: Box | None = None) -> np.ndarray:
    """The pseudo-labels `semiland self-train` wrote for a sample (`<id>.png`, or a tiled `<id>.tif` for a raster
    it labeled by blocks, read by window), whole or their `window` → int64 (H, W) with 255 = ignore. `shape`:
    the image's (H, W)."""
    tif, png = folder / f"{sample_id}.tif", folder / f"{sample_id}.png"
    path = tif if tif.is_file() else png
    if not path.is_file():
        raise SemilandError(f"pseudo-label mask {png} not found (data.pseudo_labels); re-run the pseudo-labeling round")
    if path == tif:
        src = opened(tif)
        size = (src.height, src.width)
    else:
        with Image.open(path) as image:
            mask = np.asarray(image)
        size = mask.shape
    if size != tuple(shape):
        raise SemilandError(f"pseudo-label mask {path} is {size[1]}x{size[0]} px, its image {shape[1]}x{shape[0]}")
    if path == tif:
        mask = src.read(1, window=None if window is None else box_window(window))
    elif window is not None:
        mask = mask[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]
    return mask.astype(np.int64)
