"""TorchGeo datasets as a data source: their samples written once as a semiland folder dataset.

A user who already has TorchGeo datasets (any `NonGeoDataset` yielding `image` / `mask` dicts, or any
`GeoDataset` — a `RasterDataset` of images, intersected (`&`) with one of masks — tiled by TorchGeo's own
`GridGeoSampler`) gets a folder every semiland command reads (the `folder` preset):

    <root>/classes.csv                       name,r,g,b (the class table given)
    <root>/<region>/images/<region>_<i>.tif  the sample's image, its dtype; CRS + transform for geo samples
    <root>/<region>/masks/<region>_<i>.tif   its mask as class indices (uint8; 255 = ignored)

one region per dataset given (`{"train": ds, "val": ds2, "test": ds3, "extra": unlabeled_ds}`); a sample with
no `mask` is an unlabeled image. Writing them once, rather than reading TorchGeo samples during training,
keeps what semiland guarantees of every source: masks checked before training, band statistics from the
training images, runs that resume and re-run on the same pixels, and `analyze` / `predict` on the same files.
The folder is written whole or not at all (`io.write_output_folder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from semiland.console import progress_bar
from semiland.data.classes import IGNORE_INDEX
from semiland.errors import SemilandError
from semiland.io import plan_output_folder, write_output_folder


def _array(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _samples(dataset: Any, size: float | None, stride: float | None) -> Any:
    """(sample, georeferencing or None) for every sample: a GeoDataset's tiles of `size` px, else its items."""
    from torchgeo.datasets import GeoDataset

    if isinstance(dataset, GeoDataset):
        from rasterio.transform import from_origin
        from torchgeo.samplers import GridGeoSampler

        if size is None:
            raise SemilandError("a TorchGeo GeoDataset is tiled into images: give size= (tile side in pixels)")
        res_x, res_y = dataset.res if isinstance(dataset.res, tuple) else (dataset.res, dataset.res)
        for query in GridGeoSampler(dataset, size, stride or size):
            x, y = query[0], query[1]
            yield dataset[query], {"crs": dataset.crs, "transform": from_origin(x.start, y.stop, res_x, res_y)}
    else:
        for i in range(len(dataset)):
            yield dataset[i], None


def _write(path: Path, array: np.ndarray, geo: dict[str, Any] | None) -> None:
    import rasterio

    count, height, width = array.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": array.dtype,
               "compress": "deflate", **(geo or {})}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def from_torchgeo(
    root: str | Path,
    regions: Mapping[str, Any],
    classes: list[str] | Mapping[str, tuple[int, int, int]],
    *,
    size: float | None = None,
    stride: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write TorchGeo datasets (`regions`: region name → dataset) as a folder dataset at `root`; returns `root`.
    `classes`: names (index k is class k; colours from matplotlib's tab10 / tab20) or name → (r, g, b).
    `size` / `stride`: tile side and step in pixels for GeoDatasets (default stride: size, no overlap)."""
    import matplotlib

    if not regions:
        raise SemilandError("from_torchgeo needs at least one region: {'train': dataset, …}")
    if isinstance(classes, Mapping):
        table = [(str(n), tuple(int(v) for v in rgb)) for n, rgb in classes.items()]
    else:
        palette = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        table = [(str(n), tuple(int(255 * v) for v in palette(k)[:3])) for k, n in enumerate(classes)]
    if not table:
        raise SemilandError("from_torchgeo needs the class names (index k of a mask is class k)")
    target = plan_output_folder(Path(root), overwrite, "dataset folder")
    with write_output_folder(target) as out:
        (out / "classes.csv").write_text(
            "name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in table), encoding="utf-8"
        )
        for region, dataset in regions.items():
            _write_region(out / region, region, dataset, len(table), size, stride)
    return Path(root)


def _write_region(
    folder: Path, region: str, dataset: Any, num_classes: int, size: float | None, stride: float | None
) -> None:
    (folder / "images").mkdir(parents=True)
    written = 0
    for i, (sample, geo) in enumerate(
        progress_bar(_samples(dataset, size, stride), desc=f"write {region}", unit="image")
    ):
        if "image" not in sample:
            raise SemilandError(f"region {region}: sample {i} has no 'image' (its keys: {', '.join(sample)})")
        image = _array(sample["image"])
        image = image[None] if image.ndim == 2 else image  # (C, H, W)
        name = f"{region}_{i:05d}.tif"
        _write(folder / "images" / name, image, geo)
        if sample.get("mask") is not None:
            mask = _array(sample["mask"]).squeeze()
            if mask.shape != image.shape[1:]:
                raise SemilandError(f"region {region}: sample {i}'s mask is {mask.shape}, its image {image.shape[1:]}")
            bad = np.setdiff1d(np.unique(mask), [*range(num_classes), IGNORE_INDEX])
            if bad.size:
                raise SemilandError(
                    f"region {region}: sample {i}'s mask holds {bad[:5].tolist()}, not a class index (0–{num_classes - 1}) "
                    f"nor {IGNORE_INDEX} (ignored); remap the mask in the dataset's transforms"
                )
            (folder / "masks").mkdir(exist_ok=True)
            _write(folder / "masks" / name, mask.astype(np.uint8)[None], geo)
        written += 1
    if not written:
        raise SemilandError(f"region {region}: the dataset gave no sample (for a GeoDataset: is size= larger than it?)")
