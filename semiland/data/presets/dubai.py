"""Dubai aerial imagery (Humans in the Loop / MBRSC, CC0): 8 tiles × 9 RGB JPEGs, RGB-coded PNG masks.

Regions are the tiles. Classes come from the dataset's `class_colors.csv`; the annotators' "unlabeled"
colour and pure black (not annotated) are ignored by default (`data.ignore_classes` changes that).
"""

from __future__ import annotations

import os
from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, scan_folder, scan_unlabeled
from semiland.errors import SemilandError

DESCRIPTION = "Dubai aerial imagery: 8 tiles (regions) x 9 RGB images, 5 classes (+ unlabeled, black ignored)"
DEFAULT_IGNORE = ["unlabeled", "(no annotation)"]
# Region split used by the demo and configs: diverse labeled tiles, the two large tiles unlabeled.
DEFAULT_SPLIT = {
    "split_mode": "region",
    "labeled": ["tile_1", "tile_4", "tile_6"],
    "unlabeled": ["tile_5", "tile_7", "tile_8"],
    "val": ["tile_2"],
    "test": ["tile_3"],
}


def default_root() -> Path:
    """$SEMILAND_DATA, else ../shared/data/dubai_aerial beside the repository checkout."""
    if os.environ.get("SEMILAND_DATA"):
        return Path(os.environ["SEMILAND_DATA"])
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "dubai_aerial"


def build(cfg: DataConfig) -> DatasetSpec:
    root = Path(cfg.root) if cfg.root else default_root()
    if not root.is_dir():
        raise SemilandError(f"Dubai data folder {root} not found; pass --data PATH or set $SEMILAND_DATA")
    ignore = DEFAULT_IGNORE if cfg.ignore_classes is None else list(cfg.ignore_classes)
    classes = ClassTable.from_csv(root / "class_colors.csv", ignore)
    samples, maskless = scan_folder(root)
    return DatasetSpec("dubai", root, samples, classes, maskless + scan_unlabeled(cfg.unlabeled_dirs), DEFAULT_SPLIT)
