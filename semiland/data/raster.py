"""Reading images and masks of any band count and dtype; writing class maps.

GeoTIFF (and anything else GDAL reads) goes through rasterio, keeping CRS / transform / nodata;
JPEG / PNG go through Pillow (palette PNGs are expanded to RGB). Images come back as float32
(C, H, W) plus a `valid` (H, W) mask: nodata and NaN pixels are invalid and set to 0.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semiland.errors import SemilandError
from semiland.io import atomic_path

PIL_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
IMAGE_SUFFIXES = PIL_SUFFIXES | {".tif", ".tiff", ".jp2", ".img", ".vrt"}

DECODED_AS_RGB = ("P", "PA", "CMYK", "YCbCr")  # Pillow modes read as 3 RGB bands (palette PNGs, CMYK JPEGs)
Box = tuple[int, int, int, int]  # (row, col, height, width): a window of a raster, in pixels


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
            if im.mode in DECODED_AS_RGB:
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


WINDOW_CACHE_BYTES = 256 * 2**20  # GDAL's block cache while reading training windows (its default: 5 % of RAM)


def configure_gdal_for_many_files() -> None:
    """GDAL's settings for reading headers and windows of many files, where the user set none: its block cache,
    which would grow to 5 % of the machine's memory with the number of distinct blocks of open files read (more
    data, more memory), held to `WINDOW_CACHE_BYTES`; and opens that do not list the file's folder looking for
    sidecar files (.aux.xml, .ovr, .msk; in a folder of thousands of rasters that listing costs more than the
    read): GDAL probes them one by one instead (GDAL_DISABLE_READDIR_ON_OPEN=TRUE)."""
    from rasterio.env import set_gdal_config

    if "GDAL_CACHEMAX" not in os.environ:
        set_gdal_config("GDAL_CACHEMAX", WINDOW_CACHE_BYTES)
    if "GDAL_DISABLE_READDIR_ON_OPEN" not in os.environ:
        set_gdal_config("GDAL_DISABLE_READDIR_ON_OPEN", "TRUE")


class _OpenRasters:
    """GDAL datasets kept open for windowed reads: a training run reads thousands of small windows of the same
    files, and opening one costs about a millisecond. Per process (forked DataLoader workers must not share a
    GDAL handle; each sets `configure_gdal_for_many_files`), keyed by size and modification time (a replaced
    file is opened afresh), at most `size` open."""

    def __init__(self, size: int = 64):
        self.size, self.pid = size, -1
        self.open: OrderedDict[tuple[str, int, int], Any] = OrderedDict()

    def get(self, path: Path) -> Any:
        if self.pid != os.getpid():  # a forked worker: the parent's handles are not ours to use
            self.open, self.pid = OrderedDict(), os.getpid()
            configure_gdal_for_many_files()
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key in self.open:
            self.open.move_to_end(key)
            return self.open[key]
        src = self.open[key] = open_raster(path)
        if len(self.open) > self.size:
            self.open.popitem(last=False)[1].close()
        return src


_OPEN = _OpenRasters()


def opened(path: Path) -> Any:
    """This process's open GDAL dataset of `path` (kept open for more windows; never close it)."""
    return _OPEN.get(path)


def window_covering(path: Path, profile: dict[str, Any], shape: tuple[int, int], margin: int = 2) -> Box | None:
    """The window of `path` (a GDAL raster) that covers a grid of `shape` (H, W) with `profile`'s CRS and
    transform, `margin` px wider on every side (a resampling kernel's reach), clipped to the raster; None where
    the two do not overlap."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    src = opened(path)
    bounds = array_bounds(*shape, profile["transform"])  # (west, south, east, north)
    if src.crs is not None and profile.get("crs") is not None and src.crs != profile["crs"]:
        bounds = transform_bounds(profile["crs"], src.crs, *bounds, densify_pts=21)
    win = from_bounds(*bounds, transform=src.transform)
    top, left = max(0, math.floor(win.row_off) - margin), max(0, math.floor(win.col_off) - margin)
    bottom = min(src.height, math.ceil(win.row_off + win.height) + margin)
    right = min(src.width, math.ceil(win.col_off + win.width) + margin)
    if bottom <= top or right <= left:
        return None
    return top, left, bottom - top, right - left


def box_window(box: Box) -> Any:
    """A (row, col, height, width) box as rasterio's Window (col_off, row_off, width, height)."""
    from rasterio.windows import Window

    top, left, height, width = box
    return Window(left, top, width, height)


def _read_gdal(
    path: Path, bands: list[int] | None = None, window: Box | None = None
) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """Pixels (C, h, w) of the whole file or of `window` (clipped to the raster), its nodata, georeferencing
    (the window's own transform)."""
    from rasterio.errors import RasterioIOError

    src = _OPEN.get(path) if window is not None else open_raster(path)
    try:
        check_bands(path, src.count, bands)
        win = None
        if window is not None:
            row, col = min(max(window[0], 0), src.height), min(max(window[1], 0), src.width)
            win = box_window((row, col, min(window[2], src.height - row), min(window[3], src.width - col)))
        try:
            arr = src.read(bands, window=win)
        except RasterioIOError as err:  # a truncated file opens, then fails to read
            raise SemilandError(f"cannot read {path}: {err}") from None
        transform = src.transform if win is None else src.window_transform(win)
        profile = {"crs": src.crs, "transform": transform, "width": arr.shape[2], "height": arr.shape[1]}
        return arr, src.nodata, profile
    finally:
        if window is None:
            src.close()


def _clip(arr: np.ndarray, window: Box | None, channels_last: bool = False) -> np.ndarray:
    """A decoded array's `window` (Pillow files are decoded whole, then cut): (C, H, W), or (H, W[, C])."""
    if window is None:
        return arr
    rows, cols = slice(window[0], window[0] + window[2]), slice(window[1], window[1] + window[3])
    return arr[rows, cols] if channels_last else arr[..., rows, cols]


def read_image(path: str | Path, bands: list[int] | None = None, window: Box | None = None) -> Raster:
    """Any image file → float32 (C, H, W), valid mask, georeferencing. `bands` are 1-based. `window`: only
    those pixels, clipped to the raster (GDAL formats read just the window; JPEG / PNG decode whole, then cut)."""
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
        arr = _clip(arr, window)
    else:
        arr, nodata, profile = _read_gdal(path, bands, window)
    if window is None and (arr.shape[1] == 0 or arr.shape[2] == 0):
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


def read_mask(path: str | Path, window: Box | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Mask file → (H, W, 3) uint8 colours or (H, W) raw values (decoded by a ClassTable), and its georeferencing
    (crs / transform, {} for JPEG / PNG); `window` as in `read_image`."""
    path = Path(path)
    _check_exists(path)
    if decoded_by_pillow(path):
        arr = _read_pil(path)
        if arr.ndim == 3 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
            arr = arr[..., 0]
        return _clip(arr, window, channels_last=True), {}
    arr, nodata, profile = _read_gdal(path, window=window)
    if arr.shape[0] == 3:
        return np.moveaxis(arr, 0, -1), profile
    values = arr[0]
    if nodata is not None and not np.isnan(nodata):  # the file's own "no label" value: NaN, which masks ignore
        values = values.astype(np.float64)
        values[values == nodata] = np.nan
    return values, profile


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
