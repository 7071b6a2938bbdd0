"""Reading images and masks of any band count and dtype; writing class maps.

GeoTIFF (and anything else GDAL reads) goes through rasterio, keeping CRS / transform / nodata;
JPEG / PNG go through Pillow (palette PNGs are expanded to RGB). Images come back as float32
(C, H, W) plus a `valid` (H, W) mask: nodata and NaN pixels are invalid and set to 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semiland.errors import SemilandError
from semiland.io import atomic_path

PIL_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
IMAGE_SUFFIXES = PIL_SUFFIXES | {".tif", ".tiff", ".jp2", ".img", ".vrt"}


@dataclass
class Raster:
    data: np.ndarray  # float32 (C, H, W); invalid pixels are 0
    valid: np.ndarray  # bool (H, W)
    profile: dict[str, Any] = field(default_factory=dict)  # crs / transform when georeferenced

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape[1], self.data.shape[2]


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise SemilandError(f"file {path} not found")


def decoded_by_pillow(path: Path) -> bool:
    """JPEG / PNG / … go through Pillow up to its decompression-bomb limit (~89 Mpx); larger ones (a real
    orthophoto JPEG) through GDAL, which reads them by window instead of refusing them."""
    if path.suffix.lower() not in PIL_SUFFIXES:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return not Image.MAX_IMAGE_PIXELS or im.width * im.height <= Image.MAX_IMAGE_PIXELS
    except Image.DecompressionBombError:
        return False
    except (OSError, SyntaxError, ValueError):
        return True  # damaged: Pillow's reader names the damage


def open_raster(path: Path) -> Any:
    """rasterio.open for reading; every failure is one line naming the file."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding in the name (os.fsdecode's surrogates)
        raise SemilandError(f"cannot read {path}: GDAL needs file names in UTF-8; rename the file") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as err:
        raise SemilandError(f"cannot read {path}: {err}") from None


