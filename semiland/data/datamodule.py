"""Loaders: infinite-style labeled and unlabeled crop streams for training, full images for evaluation.

Training is counted in steps. One Lightning "epoch" is `train.val_every` steps; item i of epoch e is a
crop drawn from an RNG seeded with (seed, e, i, stream), so data is reproducible and a resumed run draws
the crops an uninterrupted run would. Under DDP each rank reads a disjoint shard of the indices.
"""

from __future__ import annotations

import dataclasses
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
from semiland.data.augment import crop_pad, flip_rot90, random_crop_window, speckle_db
from semiland.data.classes import IGNORE_INDEX
from semiland.data.presets import build_dataset
from semiland.data.raster import read_image
from semiland.data.sources import DatasetSpec, LoadedSample, SampleRef, load_sample
from semiland.data.splits import Split, make_split
from semiland.data.stats import band_stats, normalise, robust_band_stats
from semiland.errors import SemilandError


class SampleStore:
    """Loads samples by id (cached in memory when asked) and normalises images per band."""

    def __init__(
        self,
        spec: DatasetSpec,
        bands: list[int] | None,
        mean: list[float] | None,
        std: list[float] | None,
        cache: bool,
        pseudo_labels: str = "",
        scale: float = 1.0,
    ):
        """`mean` / `std` None: raw access only (used to compute them). `pseudo_labels`: a folder of index masks
        `<region>/<stem>.png` (255 = ignore) that unlabeled samples carry as their "mask" (self-training)."""
        self.spec, self.bands, self.cache_on, self.scale = spec, bands, cache, scale
        self.pseudo_dir = Path(pseudo_labels) if pseudo_labels else None
        self.refs = spec.by_id()
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None] if mean is not None else None
        self.std = np.asarray(std, dtype=np.float32)[:, None, None] if std is not None else None
        self._cache: dict[tuple[str, bool], LoadedSample] = {}

    def raw(self, sample_id: str, labeled: bool = True, scaled: bool = False) -> LoadedSample:
        """Image (+ its mask when `labeled`). Unlabeled samples never read the true mask, even where one
        exists on disk (Dubai's "unlabeled" tiles have them): they carry only pseudo-labels, if given.
        `scaled`: resampled to `data.scale` (training crops; evaluation stays at the native resolution)."""
        key = (sample_id, labeled, scaled and self.scale != 1)
        if key in self._cache:
            return self._cache[key]
        ref = self.refs[sample_id] if labeled else dataclasses.replace(self.refs[sample_id], mask=None)
        sample = load_sample(ref, self.spec.classes, self.bands, self.spec.mask_threshold, self.spec.sar)
        if self.mean is not None and sample.image.shape[0] != len(self.mean):
            raise SemilandError(
                f"{ref.image} has {sample.image.shape[0]} bands but the run uses "
                f"{len(self.mean)}; select bands with data.bands"
            )
        if not labeled and self.pseudo_dir is not None:
            sample.mask = read_pseudo_mask(self.pseudo_dir / f"{sample_id}.png", sample.valid.shape)
        if key[2]:
            sample = rescale(sample, self.scale)
        if self.cache_on:
            self._cache[key] = sample
        return sample

    def normalise(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.std is not None, "a raw-only store cannot normalise"
        return normalise(image, valid, self.mean, self.std)


def rescale(sample: LoadedSample, scale: float) -> LoadedSample:
    """A sample at `scale` × its resolution: image antialiased-bilinear, valid where every contributing
    pixel was valid (nodata never bleeds into training pixels), mask by nearest neighbour."""
    h, w = sample.valid.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))

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
    ):
        """`speckle`: (first SAR band, looks) — labeled crops get SAR speckle noise (`data.sar_speckle_looks`)."""
        self.store, self.ids, self.crop, self.length, self.seed, self.labeled = store, ids, crop, length, seed, labeled
        self.speckle = speckle
        self.epoch = 0  # set by the engine at each epoch start, before workers are forked

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index, int(self.labeled)])
        sample = self.store.raw(self.ids[int(rng.integers(len(self.ids)))], self.labeled, scaled=True)
        top, left = random_crop_window(rng, *sample.valid.shape, self.crop)
        image = crop_pad(sample.image, top, left, self.crop, 0.0)
        valid = crop_pad(sample.valid, top, left, self.crop, False)
        if self.speckle is not None and self.labeled:  # its own generator: crops and flips stay as without it
            noise_rng = np.random.default_rng([self.seed, self.epoch, index, 2])
            image = speckle_db(noise_rng, image, valid, *self.speckle)
        image = self.store.normalise(image, valid)
        if sample.mask is None:
            return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
        mask = crop_pad(sample.mask, top, left, self.crop, IGNORE_INDEX)
        if self.labeled:
            image, mask, valid = flip_rot90(rng, image, mask, valid)
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask), "valid": torch.from_numpy(valid)}


