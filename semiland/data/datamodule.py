"""Loaders: infinite-style labeled and unlabeled crop streams for training, full images for evaluation.

Training is counted in steps. One Lightning "epoch" is `train.val_every` steps; item i of epoch e is a
crop drawn from an RNG seeded with (seed, e, i, stream), so data is reproducible and a resumed run draws
the crops an uninterrupted run would. Under DDP each rank reads a disjoint shard of the indices.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from semiland.config import Config
from semiland.console import info
from semiland.data.augment import flip_rot90, speckle_db
from semiland.data.chunks import ChunkedCrops
from semiland.data.class_sampling import RareClassCrops
from semiland.data.prepare import PreparedData
from semiland.data.raster import Box
from semiland.data.store import SampleStore
from semiland.errors import SemilandError

CACHE_SHARE = 0.25  # data.cache holds decoded images up to this share of the machine's memory
EVAL_BLOCK = 2048  # a raster larger than EVAL_BLOCK² read by window is validated / tested by blocks of this side


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
        batch: int = 1,
        lanes: int = 1,
        ranks: int = 1,
        chunked: bool | None = None,
        rare: RareClassCrops | None = None,
    ):
        """`speckle`: (first SAR band, looks) — labeled crops get SAR speckle noise (`data.sar_speckle_looks`).
        `shard`: this rank's number where each DDP rank draws from its own share of the images.
        `chunked` (default: where the store reads by window): crops cut several from each window read
        (`ChunkedCrops`, arranged for batches of `batch` drawn by `lanes` loader processes, the stream's
        items dealt to `ranks` DDP ranks); else each crop drawn anywhere in its image. `rare`: labeled crops
        cut where rare-class sampling puts them instead (each its own window read)."""
        self.store, self.ids, self.crop, self.length, self.seed, self.labeled = store, ids, crop, length, seed, labeled
        self.speckle = speckle
        self.key = () if shard is None else (shard,)  # ranks on their own shards draw their own crops
        self.epoch = 0  # set by the engine at each epoch start, before workers are forked
        self.rare = rare
        if chunked is None:
            chunked = store.windowed and rare is None
        self.chunks = ChunkedCrops(store, ids, crop, seed, labeled, self.key, batch, lanes, ranks) if chunked else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index, int(self.labeled), *self.key])
        if self.rare is not None:
            sample_id, top, left = self.rare.window(rng, self.crop)
            crop = self.store.region(sample_id, self.labeled, (top, left, self.crop, self.crop))
        elif self.chunks is not None:
            crop = self.chunks(index, self.epoch, rng)
        else:
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
            grid = store.block_grid(sample_id, EVAL_BLOCK)
            self.items += [(sample_id, None)] if grid is None else [(sample_id, box) for box in grid]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_id, block = self.items[index]
        if block is None:
            sample = self.store.raw(sample_id)
        else:
            sample, (top, left, h, w) = self.store.with_context(sample_id, block, self.margin)
            assert sample.mask is not None
            core = np.zeros(sample.valid.shape, bool)
            core[top : top + h, left : left + w] = True
            sample.mask[~core] = self.store.spec.classes.ignore_index  # context only: scored by its own block
        image = self.store.normalise(sample.image, sample.valid)
        return {
            "image": torch.from_numpy(image),
            "mask": torch.from_numpy(sample.mask),
            "valid": torch.from_numpy(sample.valid),
            "id": sample_id,
        }


def loader_workers(setting: Any, accelerator: str, cached: bool) -> int:
    """data.num_workers: a number as given; auto: none where reading costs nothing (the images are held in
    memory) or where a CPU trains (a loader process takes a core from the forward pass; reading by window keeps
    up there: docs/benchmarks.md, read-speed), else half the cores, at most 8, to feed a GPU."""
    if setting != "auto":
        if isinstance(setting, bool) or not isinstance(setting, int) or not 0 <= setting <= 256:
            raise SemilandError(f"data.num_workers must be auto or a whole number 0–256, got {setting!r}")
        return setting
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if cached or not gpu:
        return 0
    workers = min(8, max(1, (os.cpu_count() or 2) // 2))
    info_once(f"data: reading training crops in {workers} loader processes (data.num_workers=auto)")
    return workers


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
        # each loader process holds its own cache; auto adds none to images held in memory
        cache = d.cache and self._cache_fits(loader_workers(d.num_workers, cfg.train.accelerator, cached=True))
        self.workers = loader_workers(d.num_workers, cfg.train.accelerator, cache)
        self.store = SampleStore(
            data.spec, d.bands, data.mean, data.std, cache, d.pseudo_labels, d.scale, windowed=not cache,
            index=data.index,
        )  # fmt: skip
        self.streams: list[CropStream] = []
        self.rare: RareClassCrops | None = None  # built at the first training loader (one pass over the masks)

    def _cache_fits(self, workers: int) -> bool:
        """data.cache keeps every decoded image in memory, in each loader process: refused (with a line saying
        so) where that would take more than `CACHE_SHARE` of the machine's memory; crops are then read by
        window from the files."""
        split, workers = self.data.split, max(1, workers)
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

    def _stream_loader(
        self, ids: list[str], batch: int, labeled: bool, crop: int | None = None, steps: int | None = None
    ) -> DataLoader:
        """One epoch = `steps` (default val_every) steps of crops of side `crop` (default data.crop_size) on
        every rank. Under DDP the unlabeled images (the mass: any number of
        files) are sharded, every world-th to a rank, so that each rank opens, reads and caches only its own
        share and adding machines adds throughput; the few labeled images are drawn by every rank, each rank
        taking its own items of one stream (DistributedSampler)."""
        world, rank = _world()
        shard = world > 1 and not labeled and len(ids) >= world
        if shard:
            ids = ids[rank::world]
        length = (steps or self.cfg.train.val_every) * batch * (1 if shard else world)
        ranks = world if world > 1 and not shard else 1  # a DistributedSampler deals this stream's items
        stream = CropStream(
            self.store, ids, crop or self.cfg.data.crop_size, length, self.cfg.train.seed, labeled, self._speckle(),
            shard=rank if shard else None, batch=batch, lanes=self.workers, ranks=ranks,
            rare=self._rare_classes() if labeled else None,
        )  # fmt: skip
        self.streams.append(stream)
        sampler = DistributedSampler(stream, world, rank, shuffle=False) if ranks > 1 else None
        return DataLoader(stream, batch_size=batch, sampler=sampler, drop_last=True, num_workers=self.workers)

    def _rare_classes(self) -> RareClassCrops | None:
        """Rare-class sampling of the labeled crops where `data.rare_class_temperature` asks for it."""
        temperature = self.cfg.data.rare_class_temperature
        if temperature <= 0:
            return None
        if self.rare is None:
            classes = self.data.spec.classes
            self.rare = RareClassCrops(
                self.store, self.data.split.labeled, classes.num_classes, classes.ignore_index, temperature,
                self.cfg.train.seed,
            )  # fmt: skip
            info_once(
                f"labeled crops by rare-class sampling (T = {temperature:g}), class: pixels → crops: "
                + self.rare.describe(classes.names)
            )
        return self.rare

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

    def pretraining_loader(self, crop: int, steps: int) -> DataLoader:
        """Crops of every training image, labeled or not, as unlabeled images (no masks, no flips): the stream of
        self-supervised pretraining (engine/pretrain.py), one epoch of `steps` batches of unlabeled_batch_size."""
        split = self.data.split
        ids = list(dict.fromkeys(split.labeled + split.unlabeled))
        return self._stream_loader(ids, self.cfg.data.unlabeled_batch_size, False, crop=crop, steps=steps)

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
        return DataLoader(images, batch_size=1, sampler=sampler, num_workers=self.workers)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.data.split.val) if self.data.split.val else []

    def test_dataloader(self) -> DataLoader:
        if not self.data.split.test:
            raise SemilandError("the split has no test images; set data.test")
        return self._eval_loader(self.data.split.test)
