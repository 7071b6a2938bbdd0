"""Loaders: infinite-style labeled and unlabeled crop streams for training, full images for evaluation.

Training is counted in steps. One Lightning "epoch" is `train.val_every` steps; item i of epoch e is a
crop drawn from an RNG seeded with (seed, e, i, stream), so data is reproducible and a resumed run draws
the crops an uninterrupted run would. Under DDP each rank reads a disjoint shard of the indices.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from semiland.config import Config
from semiland.console import info
from semiland.data.augment import crop_pad, flip_rot90, random_crop_window, speckle_db
from semiland.data.classes import IGNORE_INDEX
from semiland.data.index import RasterInfo, build_index, read_info
from semiland.data.presets import build_dataset
from semiland.data.raster import Box
from semiland.data.sources import DatasetSpec, LoadedSample, SampleRef
from semiland.data.splits import Split, make_split
from semiland.data.stats import band_stats, normalise, robust_band_stats
from semiland.data.vector import is_vector
from semiland.errors import SemilandError

STATS_WHOLE_PIXELS = 200_000_000  # training images under this many pixels together: statistics from all of them
STATS_WINDOWS, STATS_WINDOW = 2_000, 256  # else from this many windows of this side, drawn across the images
CACHE_SHARE = 0.25  # data.cache holds decoded images up to this share of the machine's memory
REDRAWS = 10
BLOCK = 2048  # a labeled raster larger than BLOCK² is checked by blocks of this side
EVAL_BLOCK = 2048  # … and validated / tested by blocks of this side (with a margin of context)  # draws of a crop window before an all-nodata one is kept (an image that is nodata throughout)


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
        # a SAR raster resampled onto its optical grid is read whole (its window is not the optical one's)
        self.windowed = windowed and not (spec.sar is not None and spec.sar.resample)
        self.index = dict(index or {})

    def info(self, sample_id: str) -> RasterInfo:
        if sample_id not in self.index:
            self.index[sample_id] = read_info(self.refs[sample_id].image)
        return self.index[sample_id]

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
        ref = self.refs[sample_id] if labeled else dataclasses.replace(self.refs[sample_id], mask=None)
        sample = self.spec.load(ref, self.bands)
        self._check_bands(sample, ref)
        if not labeled and self.pseudo_dir is not None:
            sample.mask = read_pseudo_mask(self.pseudo_dir / f"{sample_id}.png", sample.valid.shape)
        if key[2]:
            sample = rescale(sample, scaled_shape(sample.valid.shape, self.scale))
        if self.cache_on:
            self._cache[key] = sample
        return sample

    def blocks(self, sample_id: str) -> Iterator[LoadedSample]:
        """The labeled sample in `BLOCK`² blocks when it is windowed and larger than one block (its mask's
        size checked against the image's from the headers), else whole: masks checked in bounded memory."""
        ref, side = self.refs[sample_id], BLOCK
        height, width = self.shape(sample_id)
        if not (self.windowed and self.info(sample_id).windowed) or height * width <= side * side:
            yield self.raw(sample_id)
            return
        if ref.mask is not None and ref.window is None and not is_vector(ref.mask):
            mask = read_info(ref.mask)
            if (mask.height, mask.width) != (height, width):
                raise SemilandError(
                    f"mask {ref.mask} is {mask.width}x{mask.height} px but image {ref.image} is "
                    f"{width}x{height}; masks must match their image"
                )
        for top in range(0, height, side):
            for left in range(0, width, side):
                yield self.spec.load(ref, self.bands, (top, left, side, side))

    def central(self, sample_id: str, side: int | None = None) -> tuple[LoadedSample, str]:
        """The labeled sample whole, or its central side² window where it is larger and read by window (a
        report's preview of a raster of any size), and a note saying which part it is ("" when whole)."""
        side, (height, width) = side or EVAL_BLOCK, self.shape(sample_id)
        if not (self.windowed and self.info(sample_id).windowed) or max(height, width) <= side:
            return self.raw(sample_id), ""
        top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
        sample = self.spec.load(self.refs[sample_id], self.bands, (top, left, side, side))
        self._check_bands(sample, self.refs[sample_id])
        return sample, f" (its central {min(side, height)} × {min(side, width)} px of {height:,} × {width:,})"

    def _check_bands(self, sample: LoadedSample, ref: SampleRef) -> None:
        if self.mean is not None and sample.image.shape[0] != len(self.mean):
            raise SemilandError(
                f"{ref.image} has {sample.image.shape[0]} bands but the run uses "
                f"{len(self.mean)}; select bands with data.bands"
            )

    def normalise(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.std is not None, "a raw-only store cannot normalise"
        return normalise(image, valid, self.mean, self.std)

    def crop(self, sample_id: str, labeled: bool, rng: np.random.Generator, size: int) -> LoadedSample:
        """A random size×size training crop at `data.scale` (padded past the border: image 0, valid False,
        mask ignore). A window with no valid pixel (all nodata) is drawn again, up to `REDRAWS` times. Read by
        window when the store is windowed and GDAL reads the file, else cut from the whole (cached) sample;
        the two give the same crop for the same generator."""
        windowed = self.windowed and self.info(sample_id).windowed
        whole = None if windowed else self.raw(sample_id, labeled, scaled=True)
        height, width = self.shape(sample_id, scaled=True) if whole is None else whole.valid.shape
        for _ in range(REDRAWS):
            top, left = random_crop_window(rng, height, width, size)
            if whole is None:
                part = self._read_crop(sample_id, labeled, top, left, size)
            else:
                part = LoadedSample(
                    crop_pad(whole.image, top, left, size, 0.0), crop_pad(whole.valid, top, left, size, False),
                    None if whole.mask is None else crop_pad(whole.mask, top, left, size, IGNORE_INDEX),
                )  # fmt: skip
            if part.valid.any():
                break
        return part

    def _read_crop(self, sample_id: str, labeled: bool, top: int, left: int, size: int) -> LoadedSample:
        """The crop at (top, left) of the sample at `data.scale`, reading only the file window under it. At
        scale 1 it equals the whole sample's crop; otherwise the window under the crop and a margin of two
        output pixels, its edges on the output pixel grid, is resampled as `rescale` resamples the whole
        sample (equal up to the kernel's reach at the window's edge)."""
        ref = self.refs[sample_id] if labeled else dataclasses.replace(self.refs[sample_id], mask=None)
        (h, w), (out_h, out_w) = self.shape(sample_id), self.shape(sample_id, scaled=True)
        m = 0 if (h, w) == (out_h, out_w) else 2
        o0, p0 = max(0, top - m), max(0, left - m)  # the window in output pixels…
        o1, p1 = min(out_h, top + size + m), min(out_w, left + size + m)
        r0, c0 = round(o0 * h / out_h), round(p0 * w / out_w)  # …and in the file's pixels
        r1 = h if o1 == out_h else round(o1 * h / out_h)
        c1 = w if p1 == out_w else round(p1 * w / out_w)
        box = (r0, c0, r1 - r0, c1 - c0)
        sample = self.spec.load(ref, self.bands, box)
        self._check_bands(sample, ref)
        if not labeled and self.pseudo_dir is not None:
            whole = read_pseudo_mask(self.pseudo_dir / f"{sample_id}.png", (h, w))
            sample.mask = whole[r0:r1, c0:c1]
        if m:
            sample = rescale(sample, (o1 - o0, p1 - p0))
        top, left = top - o0, left - p0
        return LoadedSample(
            crop_pad(sample.image, top, left, size, 0.0),
            crop_pad(sample.valid, top, left, size, False),
            None if sample.mask is None else crop_pad(sample.mask, top, left, size, IGNORE_INDEX),
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


def read_pseudo_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """An index PNG written by `semiland self-train` → int64 (H, W) with 255 = ignore."""
    if not path.is_file():
        raise SemilandError(
            f"pseudo-label mask {path} not found (data.pseudo_labels); re-run the pseudo-labeling round"
        )
    mask = np.asarray(Image.open(path)).astype(np.int64)
    if mask.shape != shape:
        raise SemilandError(
            f"pseudo-label mask {path} is {mask.shape[1]}x{mask.shape[0]} px, its image {shape[1]}x{shape[0]}"
        )
    return mask


class CropStream(Dataset):
    """`length` random crops from `ids`; samples with a mask (labeled, or pseudo-labeled) carry it, and the
    labeled stream gets flips / 90° rotations."""

    def __init__(
        self,
        store: SampleStore,
        ids: list[str],
        crop: int,
        length: int,
        seed: int,
        labeled: bool,
        speckle: tuple[int, float] | None = None,
        shard: int | None = None,
    ):
        """`speckle`: (first SAR band, looks) — labeled crops get SAR speckle noise (`data.sar_speckle_looks`).
        `shard`: this rank's number where each DDP rank draws from its own share of the images."""
        self.store, self.ids, self.crop, self.length, self.seed, self.labeled = store, ids, crop, length, seed, labeled
        self.speckle = speckle
        self.key = () if shard is None else (shard,)  # ranks on their own shards draw their own crops
        self.epoch = 0  # set by the engine at each epoch start, before workers are forked

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index, int(self.labeled), *self.key])
        crop = self.store.crop(self.ids[int(rng.integers(len(self.ids)))], self.labeled, rng, self.crop)
        image, valid = crop.image, crop.valid
        if self.speckle is not None and self.labeled:  # its own generator: crops and flips stay as without it
            noise_rng = np.random.default_rng([self.seed, self.epoch, index, 2])
            image = speckle_db(noise_rng, image, valid, *self.speckle)
        image = self.store.normalise(image, valid)
        if crop.mask is None:
            return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
        mask = crop.mask
        if self.labeled:
            image, mask, valid = flip_rot90(rng, image, mask, valid)
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask), "valid": torch.from_numpy(valid)}


