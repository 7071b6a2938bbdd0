"""Folder sources: pair image and mask files, describe a dataset, load one sample as arrays.

Layouts understood by `scan_folder`:
    root/<region>/images/<stem>.<ext> + root/<region>/masks/<stem>.<ext>   (one region per sub-folder)
    root/images/<stem>.<ext> + root/masks/<stem>.<ext>                      (a single region "all")
and, for unlabeled images, any folder of image files (`scan_unlabeled`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semiland.data.classes import ClassTable
from semiland.data.paired import SarOptions, grid_difference, pair_by_name, stack_sar
from semiland.data.raster import IMAGE_SUFFIXES, Box, read_image, read_mask
from semiland.data.vector import VECTOR_SUFFIXES, is_vector, rasterize_labels
from semiland.errors import SemilandError


@dataclass(frozen=True)
class SampleRef:
    id: str  # unique key "region/stem", used in split files
    image: Path
    mask: Path | None
    region: str
    sar: Path | None = None  # the paired SAR raster (optical + SAR datasets)
    window: tuple[int, int, int, int] | None = None  # (row, col, height, width): a part of the files


@dataclass
class DatasetSpec:
    """What a preset found: labeled samples (with masks), mask-less images, classes, a default split."""

    name: str
    root: Path
    samples: list[SampleRef]
    classes: ClassTable
    unlabeled: list[SampleRef] = field(default_factory=list)
    default_split: dict[str, Any] = field(default_factory=dict)
    mask_threshold: int | None = None  # binarise RGB mask channels at this value (DeepGlobe's masks)
    sar: SarOptions | None = None  # paired optical + SAR samples: how the SAR rasters are read
    label_field: str = "class"  # vector labels: the attribute naming each polygon's class (data.label_field)

    @property
    def regions(self) -> list[str]:
        return sorted({s.region for s in self.samples})

    @property
    def unlabeled_regions(self) -> list[str]:
        """Regions whose images have no masks (a region folder without masks/, data.unlabeled_dirs)."""
        return sorted({s.region for s in self.unlabeled} - set(self.regions))

    def load(self, ref: SampleRef, bands: list[int] | None = None, window: Box | None = None) -> LoadedSample:
        """`load_sample` with this dataset's classes, mask reading, SAR pairing and label field."""
        return load_sample(ref, self.classes, bands, self.mask_threshold, self.sar, window, self.label_field)

    def by_id(self) -> dict[str, SampleRef]:
        return {s.id: s for s in [*self.samples, *self.unlabeled]}

    def input_folders(self) -> list[Path]:
        """Every folder the dataset reads from (its root and the folders of its files): outputs never go there."""
        files = [f for s in [*self.samples, *self.unlabeled] for f in (s.image, s.mask, s.sar) if f is not None]
        return sorted({self.root, *(f.parent for f in files)})


