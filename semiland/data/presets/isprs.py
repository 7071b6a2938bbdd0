"""ISPRS 2-D semantic labeling: Vaihingen (IRRG, 9 cm) and Potsdam (RGBIR, 5 cm), through TorchGeo.

TorchGeo's `Vaihingen2D` / `Potsdam2D` define the extracted layout, the challenge's train / test tile lists
and the six RGB-coded classes; we read its class attributes (instantiating the datasets would extract or
download archives) and load the tiles with our own readers. Regions are tiles. Default split: TorchGeo's
train tiles → the first 4 labeled, the last 2 validation, the rest unlabeled; its test tiles → test.
"Clutter/background" is ignored by default. Potsdam has 4 bands (R, G, B, IR): `data.bands=[1,2,3]` for RGB.
"""

from __future__ import annotations

from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, SampleRef, scan_unlabeled
from semiland.errors import SemilandError

DEFAULT_IGNORE = ["Clutter/background"]


def _paths(name: str, root: Path, tile: str) -> tuple[Path, Path]:
    """(image, mask) of one tile in TorchGeo's extracted layout."""
    if name == "vaihingen":
        from torchgeo.datasets import Vaihingen2D as D

        return root / D.image_root / tile, root / tile
    from torchgeo.datasets import Potsdam2D as D

    return root / D.image_root / f"{tile}_RGBIR.tif", root / f"{tile}_label.tif"


def _build(name: str, cfg: DataConfig) -> DatasetSpec:
    from torchgeo.datasets import Potsdam2D, Vaihingen2D

    dataset = Vaihingen2D if name == "vaihingen" else Potsdam2D
    if not cfg.root:
        raise SemilandError(f"the {name} preset needs data.root: the folder with TorchGeo's extracted {name} files")
    root = Path(cfg.root)
    if not (root / dataset.image_root).is_dir():
        raise SemilandError(
            f"{root / dataset.image_root} not found: extract {', '.join(dataset.filenames)} into {root} "
            "(TorchGeo's layout)"
        )
    samples, split = [], {}
    for part, tiles in dataset.splits.items():
        found = []
        for tile in tiles:
            image, mask = _paths(name, root, tile)
            if image.is_file() and mask.is_file():
                region = Path(tile).stem
                samples.append(SampleRef(f"{region}/{image.stem}", image, mask, region))
                found.append(region)
        split[part] = found
    if not samples:
        raise SemilandError(f"no {name} tiles with labels found in {root}")
    ignore = DEFAULT_IGNORE if cfg.ignore_classes is None else list(cfg.ignore_classes)
    classes = ClassTable.from_rows(list(zip(dataset.classes, map(tuple, dataset.colormap))), ignore)
    train = split.get("train", [])
    default = {
        "split_mode": "region",
        "labeled": train[:4],
        "val": train[-2:] if len(train) > 6 else [],
        "test": split.get("test", []),
    }
    return DatasetSpec(name, root, samples, classes, scan_unlabeled(cfg.unlabeled_dirs), default)


def build_vaihingen(cfg: DataConfig) -> DatasetSpec:
    return _build("vaihingen", cfg)


def build_potsdam(cfg: DataConfig) -> DatasetSpec:
    return _build("potsdam", cfg)
