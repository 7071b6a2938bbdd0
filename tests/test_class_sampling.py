"""Rare-class sampling of labeled crops (data.rare_class_temperature, DAFormer's rule): the class draw follows
the labeled shares, every crop holds a pixel of its class, and positions read by blocks equal those of the
whole mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semiland.data import store as store_module
from semiland.data.class_sampling import RareClassCrops
from semiland.data.datamodule import CropStream, SegDataModule
from semiland.data.prepare import prepare_data
from semiland.data.store import SampleStore
from tests.test_large_rasters import CLASSES, folder_config, write_tif

RARE = 3  # the class only a 12 × 12 square of one labeled scene shows


@pytest.fixture(scope="module")
def rare_root(tmp_path_factory) -> Path:
    """4 regions × 2 scenes of 150 × 130 px: land (1) with a road (2) band; one labeled scene holds a small
    square of vegetation (3), 0.4 % of the labeled pixels."""
    root = tmp_path_factory.mktemp("rare") / "data"
    root.mkdir(parents=True)
    (root / "classes.csv").write_text(CLASSES)
    rng = np.random.default_rng(0)
    for r in range(4):
        for i in range(2):
            mask = np.ones((150, 130), np.uint8)
            mask[:, 60:80] = 2
            if (r, i) == (0, 1):
                mask[100:112, 10:22] = RARE
            image = (100 + 40 * mask[None] + rng.integers(0, 30, (3, 150, 130))).astype(np.uint16)
            write_tif(root / f"region_{r}" / "images" / f"scene_{i}.tif", image)
            write_tif(root / f"region_{r}" / "masks" / f"scene_{i}.tif", mask[None])
    return root


def crops_holding(stream: CropStream, cls: int) -> float:
    return float(np.mean([(stream[k]["mask"].numpy() == cls).any() for k in range(len(stream))]))


def test_rare_class_sampling_shows_the_rare_class_in_its_crops(rare_root):
    data = prepare_data(folder_config(rare_root))
    store = SampleStore(data.spec, None, data.mean, data.std, cache=True)
    ids = data.split.labeled
    rare = RareClassCrops(store, ids, 5, 255, temperature=0.01, seed=0)
    assert rare.counts[:, RARE].sum() == 144 and rare.counts.sum() == 2 * 150 * 130
    assert rare.class_p[0] == rare.class_p[4] == 0  # classes no labeled pixel shows are never drawn
    assert rare.class_p[RARE] > 0.999  # T = 0.01: the rarest class nearly always
    # T = 1: still every class present, the rarer ones more often than their pixel shares
    mild = RareClassCrops(store, ids, 5, 255, temperature=1.0, seed=0)
    assert mild.class_p[RARE] > mild.shares[RARE] * 10 and mild.class_p[1] < mild.shares[1]
    plain = CropStream(store, ids, crop=32, length=60, seed=0, labeled=True)
    sampled = CropStream(store, ids, crop=32, length=60, seed=0, labeled=True, rare=rare)
    assert crops_holding(sampled, RARE) == 1.0  # every crop holds a pixel of its drawn class
    assert crops_holding(plain, RARE) < 0.2
    assert "vegetation 0 % → 100 %" in rare.describe(data.spec.classes.names)


def test_positions_read_by_blocks_equal_the_whole_masks(rare_root, monkeypatch):
    """A windowed store reads the labeled masks in blocks (here 64² instead of 2048²): the same pixel counts,
    and every kept position lies on a pixel of its class."""
    cfg = folder_config(rare_root)
    data = prepare_data(cfg)
    whole = SampleStore(data.spec, None, data.mean, data.std, cache=True)
    monkeypatch.setattr(store_module, "BLOCK", 64)
    windowed = SampleStore(data.spec, None, data.mean, data.std, cache=False, windowed=True, index=data.index)
    ids = data.split.labeled
    assert windowed.block_grid(ids[0], 64) is not None  # the blocked path is the one tested
    a = RareClassCrops(whole, ids, 5, 255, temperature=0.1, seed=0)
    b = RareClassCrops(windowed, ids, 5, 255, temperature=0.1, seed=0)
    assert np.array_equal(a.counts, b.counts) and np.allclose(a.class_p, b.class_p)
    for i, sample_id in enumerate(ids):
        mask = whole.raw(sample_id).mask
        for c in range(5):
            rows, cols = b.points[i][c].T
            assert len(rows) == min(b.counts[i, c], 4096) and (mask[rows, cols] == c).all()
    # at half resolution the positions map onto the scaled grid
    half = SampleStore(data.spec, None, data.mean, data.std, cache=True, scale=0.5)
    scaled = RareClassCrops(half, ids, 5, 255, temperature=0.1, seed=0)
    mask = half.raw(ids[1], scaled=True).mask
    rows, cols = scaled.points[1][RARE].T
    assert (rows.max(), cols.max()) < mask.shape and (mask[rows, cols] == RARE).mean() > 0.8


def test_the_datamodule_draws_labeled_crops_by_rare_class_sampling(rare_root):
    cfg = folder_config(rare_root, rare_class_temperature=0.01)
    data = prepare_data(cfg)
    loaders = SegDataModule(cfg, data, use_unlabeled=True).train_dataloader()
    assert loaders["labeled"].dataset.rare is not None and loaders["unlabeled"].dataset.rare is None
    batch = next(iter(loaders["labeled"]))
    assert all((m == RARE).any() for m in batch["mask"])
    off = SegDataModule(folder_config(rare_root), data, use_unlabeled=True).train_dataloader()
    assert off["labeled"].dataset.rare is None
