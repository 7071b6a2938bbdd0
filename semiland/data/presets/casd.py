"""Christchurch Aerial Semantic Dataset (CASD, ONERA / DTIS; zenodo.org/record/3566005), as used in
MiniFrance §6.5: 10 cm aerial tiles over Christchurch, 4 tiles densely annotated with 4 classes (buildings,
cars, vegetation, background) and 20 tiles without annotations.

Layout read (arrange the downloaded tiles so):
    <root>/labeled/images/<tile>.tif + <root>/labeled/masks/<tile>.png|tif   (RGB-coded masks)
    <root>/unlabeled/images/<tile>.tif
    <root>/classes.csv (optional: name,r,g,b; default below)
Regions are the annotated tiles. Default split (the paper's): the first 2 annotated tiles labeled, the other
2 validation and test, the 20 unannotated tiles unlabeled.
"""

from __future__ import annotations

from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, SampleRef, images_in, pair_folder
from semiland.errors import SemilandError

DESCRIPTION = "Christchurch Aerial Semantic Dataset: 4 annotated + 20 unannotated tiles, 4 classes"
ROWS = [("background", (255, 255, 255)), ("buildings", (255, 0, 0)), ("cars", (0, 0, 255)), ("vegetation", (0, 255, 0))]


def build(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the casd preset needs data.root: the folder holding labeled/ and unlabeled/")
    root = Path(cfg.root)
    if not (root / "labeled" / "images").is_dir():
        raise SemilandError(f"{root / 'labeled' / 'images'} not found: see the casd layout (semiland datasets)")
    ignore = list(cfg.ignore_classes or [])
    table = root / "classes.csv"
    classes = ClassTable.from_csv(table, ignore) if table.is_file() else ClassTable.from_rows(ROWS, ignore)
    pairs = pair_folder(root / "labeled" / "images", root / "labeled" / "masks", "labeled")
    samples = [SampleRef(f"{s.image.stem}/{s.image.stem}", s.image, s.mask, s.image.stem) for s in pairs]
    unl_dir = root / "unlabeled" / "images"
    unlabeled = (
        [SampleRef(f"unlabeled/{k}", p, None, "unlabeled") for k, p in images_in(unl_dir).items()]
        if unl_dir.is_dir()
        else []
    )
    regions = [s.region for s in samples]
    held_out = regions[2:] if len(regions) > 2 else regions[-1:]
    split = {"split_mode": "region", "labeled": regions[:2], "unlabeled": [], "val": held_out, "test": "val"}
    return DatasetSpec("casd", root, samples, classes, unlabeled, split)
