"""Generic folder layout: <root>/<region>/{images,masks}/ (or <root>/{images,masks}) + classes.csv."""

from __future__ import annotations

from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, scan_folder, scan_unlabeled
from semiland.errors import SemilandError

DESCRIPTION = (
    "any <root>/<region>/images + masks (rasters or polygons) folders, classes from <root>/classes.csv (name,r,g,b)"
)


def build(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the folder preset needs data.root (or --data PATH)")
    root = Path(cfg.root)
    table = root / "classes.csv"
    if not table.is_file():
        raise SemilandError(f"{table} not found: the folder preset reads class names and colours from it")
    classes = ClassTable.from_csv(table, list(cfg.ignore_classes or []))
    samples, maskless = scan_folder(root)
    regions = sorted({s.region for s in samples})
    split = {"split_mode": "fraction", "labeled": 0.25, "val": 0.15, "test": 0.15}
    if len(regions) >= 4:
        split = {"split_mode": "region", "labeled": regions[:1], "val": regions[-2:-1], "test": regions[-1:]}
    return DatasetSpec("folder", root, samples, classes, maskless + scan_unlabeled(cfg.unlabeled_dirs), split)
