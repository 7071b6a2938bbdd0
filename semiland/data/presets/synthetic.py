"""Synthetic scenes (semiland.data.synthetic): generated once into data.root or a cache folder."""

from __future__ import annotations

import os
from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, scan_folder, scan_unlabeled
from semiland.data.synthetic import generate

DESCRIPTION = "procedural aerial-like scenes, any band count, per-region appearance shift (offline demo, tests)"


def cache_root(cfg: DataConfig) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "semiland"
    name = f"synthetic-r{cfg.synthetic_regions}-i{cfg.synthetic_images}-s{cfg.synthetic_size}-b{cfg.synthetic_bands}"
    return base / name


def build(cfg: DataConfig) -> DatasetSpec:
    root = Path(cfg.root) if cfg.root else cache_root(cfg)
    generate(root, cfg.synthetic_regions, cfg.synthetic_images, cfg.synthetic_size, cfg.synthetic_bands)
    classes = ClassTable.from_csv(root / "classes.csv", list(cfg.ignore_classes or []))
    regions = [f"region_{r}" for r in range(cfg.synthetic_regions)]
    n = len(regions)
    split = {
        "split_mode": "region",
        "labeled": regions[: max(1, n // 3)],
        "unlabeled": regions[max(1, n // 3) : max(2, n - 2)],
        "val": regions[n - 2 : n - 1] if n >= 3 else [],
        "test": regions[n - 1 :],
    }
    samples, maskless = scan_folder(root)
    return DatasetSpec("synthetic", root, samples, classes, maskless + scan_unlabeled(cfg.unlabeled_dirs), split)