class FullImages(Dataset):
    """Whole images for validation / test (predicted by sliding window in the engine)."""

    def __init__(self, store: SampleStore, ids: list[str]):
        self.store, self.ids = store, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.store.raw(self.ids[index])
        image = self.store.normalise(sample.image, sample.valid)
        return {
            "image": torch.from_numpy(image),
            "mask": torch.from_numpy(sample.mask),
            "valid": torch.from_numpy(sample.valid),
            "id": self.ids[index],
        }


@dataclass
class PreparedData:
    """Everything a run derives from the data config: the dataset, its split and the band statistics."""

    spec: DatasetSpec
    split: Split
    mean: list[float]
    std: list[float]
    channels: list[int] = dataclasses.field(default_factory=list)  # bands per modality, in stack order

    @property
    def in_channels(self) -> int:
        return len(self.mean)


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
    channels = None
    if d.mean is not None and d.std is not None:
        mean, std = d.mean, d.std
    else:
        store = SampleStore(spec, d.bands, None, None, cache=False)

        refs = spec.by_id()

        pairs = spec.sar is not None and not spec.sar.simulate  # a sample's bands come from two files

        def named(ref: SampleRef) -> str:
            return f"optical {ref.image} + SAR {ref.sar}" if pairs and ref.sar else str(ref.image)

        def images() -> Iterator[tuple[np.ndarray, np.ndarray]]:  # streamed: pixels only, never masks
            first: tuple[SampleRef, int] | None = None
            for sample_id in split.labeled + split.unlabeled:
                sample = store.raw(sample_id, labeled=False)
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
        channels = _channels(spec, split, d, len(mean))
        if spec.sar is not None and spec.sar.modality != "optical":  # SAR bands: median / robust spread
            n_sar = len(mean) - channels[0] if spec.sar.modality == "both" else len(mean)
            sar_mean, sar_std = robust_band_stats((im[-n_sar:], v) for im, v in images())
            mean, std = mean[: len(mean) - n_sar] + sar_mean, std[: len(std) - n_sar] + sar_std
    if len(mean) != len(std):
        raise SemilandError(f"data.mean has {len(mean)} bands but data.std has {len(std)}")
    channels = channels or _channels(spec, split, d, len(mean))  # read once: it opens an image
    return PreparedData(spec, split, [float(m) for m in mean], [float(s) for s in std], channels)


def _channels(spec: DatasetSpec, split: Split, d: Any, total: int) -> list[int]:
    """Bands per modality in the stacked input: [optical, SAR] for paired data with both, else [all]."""
    if d.channels:
        return list(d.channels)
    if spec.sar is None or spec.sar.modality != "both":
        return [total]
    first = spec.by_id()[(split.labeled + split.unlabeled)[0]]
    optical = read_image(first.image, d.bands).data.shape[0]
    return [optical, total - optical]


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
        self.store = SampleStore(data.spec, d.bands, data.mean, data.std, d.cache, d.pseudo_labels, d.scale)
        self.streams: list[CropStream] = []

    def _stream_loader(self, ids: list[str], batch: int, labeled: bool) -> DataLoader:
        world, rank = _world()
        length = self.cfg.train.val_every * batch * world  # one epoch = val_every steps on every rank
        stream = CropStream(
            self.store, ids, self.cfg.data.crop_size, length, self.cfg.train.seed, labeled, self._speckle()
        )
        self.streams.append(stream)
        sampler = DistributedSampler(stream, world, rank, shuffle=False) if world > 1 else None
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
        sampler = None
        if world > 1:  # every image exactly once across ranks: metrics are reduced, never double-counted
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(FullImages(self.store, ids), world, rank, shuffle=False)
        return DataLoader(
            FullImages(self.store, ids), batch_size=1, sampler=sampler, num_workers=self.cfg.data.num_workers
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.data.split.val) if self.data.split.val else []

    def test_dataloader(self) -> DataLoader:
        if not self.data.split.test:
            raise SemilandError("the split has no test images; set data.test")
        return self._eval_loader(self.data.split.test)
