"""What a run derives from its data config: the dataset, its split, the file index and the per-band
normalisation statistics (from every pixel, or from a sample of windows where the images are too many or
too large to read)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from semiland.config import Config
from semiland.data.augment import random_crop_window
from semiland.data.index import RasterInfo, build_index
from semiland.data.presets import build_dataset
from semiland.data.sources import DatasetSpec, LoadedSample, SampleRef
from semiland.data.splits import Split, make_split
from semiland.data.stats import band_stats, robust_band_stats
from semiland.data.store import SampleStore
from semiland.errors import SemilandError

STATS_WHOLE_PIXELS = 200_000_000  # training images under this many pixels together: statistics from all of them
STATS_WINDOWS, STATS_WINDOW = 2_000, 256  # else from this many windows of this side, drawn across the images


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
    return spec, make_split(spec, want, seed, d.oracle, d.transductive, d.unlabeled_share)


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
        yield sample_id, store.load(sample_id, labeled=False, window=(top, left, STATS_WINDOW, STATS_WINDOW))


def _channels(spec: DatasetSpec, split: Split, d: Any, total: int, index: dict[str, RasterInfo]) -> list[int]:
    """Bands per modality in the stacked input: [optical, SAR] for paired data with both, else [all]."""
    if d.channels:
        return list(d.channels)
    if spec.sar is None or spec.sar.modality != "both":
        return [total]
    first = (split.labeled + split.unlabeled)[0]
    optical = len(d.bands) if d.bands else index[first].count
    return [optical, total - optical]