def images_in(folder: Path, suffixes: set[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


def pair_folder(images_dir: Path, masks_dir: Path, region: str) -> list[SampleRef]:
    """Pair `images_dir/<stem>.*` with `masks_dir/<stem>.*` (a raster mask or vector polygons); an unpaired file
    is an error."""
    images, masks = images_in(images_dir), images_in(masks_dir, IMAGE_SUFFIXES | VECTOR_SUFFIXES)
    lonely_images = sorted(set(images) - set(masks))
    if lonely_images:
        raise SemilandError(
            f"image {images[lonely_images[0]]} has no mask in {masks_dir} "
            f"({len(lonely_images)} unpaired); add the mask or move the image to an unlabeled folder"
        )
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_masks:
        raise SemilandError(f"mask {masks[lonely_masks[0]]} has no image in {images_dir}; remove it or add the image")
    return [SampleRef(f"{region}/{stem}", images[stem], masks[stem], region) for stem in sorted(images)]


def scan_folder(root: Path) -> tuple[list[SampleRef], list[SampleRef]]:
    """(images with masks, images of regions without a masks/ folder): the latter are unlabeled images of their
    region, usable as data.unlabeled but never labeled, validated or tested."""
    if not root.is_dir():
        raise SemilandError(f"data folder {root} not found; pass --data PATH or set data.root")
    if (root / "images").is_dir():
        return pair_folder(root / "images", root / "masks", "all"), []
    samples: list[SampleRef] = []
    maskless: list[SampleRef] = []
    for region_dir in sorted(p for p in root.iterdir() if p.is_dir() and (p / "images").is_dir()):
        if (region_dir / "masks").is_dir():
            samples += pair_folder(region_dir / "images", region_dir / "masks", region_dir.name)
        else:
            region = region_dir.name
            maskless += [
                SampleRef(f"{region}/{k}", p, None, region) for k, p in images_in(region_dir / "images").items()
            ]
    if not samples:
        raise SemilandError(
            f"no images with masks found in {root}: expected {root}/<region>/images + masks or {root}/images + masks"
            + (f" ({len(maskless)} images in regions without masks/: they can only be unlabeled)" if maskless else "")
        )
    return samples, maskless


def scan_unlabeled(folders: list[str], pairs: bool = False) -> list[SampleRef]:
    """`data.unlabeled_dirs`: each folder's images, as region `unlabeled:<folder name>`. With `pairs` (the
    optical + SAR presets) each folder holds optical/ and sar/, paired by name as `predict --sar` pairs them."""
    out: list[SampleRef] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise SemilandError(f"unlabeled image folder {folder} not found (data.unlabeled_dirs)")
        region = f"unlabeled:{folder.name}"
        if not pairs:
            out += [SampleRef(f"{region}/{stem}", p, None, region) for stem, p in images_in(folder).items()]
            continue
        if not (folder / "optical").is_dir() or not (folder / "sar").is_dir():
            raise SemilandError(
                f"unlabeled folder {folder} (data.unlabeled_dirs) needs optical/ and sar/ inside: an optical + SAR "
                "preset trains on pairs, named alike in the two folders"
            )
        optical, sar = images_in(folder / "optical"), images_in(folder / "sar")
        if not optical:
            raise SemilandError(f"no images in {folder / 'optical'} (data.unlabeled_dirs)")
        partners = pair_by_name(list(optical.values()), list(sar.values()), str(folder / "sar"))
        out += [SampleRef(f"{region}/{o.stem}", o, None, region, sar=s) for o, s in partners.items()]
    return out


@dataclass
class LoadedSample:
    image: np.ndarray  # float32 (C, H, W), raw values (normalised later)
    valid: np.ndarray  # bool (H, W)
    mask: np.ndarray | None  # int64 (H, W) class indices with ignore, or None (unlabeled)


def load_sample(
    ref: SampleRef,
    classes: ClassTable,
    bands: list[int] | None = None,
    mask_threshold: int | None = None,
    sar: SarOptions | None = None,
    window: Box | None = None,
    label_field: str = "class",
) -> LoadedSample:
    """A sample's pixels (+ its decoded mask when `ref` has one: a raster mask, or vector polygons rasterized
    onto the pixels' grid by their `label_field`). `window` (row, col, height, width) in the sample's own
    pixels: only that part, clipped to the sample (GDAL formats read just the window)."""
    box = ref.window  # a part of the files is the sample (small chips split into windows)
    if window is not None:
        r0, c0, h0, w0 = box or (0, 0, window[0] + window[2], window[1] + window[3])
        r, c = min(window[0], h0), min(window[1], w0)
        box = (r0 + r, c0 + c, min(window[2], h0 - r), min(window[3], w0 - c))
    raster = read_image(ref.image, bands, box)
    if ref.sar is not None and sar is not None:
        raster = stack_sar(raster, ref.image, ref.sar, sar, box)
    mask = None
    if ref.mask is not None and is_vector(ref.mask):
        if raster.profile.get("crs") is None:
            raise SemilandError(
                f"image {ref.image} has no CRS: its vector labels {ref.mask} can only be placed on a georeferenced image"
            )
        mask = rasterize_labels(
            ref.mask, classes, label_field, raster.profile["transform"], raster.profile["crs"], raster.shape
        )
        mask[~raster.valid] = classes.ignore_index
    elif ref.mask is not None:
        raw, profile = read_mask(ref.mask, box)
        if raw.shape[:2] != raster.shape:
            raise SemilandError(
                f"mask {ref.mask} is {raw.shape[1]}x{raw.shape[0]} px but image {ref.image} is "
                f"{raster.shape[1]}x{raster.shape[0]}; masks must match their image"
            )
        if difference := grid_difference(raster.shape, raster.profile, raw.shape[:2], profile):
            raise SemilandError(
                f"mask {ref.mask} is not on the grid of its image {ref.image} ({difference}); warp it onto the "
                "image's grid (gdalwarp -te … -tr …) or label with polygons, which are placed in any CRS"
            )
        if mask_threshold is not None and raw.ndim == 3:
            raw = np.where(raw >= mask_threshold, 255, 0).astype(np.uint8)
        mask = classes.decode(raw, ref.mask)
        mask[~raster.valid] = classes.ignore_index  # nodata pixels are never supervised
    return LoadedSample(raster.data, raster.valid, mask)