class FullImages(Dataset):
    """Images for validation / test (predicted by sliding window in the engine): whole, or, for a raster larger
    than an `EVAL_BLOCK`² block read by window, in blocks. A block item holds its block and a margin of
    `margin` px of context on every side; its mask is ignore outside the block, so each pixel is scored once,
    by a prediction that saw the same context as a whole-image one (up to where the tile grid falls)."""

    def __init__(self, store: SampleStore, ids: list[str], margin: int = 0):
        self.store, self.ids, self.margin = store, ids, margin
        self.items: list[tuple[str, Box | None]] = []
        for sample_id in ids:
            height, width = store.shape(sample_id) if store.windowed else (0, 0)
            if not (store.windowed and store.info(sample_id).windowed) or height * width <= EVAL_BLOCK**2:
                self.items.append((sample_id, None))
                continue
            self.items += [
                (sample_id, (top, left, min(EVAL_BLOCK, height - top), min(EVAL_BLOCK, width - left)))
                for top in range(0, height, EVAL_BLOCK)
                for left in range(0, width, EVAL_BLOCK)
            ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_id, block = self.items[index]
        if block is None:
            sample = self.store.raw(sample_id)
        else:
            top, left, h, w = block
            r0, c0 = max(0, top - self.margin), max(0, left - self.margin)
            ref = self.store.refs[sample_id]
            sample = self.store.spec.load(ref, self.store.bands, (r0, c0, top + h + self.margin - r0,
                                                                  left + w + self.margin - c0))  # fmt: skip
            self.store._check_bands(sample, ref)
            assert sample.mask is not None
            core = np.zeros(sample.valid.shape, bool)
            core[top - r0 : top - r0 + h, left - c0 : left - c0 + w] = True
            sample.mask[~core] = self.store.spec.classes.ignore_index  # context only: scored by its own block
        image = self.store.normalise(sample.image, sample.valid)
        return {
            "image": torch.from_numpy(image),
            "mask": torch.from_numpy(sample.mask),
            "valid": torch.from_numpy(sample.valid),
            "id": sample_id,
        }


@dataclass
class PreparedData:
    """Everything a run derives from the data config: the dataset, its split and the band statistics."""

    spec: DatasetSpec
    split: Split
    mean: list[float]
    std: list[float]
    channels: list[int] = dataclasses.field(default_factory=list)  # bands per modality, in stack order
    index: dict[str, RasterInfo] = dataclasses.field(default_factory=dict)  # image headers by sample id

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    def decoded_bytes(self, ids: list[str]) -> int:
        """Memory that these samples take decoded (float32 bands, valid flag, int64 mask): what data.cache holds."""
        return sum(self.index[i].pixels * (4 * self.in_channels + 1 + 8) for i in ids if i in self.index)


def resolve_split(cfg: Config) -> tuple[DatasetSpec, Split]:
    """Find the dataset and make (or load) the split that `cfg.data` asks for."""
    spec = build_dataset(cfg.data)
    d = cfg.data
    want = {"split_mode": d.split_mode, "split_file": d.split_file, "labeled_count": d.labeled_count}
    given = {"labeled": d.labeled, "val": d.val, "test": d.test}
    # No split given at all: the preset's default (e.g. the Dubai region split).
    if d.split_mode != "file" and all(v is None for v in given.values()):
        want.update(spec.default_split)
    else:
        want.update(given, unlabeled=d.unlabeled)
    seed = cfg.train.seed if d.split_seed is None else d.split_seed
    return spec, make_split(spec, want, seed, d.oracle, d.transductive)


def prepare_data(cfg: Config) -> PreparedData:
    """Find the dataset, make (or load) the split, compute per-band statistics when not given."""
    spec, split = resolve_split(cfg)
    d = cfg.data
    refs = spec.by_id()
    used = list(dict.fromkeys(split.labeled + split.unlabeled + split.val + split.test))
    files = build_index([refs[i].image for i in used])
    index = {i: files[refs[i].image] for i in used}
    channels = None
    if d.mean is not None and d.std is not None:
        mean, std = d.mean, d.std
    else:
        store = SampleStore(spec, d.bands, None, None, cache=False, windowed=True, index=index)
        training = split.labeled + split.unlabeled
        pixels = sum(store.shape(i)[0] * store.shape(i)[1] for i in training)
        windows = store.windowed and pixels > STATS_WHOLE_PIXELS

        pairs = spec.sar is not None and not spec.sar.simulate  # a sample's bands come from two files

        def named(ref: SampleRef) -> str:
            return f"optical {ref.image} + SAR {ref.sar}" if pairs and ref.sar else str(ref.image)

        def images() -> Iterator[tuple[np.ndarray, np.ndarray]]:  # streamed: pixels only, never masks
            first: tuple[SampleRef, int] | None = None
            for sample_id, sample in stats_windows(store, training) if windows else whole(store, training):
                first = first or (refs[sample_id], sample.image.shape[0])
                if sample.image.shape[0] != first[1]:
                    choose = "data.bands / data.sar_bands" if pairs else "data.bands"
                    raise SemilandError(
                        f"{named(refs[sample_id])}: {sample.image.shape[0]} bands, but {named(first[0])}: "
                        f"{first[1]}; every sample needs the same bands (choose them with {choose})"
                    )
                yield sample.image, sample.valid

        try:
            mean, std = band_stats(images())
        except ValueError as err:  # no valid pixel at all: every training image is nodata
            raise SemilandError(f"{err}: every training image is nodata / NaN; check data.root and the split") from None
        channels = _channels(spec, split, d, len(mean), index)
        if spec.sar is not None and spec.sar.modality != "optical":  # SAR bands: median / robust spread
            n_sar = len(mean) - channels[0] if spec.sar.modality == "both" else len(mean)
            sar_mean, sar_std = robust_band_stats((im[-n_sar:], v) for im, v in images())
            mean, std = mean[: len(mean) - n_sar] + sar_mean, std[: len(std) - n_sar] + sar_std
    if len(mean) != len(std):
        raise SemilandError(f"data.mean has {len(mean)} bands but data.std has {len(std)}")
    channels = channels or _channels(spec, split, d, len(mean), index)
    return PreparedData(spec, split, [float(m) for m in mean], [float(s) for s in std], channels, index)


def whole(store: SampleStore, ids: list[str]) -> Iterator[tuple[str, LoadedSample]]:
    for sample_id in ids:
        yield sample_id, store.raw(sample_id, labeled=False)


def stats_windows(store: SampleStore, ids: list[str], seed: int = 0) -> Iterator[tuple[str, LoadedSample]]:
    """`STATS_WINDOWS` windows of `STATS_WINDOW`² px drawn across the images in proportion to their area
    (seeded: the same statistics every run), pixels only: the statistics of terabytes without reading them."""
    rng = np.random.default_rng(seed)
    area = np.array([store.shape(i)[0] * store.shape(i)[1] for i in ids], dtype=np.float64)
    draws = np.sort(rng.choice(len(ids), STATS_WINDOWS, p=area / area.sum()))  # sorted: a file's windows together
    for k in draws:
        sample_id = ids[int(k)]
        top, left = random_crop_window(rng, *store.shape(sample_id), STATS_WINDOW)
        ref = dataclasses.replace(store.refs[sample_id], mask=None)
        window = (top, left, STATS_WINDOW, STATS_WINDOW)
        yield sample_id, store.spec.load(ref, store.bands, window)


def _channels(spec: DatasetSpec, split: Split, d: Any, total: int, index: dict[str, RasterInfo]) -> list[int]:
    """Bands per modality in the stacked input: [optical, SAR] for paired data with both, else [all]."""
    if d.channels:
        return list(d.channels)
    if spec.sar is None or spec.sar.modality != "both":
        return [total]
    first = (split.labeled + split.unlabeled)[0]
    optical = len(d.bands) if d.bands else index[first].count
    return [optical, total - optical]


_TOLD: set[str] = set()


def info_once(message: str) -> None:
    """An informational line said once per process (a run builds its data module for training, then testing)."""
    if message not in _TOLD:
        _TOLD.add(message)
        info(message)


def physical_memory() -> int:
    """Bytes of RAM (8 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class SegDataModule(L.LightningDataModule):
    def __init__(self, cfg: Config, data: PreparedData, use_unlabeled: bool):
        super().__init__()
        self.cfg, self.data = cfg, data
        self.use_unlabeled = use_unlabeled and bool(data.split.unlabeled)
        d = cfg.data
        if not 0 < d.scale <= 4:
            raise SemilandError(f"data.scale must be in (0, 4] (0.5 trains at half resolution), got {d.scale}")
        cache = d.cache and self._cache_fits()
        self.store = SampleStore(
            data.spec, d.bands, data.mean, data.std, cache, d.pseudo_labels, d.scale, windowed=not cache,
            index=data.index,
        )  # fmt: skip
        self.streams: list[CropStream] = []

    def _cache_fits(self) -> bool:
        """data.cache keeps every decoded image in memory, in each loader process: refused (with a line saying
        so) where that would take more than `CACHE_SHARE` of the machine's memory; crops are then read by
        window from the files."""
        split, workers = self.data.split, max(1, self.cfg.data.num_workers)
        need = self.data.decoded_bytes(list(dict.fromkeys(split.labeled + split.unlabeled + split.val + split.test)))
        limit = CACHE_SHARE * physical_memory()
        if need * workers <= limit:
            return True
        info_once(
            f"data: the images take {need / 2**30:.1f} GiB decoded ({workers} loader process"
            f"{'es' if workers > 1 else ''}), more than {CACHE_SHARE:.0%} of this machine's "
            f"{physical_memory() / 2**30:.0f} GiB: reading training crops by window instead of data.cache=true"
        )
        return False

    def _stream_loader(self, ids: list[str], batch: int, labeled: bool) -> DataLoader:
        """One epoch = val_every steps on every rank. Under DDP the unlabeled images (the mass: any number of
        files) are sharded, every world-th to a rank, so that each rank opens, reads and caches only its own
        share and adding machines adds throughput; the few labeled images are drawn by every rank, each rank
        taking its own items of one stream (DistributedSampler)."""
        world, rank = _world()
        shard = world > 1 and not labeled and len(ids) >= world
        if shard:
            ids = ids[rank::world]
        length = self.cfg.train.val_every * batch * (1 if shard else world)
        stream = CropStream(
            self.store, ids, self.cfg.data.crop_size, length, self.cfg.train.seed, labeled, self._speckle(),
            shard=rank if shard else None,
        )  # fmt: skip
        self.streams.append(stream)
        sampler = DistributedSampler(stream, world, rank, shuffle=False) if world > 1 and not shard else None
        return DataLoader(
            stream, batch_size=batch, sampler=sampler, drop_last=True, num_workers=self.cfg.data.num_workers
        )

    def _speckle(self) -> tuple[int, float] | None:
        """(first SAR band of the input stack, looks) when SAR bands are present and speckle is asked for."""
        looks, sar = self.cfg.data.sar_speckle_looks, self.data.spec.sar
        if looks <= 0 or sar is None or sar.modality == "optical":
            return None
        return (0 if sar.modality == "sar" else self.data.channels[0]), looks

    def train_dataloader(self) -> dict[str, DataLoader]:
        self.streams = []
        loaders = {"labeled": self._stream_loader(self.data.split.labeled, self.cfg.data.batch_size, True)}
        if self.use_unlabeled:
            loaders["unlabeled"] = self._stream_loader(
                self.data.split.unlabeled, self.cfg.data.unlabeled_batch_size, False
            )
        return loaders

    def set_epoch(self, epoch: int) -> None:
        for stream in self.streams:
            stream.epoch = epoch

    def _eval_loader(self, ids: list[str]) -> DataLoader:
        world, rank = _world()
        images = FullImages(self.store, ids, margin=self.cfg.data.eval_tile)  # a tile of context around blocks
        sampler = None
        if world > 1:  # every image exactly once across ranks: metrics are reduced, never double-counted
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(images, world, rank, shuffle=False)
        return DataLoader(images, batch_size=1, sampler=sampler, num_workers=self.cfg.data.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.data.split.val) if self.data.split.val else []

    def test_dataloader(self) -> DataLoader:
        if not self.data.split.test:
            raise SemilandError("the split has no test images; set data.test")
        return self._eval_loader(self.data.split.test)
