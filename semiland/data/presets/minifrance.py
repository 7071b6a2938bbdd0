"""MiniFrance (Castillo-Navetty et al. 2022): BD ORTHO RGB tiles (50 cm) + UrbanAtlas 2012 land-use rasters.

Layout read (the release's, and the same for tinyMiniFrance's 1 000 px sub-tiles):
    <root>/labeled_train/<city>/BDORTHO/<stem>.tif   + <root>/labeled_train/<city>/UrbanAtlas/<stem>_UA2012.tif
    <root>/unlabeled_train/<city>/BDORTHO/<stem>.tif (no labels)
    <root>/test/<city>/BDORTHO/… + UrbanAtlas/…      (also accepted: val/)
Mask folders named `UA` or `masks`, and masks named `<stem>.tif`, are accepted too. Masks hold UrbanAtlas
values 1–14, the 14 land-use classes of the paper's Table 3 in its order; 0 (no information) and 15
(clouds, shadows or no data) are ignored. Colours are for display only.
Regions are cities. Default split (Table 2): labeled = the labeled_train cities (Nice, Nantes / Saint-Nazaire),
unlabeled = the unlabeled_train cities, test = the test cities except the one with fewest images, which is
held out for validation (the paper has no validation split; choices must not be made on the test cities).
"""

from __future__ import annotations

from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.sources import DatasetSpec, SampleRef, images_in, scan_unlabeled
from semiland.errors import SemilandError

DESCRIPTION = "MiniFrance / tinyMiniFrance: BD ORTHO + UrbanAtlas, 14 land-use classes, split by city (Table 2)"
# Table 3, in UrbanAtlas value order 1 … 14; display colours after the UrbanAtlas legend.
ROWS = [
    ("urban fabric", (230, 0, 77)),
    ("industrial, commercial, public, military, private and transport units", (204, 77, 242)),
    ("mine, dump and construction sites", (166, 77, 0)),
    ("artificial non-agricultural vegetated areas", (255, 166, 255)),
    ("arable land (annual crops)", (255, 255, 168)),
    ("permanent crops", (242, 166, 77)),
    ("pastures", (230, 230, 77)),
    ("complex and mixed cultivation patterns", (255, 230, 166)),
    ("orchards at the fringe of urban classes", (230, 128, 0)),
    ("forests", (0, 166, 0)),
    ("herbaceous vegetation associations", (204, 242, 77)),
    ("open spaces with little or no vegetation", (204, 255, 204)),
    ("wetlands", (166, 166, 255)),
    ("water", (0, 204, 242)),
]
IGNORE_VALUES = (0, 15, 255)
IMAGE_DIRS, MASK_DIRS = ("BDORTHO", "images"), ("UrbanAtlas", "UA", "masks")


def _first_dir(city: Path, names: tuple[str, ...]) -> Path | None:
    return next((city / n for n in names if (city / n).is_dir()), None)


def _city_samples(city: Path, labeled: bool) -> list[SampleRef]:
    images_dir = _first_dir(city, IMAGE_DIRS)
    if images_dir is None:
        raise SemilandError(f"{city} has no BDORTHO (or images) folder")
    images = images_in(images_dir)
    if not labeled:
        return [SampleRef(f"{city.name}/{stem}", p, None, city.name) for stem, p in images.items()]
    masks_dir = _first_dir(city, MASK_DIRS)
    if masks_dir is None:
        raise SemilandError(f"{city} has images but no UrbanAtlas (or UA, masks) folder")
    masks = {stem.removesuffix("_UA2012"): p for stem, p in images_in(masks_dir).items()}
    lonely = sorted(set(images) - set(masks))
    if lonely:
        raise SemilandError(f"image {images[lonely[0]]} has no UrbanAtlas mask in {masks_dir} ({len(lonely)} unpaired)")
    return [SampleRef(f"{city.name}/{stem}", images[stem], masks[stem], city.name) for stem in sorted(images)]


def _cities(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def build(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the minifrance preset needs data.root: the folder holding labeled_train/ and test/")
    root = Path(cfg.root)
    labeled_cities = _cities(root / "labeled_train")
    test_cities = _cities(root / "test") + _cities(root / "val")
    if not labeled_cities:
        raise SemilandError(f"{root / 'labeled_train'} has no city folders: is {root} a MiniFrance folder?")
    samples = [s for city in labeled_cities + test_cities for s in _city_samples(city, labeled=True)]
    unlabeled = [s for city in _cities(root / "unlabeled_train") for s in _city_samples(city, labeled=False)]
    classes = ClassTable.from_values(
        [(n, c, i + 1) for i, (n, c) in enumerate(ROWS)],  # UrbanAtlas values 1 … 14
        list(cfg.ignore_classes or []),
        IGNORE_VALUES,
        ("no information", "clouds, shadows or no data"),
    )
    counts = {c.name: sum(s.region == c.name for s in samples) for c in test_cities}
    val = [min(counts, key=lambda c: (counts[c], c))] if len(counts) > 1 else []
    split = {
        "split_mode": "region",
        "labeled": [c.name for c in labeled_cities],
        "unlabeled": [],  # the unlabeled_train images join every split's unlabeled set
        "val": val,
        "test": [c for c in counts if c not in val],
    }
    unlabeled += scan_unlabeled(cfg.unlabeled_dirs)
    return DatasetSpec("minifrance", root, samples, classes, unlabeled, split)
