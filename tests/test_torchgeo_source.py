"""TorchGeo datasets as a data source: a NonGeoDataset and a RasterDataset pair (images & masks, tiled by
TorchGeo's GridGeoSampler) written as a folder dataset that fit trains on, georeferencing kept."""

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from torchgeo.datasets import NonGeoDataset, RasterDataset

import semiland
from semiland.errors import SemilandError

NAMES = ["background", "building", "water"]


class Patches(NonGeoDataset):
    """What a TorchGeo user's own dataset yields: image / mask dicts (mask left out: unlabeled)."""

    def __init__(self, n: int, masks: bool = True, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.items = [
            {"image": torch.from_numpy(rng.integers(0, 255, (3, 64, 64)).astype(np.float32)),
             **({"mask": torch.from_numpy(rng.integers(0, 3, (64, 64)))} if masks else {})}
            for _ in range(n)
        ]  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def test_nongeo_datasets_become_a_folder_dataset_that_fit_trains_on(tmp_path):
    root = semiland.from_torchgeo(
        tmp_path / "data",
        {"region_0": Patches(2), "region_1": Patches(2, masks=False, seed=1), "region_2": Patches(2, seed=2),
         "region_3": Patches(2, seed=3)},
        NAMES,
    )  # fmt: skip
    assert (root / "classes.csv").read_text().splitlines()[0] == "name,r,g,b"
    assert len(list((root / "region_0" / "masks").glob("*.tif"))) == 2 and not (root / "region_1" / "masks").exists()
    with rasterio.open(next((root / "region_0" / "images").glob("*.tif"))) as src:
        assert src.count == 3 and src.dtypes[0] == "float32"
    run = semiland.fit(
        "folder/unet", tmp_path / "run",
        data={"root": str(root), "labeled": ["region_0"], "val": ["region_2"], "test": ["region_3"], "crop_size": 32,
              "batch_size": 2, "unlabeled_batch_size": 2, "eval_tile": 64},
        model={"arch": "tiny_unet", "width": 8}, method={"name": "fixmatch"},
        train={"steps": 2, "val_every": 2, "accelerator": "cpu", "progress": False},
    )  # fmt: skip
    assert 0 <= run.metrics["mIoU"] <= 1 and run.checkpoint.is_file()
    assert run.result.data.split.unlabeled  # region_1's mask-less images are the unlabeled set


def test_raster_datasets_are_tiled_with_their_georeferencing(tmp_path):
    rng = np.random.default_rng(0)
    for kind, count, values in (("images", 3, (0, 255)), ("masks", 1, (0, 3))):
        (tmp_path / kind).mkdir()
        with rasterio.open(
            tmp_path / kind / "scene.tif", "w", driver="GTiff", width=96, height=64, count=count, dtype="uint8",
            crs="EPSG:32640", transform=from_origin(300000, 2780000, 0.5, 0.5),
        ) as dst:  # fmt: skip
            dst.write(rng.integers(*values, (count, 64, 96)).astype(np.uint8))

    class Images(RasterDataset):
        filename_glob = "*.tif"

    class Masks(RasterDataset):
        filename_glob = "*.tif"
        is_image = False

    both = Images(str(tmp_path / "images")) & Masks(str(tmp_path / "masks"))
    root = semiland.from_torchgeo(tmp_path / "data", {"train": both}, {"a": (0, 0, 0), "b": (9, 9, 9), "c": (1, 2, 3)},
                                  size=32)  # fmt: skip
    tiles = sorted((root / "train" / "images").glob("*.tif"))
    assert len(tiles) == 6  # 96 × 64 px in 32 px tiles
    with rasterio.open(tmp_path / "images" / "scene.tif") as scene:
        whole = scene.read()
    found = 0
    for tile in tiles:
        with rasterio.open(tile) as t:
            assert t.crs.to_epsg() == 32640 and t.res == (0.5, 0.5) and t.shape == (32, 32)
            col, row = ~scene.transform * (t.transform.c, t.transform.f)  # the tile's place in the scene
            found += np.array_equal(t.read(), whole[:, round(row) : round(row) + 32, round(col) : round(col) + 32])
    assert found == 6  # every tile holds the scene's pixels at its georeferenced place
    with pytest.raises(SemilandError, match="already exists"):
        semiland.from_torchgeo(tmp_path / "data", {"train": both}, NAMES, size=32)
    with pytest.raises(SemilandError, match="give size="):
        semiland.from_torchgeo(tmp_path / "other", {"train": both}, NAMES)
    assert not (tmp_path / "other").exists()  # refused: nothing left behind
