"""DeepGlobe land cover (Demir et al. 2018), the S4Net benchmark: <id>_sat.jpg + <id>_mask.png.

7 RGB-coded classes; "unknown" is ignored. The masks' channels are binarised at 128 (as the challenge
specifies). No regions: splits are by count. S4Net's split of the 803 training images: 100 labeled,
503 unlabeled, 200 validation (also used as the test set).
"""

from __future__ import annotations

from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, SampleRef, scan_unlabeled
from semiland.errors import SemilandError

DESCRIPTION = "DeepGlobe land cover: <id>_sat.jpg + <id>_mask.png, 6 classes (+ unknown ignored)"
ROWS = [
    ("urban_land", (0, 255, 255)),
    ("agriculture_land", (255, 255, 0)),
    ("rangeland", (255, 0, 255)),
    ("forest_land", (0, 255, 0)),
    ("water", (0, 0, 255)),
    ("barren_land", (255, 255, 255)),
    ("unknown", (0, 0, 0)),
]


def build(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the deepglobe preset needs data.root (or --data PATH): the folder of *_sat.jpg files")
    root = Path(cfg.root)
    if not root.is_dir():
        raise SemilandError(f"DeepGlobe folder {root} not found")
    samples = []
    for sat in sorted(root.glob("*_sat.jpg")):
        stem = sat.name[: -len("_sat.jpg")]
        mask = root / f"{stem}_mask.png"
        if not mask.is_file():
            raise SemilandError(f"image {sat} has no mask {mask.name}; move mask-less images to data.unlabeled_dirs")
        samples.append(SampleRef(f"all/{stem}", sat, mask, "all"))
    orphans = [m for m in root.glob("*_mask.png") if not (root / m.name.replace("_mask.png", "_sat.jpg")).is_file()]
    if orphans:
        raise SemilandError(f"mask {orphans[0]} has no image {orphans[0].name.replace('_mask.png', '_sat.jpg')}")
    if not samples:
        raise SemilandError(f"no <id>_sat.jpg files in {root}")
    ignore = ["unknown"] if cfg.ignore_classes is None else list(cfg.ignore_classes)
    classes = ClassTable.from_rows(ROWS, ignore)
    split = {"split_mode": "count", "labeled": 100, "val": 200, "test": "val"}
    return DatasetSpec("deepglobe", root, samples, classes, scan_unlabeled(cfg.unlabeled_dirs), split, 128)
