"""Dataset presets of the MiniFrance issue, each on a generated fixture in the real layout (the real data is
not here): MiniFrance / tinyMiniFrance, CASD, ISPRS Vaihingen and Potsdam (TorchGeo's layout)."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from semiland.config import DataConfig
from semiland.data.prepare import prepare_data
from semiland.data.presets import build_dataset
from semiland.data.sources import load_sample
from semiland.errors import SemilandError

from .conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore")


def tif(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = arr if arr.ndim == 3 else arr[None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype) as dst:  # fmt: skip
        dst.write(arr)


def rgb_mask(colors: list[tuple[int, int, int]], size: int, rng) -> np.ndarray:
    idx = rng.integers(0, len(colors), (size, size))
    return np.moveaxis(np.array(colors, np.uint8)[idx], -1, 0)


@pytest.fixture
def minifrance(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "MiniFrance"
    layout = {"labeled_train": {"Nice": 2, "Nantes_Saint-Nazaire": 2}, "test": {"Rennes": 2, "Cherbourg": 1}}
    for part, cities in layout.items():
        for city, n in cities.items():
            for k in range(n):
                stem = f"{city[:3]}-2014-{k}"
                tif(root / part / city / "BDORTHO" / f"{stem}.tif", rng.integers(0, 255, (3, 64, 64), np.uint8))
                tif(root / part / city / "UrbanAtlas" / f"{stem}_UA2012.tif", rng.choice([0, 1, 5, 10, 14, 15], (64, 64)).astype(np.uint8))  # fmt: skip
    tif(root / "unlabeled_train" / "Brest" / "BDORTHO" / "b1.tif", rng.integers(0, 255, (3, 64, 64), np.uint8))
    return root


def test_minifrance_layout_classes_and_table_2_split(minifrance):
    spec = build_dataset(DataConfig(preset="minifrance", root=str(minifrance)))
    assert spec.classes.num_classes == 14 and spec.classes.names[0] == "urban fabric"
    assert spec.default_split["labeled"] == ["Nantes_Saint-Nazaire", "Nice"]
    assert spec.default_split["val"] == ["Cherbourg"] and spec.default_split["test"] == ["Rennes"]
    assert [s.id for s in spec.unlabeled] == ["Brest/b1"]
    ref = spec.by_id()["Nice/Nic-2014-0"]
    sample = load_sample(ref, spec.classes, None, None)
    with rasterio.open(ref.mask) as src:
        raw = src.read(1)
    # UrbanAtlas values 1 … 14 → classes 0 … 13; 0 (no information) and 15 (clouds / no data) ignored
    assert (sample.mask[raw == 1] == 0).all() and (sample.mask[raw == 14] == 13).all()
    assert (sample.mask[(raw == 0) | (raw == 15)] == 255).all()


def test_minifrance_trains_with_its_default_split(minifrance, tmp_path):
    from semiland.engine.runner import fit

    cfg = tiny_config(minifrance, method={"name": "multitask", "aux_loss": "kmeans"})
    cfg.data.preset, cfg.data.labeled, cfg.data.val, cfg.data.test = "minifrance", None, None, None
    data = prepare_data(cfg)
    assert len(data.split.labeled) == 4 and data.split.unlabeled == ["Brest/b1"] and len(data.split.test) == 2
    result = fit(cfg, tmp_path / "run")
    assert result.best_ckpt.is_file()


def test_minifrance_errors(tmp_path, minifrance):
    with pytest.raises(SemilandError, match="has no city folders"):
        build_dataset(DataConfig(preset="minifrance", root=str(tmp_path)))
    (minifrance / "labeled_train" / "Nice" / "UrbanAtlas" / "Nic-2014-1_UA2012.tif").unlink()
    with pytest.raises(SemilandError, match="has no UrbanAtlas mask"):
        build_dataset(DataConfig(preset="minifrance", root=str(minifrance)))


def test_casd_layout_and_split(tmp_path):
    from semiland.data.presets.casd import ROWS

    rng = np.random.default_rng(1)
    colors = [c for _, c in ROWS]
    for k in range(4):
        tif(tmp_path / "labeled" / "images" / f"tile{k}.tif", rng.integers(0, 255, (3, 64, 64), np.uint8))
        tif(tmp_path / "labeled" / "masks" / f"tile{k}.tif", rgb_mask(colors, 64, rng))
    for k in range(3):
        tif(tmp_path / "unlabeled" / "images" / f"u{k}.tif", rng.integers(0, 255, (3, 64, 64), np.uint8))
    cfg = tiny_config(tmp_path)
    cfg.data.preset, cfg.data.labeled, cfg.data.val, cfg.data.test = "casd", None, None, None
    data = prepare_data(cfg)
    assert data.spec.classes.names == ("background", "buildings", "cars", "vegetation")
    assert data.split.labeled == ["tile0/tile0", "tile1/tile1"] and len(data.split.unlabeled) == 3
    assert data.split.val == data.split.test == ["tile2/tile2", "tile3/tile3"]  # the paper evaluates on them


@pytest.mark.parametrize("name", ["vaihingen", "potsdam"])
def test_isprs_through_torchgeo_layout(tmp_path, name):
    from torchgeo.datasets import Potsdam2D, Vaihingen2D

    from semiland.data.presets.isprs import _paths

    dataset = Vaihingen2D if name == "vaihingen" else Potsdam2D
    rng = np.random.default_rng(2)
    bands = 3 if name == "vaihingen" else 4
    tiles = dataset.splits["train"][:7] + dataset.splits["test"][:1]
    for tile in tiles:
        image, mask = _paths(name, tmp_path, tile)
        tif(image, rng.integers(0, 255, (bands, 48, 48), np.uint8))
        tif(mask, rgb_mask([tuple(c) for c in dataset.colormap], 48, rng))
    spec = build_dataset(DataConfig(preset=name, root=str(tmp_path)))
    assert spec.classes.names == tuple(dataset.classes[1:])  # Clutter/background ignored by default
    assert len(spec.samples) == 8 and len(spec.default_split["labeled"]) == 4
    assert len(spec.default_split["val"]) == 2 and len(spec.default_split["test"]) == 1
    sample = load_sample(spec.samples[0], spec.classes, None, None)
    assert sample.image.shape == (bands, 48, 48) and sample.mask.max() == 255 and sample.mask.min() == 0
    with pytest.raises(SemilandError, match="TorchGeo's layout"):
        build_dataset(DataConfig(preset=name, root=str(tmp_path / "nothing")))