def _read_pil(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "PA", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as err:
        raise SemilandError(f"cannot read {path}: {err} (truncated or not an image?)") from None
    return arr


def check_bands(path: Path, count: int, bands: list[int] | None, what: str = "data.bands") -> None:
    """Refuse a 1-based band selection that the file cannot give."""
    if bands is not None and not bands:
        raise SemilandError(
            f"{what} is an empty list: give 1-based band numbers like [4, 3, 2], or null for every band"
        )
    bad = [b for b in bands or [] if not 1 <= b <= count]
    if bad:
        raise SemilandError(f"{path} has {count} bands; {what} asks for {bad}")


def _read_gdal(path: Path, bands: list[int] | None = None) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    from rasterio.errors import RasterioIOError

    with open_raster(path) as src:
        check_bands(path, src.count, bands)
        try:
            arr = src.read(bands)
        except RasterioIOError as err:  # a truncated file opens, then fails to read
            raise SemilandError(f"cannot read {path}: {err}") from None
        profile = {"crs": src.crs, "transform": src.transform, "width": src.width, "height": src.height}
        return arr, src.nodata, profile


def read_image(path: str | Path, bands: list[int] | None = None) -> Raster:
    """Any image file → float32 (C, H, W), valid mask, georeferencing. `bands` are 1-based."""
    path = Path(path)
    _check_exists(path)
    nodata: float | None = None
    profile: dict[str, Any] = {}
    if decoded_by_pillow(path):
        arr = _read_pil(path)
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        check_bands(path, arr.shape[0], bands)
        if bands is not None:
            arr = arr[[b - 1 for b in bands]]
    else:
        arr, nodata, profile = _read_gdal(path, bands)
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise SemilandError(f"{path} is empty ({arr.shape[1]} x {arr.shape[2]} pixels)")
    return Raster(*as_float_valid(arr, nodata), profile)


def as_float_valid(arr: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw (C, H, W) pixels → float32 copy with invalid pixels set to 0, and valid (H, W).

    Invalid: any band NaN / inf, or every band equal to `nodata`.
    """
    data = arr.astype(np.float32)
    valid = np.isfinite(data).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(arr == nodata).all(axis=0)
    data[:, ~valid] = 0.0
    return data, valid


# Band names that say which colour a band shows: Sentinel-2 and Landsat 8 / 9 number red, green and blue
# 4, 3, 2 (B04 / B4 …); other files say "red", "green", "blue" in the band description or colour interpretation.
NATURAL_COLOUR = {"red": ("b4", "b04", "red"), "green": ("b3", "b03", "green"), "blue": ("b2", "b02", "blue")}


def natural_colour(path: str | Path, bands: list[int] | None = None) -> tuple[tuple[int, int, int] | None, str]:
    """Which of an image's bands (0-based, among the `bands` selection) show red, green and blue, by the file's
    band descriptions or colour interpretation (metadata only), and a panel title saying which were shown;
    (None, title) when the file does not name them: a preview then shows the first three bands as red, green
    and blue (the stand-in the title names)."""
    path = Path(path)
    names: list[str] = []
    if not decoded_by_pillow(path):  # JPEG / PNG via Pillow: red, green, blue in that order
        with open_raster(path) as src:
            descriptions = [(d or "").strip().lower() for d in src.descriptions]
            interp = [c.name.lower() for c in src.colorinterp]
        names = [d or i for d, i in zip(descriptions, interp, strict=True)]
        if bands:
            names = [names[b - 1] for b in bands if 0 < b <= len(names)]
    else:
        with Image.open(path) as im:
            rgb = im.mode in ("RGB", "RGBA")
        if rgb:
            names = ["red", "green", "blue", "alpha"][: 4 if not bands else max(bands)]
            names = [names[b - 1] for b in bands] if bands else names[:3]
    found = [next((k for k, n in enumerate(names) if n in NATURAL_COLOUR[c]), None) for c in ("red", "green", "blue")]
    if None in found or len(set(found)) < 3:
        return None, "image (band 1, grey)" if 0 < len(names) < 3 else "image (bands 1, 2, 3 as R, G, B)"
    if [names[k] for k in found] == ["red", "green", "blue"]:
        return (found[0], found[1], found[2]), "image"
    return (found[0], found[1], found[2]), f"image ({', '.join(names[k].upper() for k in found)})"


def read_mask(path: str | Path) -> np.ndarray:
    """Mask file → (H, W, 3) uint8 colours or (H, W) raw values (decoded by a ClassTable)."""
    path = Path(path)
    _check_exists(path)
    if decoded_by_pillow(path):
        arr = _read_pil(path)
        if arr.ndim == 3 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
            arr = arr[..., 0]
        return arr
    arr, nodata, _ = _read_gdal(path)
    if arr.shape[0] == 3:
        return np.moveaxis(arr, 0, -1)
    values = arr[0]
    if nodata is not None and not np.isnan(nodata):  # the file's own "no label" value: NaN, which masks ignore
        values = values.astype(np.float64)
        values[values == nodata] = np.nan
    return values


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) without decoding the pixels."""
    path = Path(path)
    _check_exists(path)
    if decoded_by_pillow(path):
        try:
            with Image.open(path) as im:
                return im.height, im.width
        except OSError as err:
            raise SemilandError(f"cannot read {path}: {err}") from None
    with open_raster(path) as src:
        return src.height, src.width


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """(H, W, 3) uint8 → PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def write_class_geotiff(
    path: str | Path,
    classes: np.ndarray,
    colors: list[tuple[int, int, int]],
    profile: dict[str, Any],
    nodata: int = 255,
) -> None:
    """(H, W) uint8 class indices → single-band GeoTIFF with colour table, input CRS / transform, atomically."""
    import rasterio

    height, width = classes.shape
    meta = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": "uint8",
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
    }
    if profile.get("crs") is not None:
        meta["crs"] = profile["crs"]
    if profile.get("transform") is not None:
        meta["transform"] = profile["transform"]
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **meta) as dst:
            dst.write(classes.astype(np.uint8), 1)
            dst.write_colormap(1, {k: (*c, 255) for k, c in enumerate(colors)})
