"""Paired optical + SAR presets (issue #7): Sen1Floods11, WHU-OPT-SAR and a generic paired folder.

Each sample's SAR raster rides along with its optical image (`SampleRef.sar`) and is stacked after the
optical bands when loaded (`data/paired.py`); `data.modality` picks both, optical or SAR alone.

- sen1floods11 (Bonafilia et al. 2020): <root>/S2Hand/<chip>_S2Hand.tif (13 bands, TOA reflectance × 10⁴),
  <root>/S1Hand/<chip>_S1Hand.tif (VV, VH in dB, NaN where invalid), <root>/LabelHand/<chip>_LabelHand.tif
  (−1 no data, 0 not water, 1 water). Regions are countries (the chip name's prefix). Split: the official
  lists <root>/splits/flood_handlabeled/flood_{train,valid,test}_data.csv when present (a quarter of the
  training chips labeled, the rest unlabeled), else by fraction. `data.tile_grid` splits chips into windows.
- whu_opt_sar (Li et al. 2022): <root>/optical/<scene>.tif (GF-1, 4 bands), <root>/sar/<scene>.tif (GF-3),
  <root>/lbl/<scene>.tif (values 0, 10, …, 70 = 8 classes). Split: <root>/split/{train,test}.txt scene lists
  when present (the official 80 / 20 split), else the first 80 % of scenes by name train, the rest test;
  10 % of the train scenes labeled, 5 % validation, the rest unlabeled. Scenes are 5556 × 3704 px: use
  data.cache=false.
- paired: <root>/<region>/{optical,sar,masks}/<stem>.* and <root>/classes.csv (name,r,g,b), as `folder`.

Every preset's `data.unlabeled_dirs` are folders of unlabeled pairs, each with `optical/` and `sar/` inside,
paired by name as `predict --sar` pairs them (`sources.scan_unlabeled` with `pairs`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from semiland.config import DataConfig
from semiland.data.classes import ClassTable
from semiland.data.paired import SarOptions
from semiland.data.sources import DatasetSpec, SampleRef, images_in, scan_unlabeled
from semiland.errors import SemilandError

WHU_CLASSES = ["background", "farmland", "city", "village", "water", "forest", "road", "others"]
WHU_COLORS = [(0, 0, 0), (204, 102, 1), (254, 0, 0), (255, 255, 1), (0, 0, 255), (85, 167, 0), (93, 255, 255), (152, 102, 153)]  # fmt: skip


def _need(root: Path, *parts: str) -> Path:
    folder = root.joinpath(*parts)
    if not folder.is_dir():
        raise SemilandError(f"{folder} not found: is {root} laid out as the preset expects (semiland datasets)?")
    return folder


def build_sen1floods11(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the sen1floods11 preset needs data.root: the folder holding S1Hand/, S2Hand/, LabelHand/")
    root = Path(cfg.root)
    s1, labels = _need(root, "S1Hand"), _need(root, "LabelHand")
    sar_only = cfg.modality == "sar"  # Sentinel-1 alone: S2Hand/ is optional (most users train on S1 alone)
    s2 = root / "S2Hand" if sar_only else _need(root, "S2Hand")
    optical = {stem.removesuffix("_S2Hand"): p for stem, p in images_in(s2).items()} if s2.is_dir() else {}
    sar = {stem.removesuffix("_S1Hand"): p for stem, p in images_in(s1).items()}
    samples = []
    for chip in sorted(sar if sar_only else optical):
        if chip not in sar:
            raise SemilandError(f"optical chip {optical[chip]} has no SAR chip {s1 / f'{chip}_S1Hand.tif'}")
        # a SAR-only chip stands in for its own optical image: with data.modality=sar only its SAR is used
        image, mask = optical.get(chip, sar[chip]), labels / f"{chip}_LabelHand.tif"
        region = chip.split("_")[0]
        samples.append(SampleRef(f"{region}/{chip}", image, mask if mask.is_file() else None, region, sar=sar[chip]))
    if not samples:
        raise SemilandError(f"no <chip>_{'S1' if sar_only else 'S2'}Hand.tif files in {s1 if sar_only else s2}")
    rows = [("not water", (200, 200, 200), 0), ("water", (0, 90, 255), 1)]
    classes = ClassTable.from_values(rows, list(cfg.ignore_classes or []), (-1, 255))
    labeled = [s for s in samples if s.mask is not None]
    unlabeled = [s for s in samples if s.mask is None] + scan_unlabeled(cfg.unlabeled_dirs, pairs=True)
    split = {"split_mode": "fraction", "labeled": 0.25, "val": 0.15, "test": 0.25}
    lists = root / "splits" / "flood_handlabeled"
    if lists.is_dir():
        split = _official_split(lists, labeled)
    return DatasetSpec("sen1floods11", root, labeled, classes, unlabeled, split, sar=SarOptions.from_config(cfg))


def _official_split(lists: Path, samples: list[SampleRef]) -> dict:
    by_chip = {s.id.split("/", 1)[1]: s.id for s in samples}
    parts = {}
    for part, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        path = lists / f"flood_{name}_data.csv"
        rows = list(csv.reader(path.open())) if path.is_file() else []
        parts[part] = [by_chip[r[0].removesuffix("_S1Hand.tif")] for r in rows if r and r[0].removesuffix("_S1Hand.tif") in by_chip]  # fmt: skip
    cut = max(1, len(parts["train"]) // 4)  # a quarter of the official training chips labeled
    return {"split_mode": "ids", "labeled": parts["train"][:cut], "unlabeled": parts["train"][cut:], "val": parts["val"], "test": parts["test"]}  # fmt: skip


def build_whu_opt_sar(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the whu_opt_sar preset needs data.root: the folder holding optical/, sar/, lbl/")
    root = Path(cfg.root)
    optical, sar, lbl = images_in(_need(root, "optical")), images_in(_need(root, "sar")), images_in(_need(root, "lbl"))
    missing = sorted(set(optical) - set(sar))
    if missing:
        raise SemilandError(f"optical scene {optical[missing[0]]} has no SAR scene in {root / 'sar'}")
    samples = [SampleRef(f"{s}/{s}", optical[s], lbl.get(s), s, sar=sar[s]) for s in sorted(optical)]
    rows = [(n, c, 10 * k) for k, (n, c) in enumerate(zip(WHU_CLASSES, WHU_COLORS))]  # values 0, 10, …, 70
    classes = ClassTable.from_values(rows, list(cfg.ignore_classes or []), (255,))
    scenes = [s.region for s in samples]
    lists = {p: (root / "split" / f"{p}.txt") for p in ("train", "test")}
    if all(f.is_file() for f in lists.values()):
        train, test = ([Path(x.strip()).stem for x in f.read_text().split() if x.strip()] for f in lists.values())
    else:
        cut = round(0.8 * len(scenes))
        train, test = scenes[:cut], scenes[cut:]
    n_lab, n_val = max(1, round(0.1 * len(train))), max(1, round(0.05 * len(train))) if len(train) > 2 else 0
    split = {"split_mode": "region", "labeled": train[:n_lab], "val": train[n_lab : n_lab + n_val], "test": test}
    return DatasetSpec("whu_opt_sar", root, samples, classes, scan_unlabeled(cfg.unlabeled_dirs, pairs=True), split, sar=SarOptions.from_config(cfg))  # fmt: skip


def build_paired(cfg: DataConfig) -> DatasetSpec:
    if not cfg.root:
        raise SemilandError("the paired preset needs data.root: <root>/<region>/{optical,sar,masks}/ + classes.csv")
    root = Path(cfg.root)
    classes = ClassTable.from_csv(root / "classes.csv", list(cfg.ignore_classes or []))
    samples, unlabeled = [], []
    for region in sorted(p for p in root.iterdir() if (p / "optical").is_dir()):
        optical, sar = images_in(region / "optical"), images_in(_need(region, "sar"))
        masks = images_in(region / "masks") if (region / "masks").is_dir() else {}
        for stem, path in optical.items():
            if stem not in sar:
                raise SemilandError(f"optical image {path} has no SAR image {region / 'sar' / stem}.*")
            ref = SampleRef(f"{region.name}/{stem}", path, masks.get(stem), region.name, sar=sar[stem])
            (samples if ref.mask is not None else unlabeled).append(ref)
    if not samples:
        raise SemilandError(f"no labeled optical + SAR pairs in {root}/<region>/{{optical,sar,masks}}")
    regions = sorted({s.region for s in samples})
    split = {"split_mode": "fraction", "labeled": 0.25, "val": 0.15, "test": 0.15}
    if len(regions) >= 4:
        split = {"split_mode": "region", "labeled": regions[:1], "val": regions[-2:-1], "test": regions[-1:]}
    return DatasetSpec("paired", root, samples, classes, unlabeled + scan_unlabeled(cfg.unlabeled_dirs, pairs=True), split, sar=SarOptions.from_config(cfg))  # fmt: skip
