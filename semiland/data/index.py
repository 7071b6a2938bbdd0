"""An index of a dataset's image files: size, bands, dtype, nodata and CRS of each, read from the headers
once and kept in the user's cache (`$XDG_CACHE_HOME/semiland/index/`), so that a run over tens of thousands
of unlabeled rasters neither opens them all again nor decodes a pixel to plan its crops, its statistics and
its memory. An entry is reused while its file keeps its size and modification time; a changed file is read
again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from semiland.console import progress_bar
from semiland.data.raster import (
    DECODED_AS_RGB,
    PIL_SUFFIXES,
    configure_gdal_for_many_files,
    decoded_by_pillow,
    open_raster,
)
from semiland.errors import SemilandError
from semiland.io import atomic_path

VERSION = 1  # bump when an entry's fields change: older cache files are then ignored
BAR_FROM = 200  # files to open: a progress bar from this many on


@dataclass(frozen=True)
class RasterInfo:
    height: int
    width: int
    count: int  # bands in the file
    dtype: str
    nodata: float | None
    crs: str | None  # WKT; None when the file is not georeferenced
    windowed: bool  # GDAL reads windows of it; False: Pillow decodes it whole (JPEG / PNG)
    size: int  # bytes on disk and modification time: an entry holds while both do
    mtime_ns: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "semiland" / "index"


def read_info(path: Path) -> RasterInfo:
    """One file's header (never its pixels); one clear line when it cannot be opened."""
    try:
        stat = path.stat()
    except OSError:
        raise SemilandError(f"file {path} not found") from None
    if decoded_by_pillow(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    bands = 3 if im.mode in DECODED_AS_RGB else len(im.getbands())
                    return RasterInfo(im.height, im.width, bands, "uint8", None, None, False, stat.st_size,
                                      stat.st_mtime_ns)  # fmt: skip
        except (OSError, SyntaxError, ValueError) as err:
            raise SemilandError(f"cannot read {path}: {err} (truncated or not an image?)") from None
    with open_raster(path) as src:
        crs = src.crs.to_wkt() if src.crs else None
        return RasterInfo(src.height, src.width, src.count, src.dtypes[0], src.nodata, crs, True, stat.st_size,
                          stat.st_mtime_ns)  # fmt: skip


def build_index(paths: list[Path], cache: bool = True, progress: bool = True) -> dict[Path, RasterInfo]:
    """Every file's `RasterInfo`, from the cache where the file is unchanged, else from its header (a progress
    bar when many files need opening). The cache file is named by the set of files, written atomically."""
    paths = list(dict.fromkeys(paths))
    names = sorted(str(p.resolve()) for p in paths)
    key = hashlib.sha256("\n".join(names).encode()).hexdigest()[:20]
    cache_file = cache_folder() / f"{key}.json"
    known: dict[str, RasterInfo] = {}
    if cache and cache_file.is_file():
        try:
            stored = json.loads(cache_file.read_text())
            if stored.get("version") == VERSION:
                known = {k: RasterInfo(**v) for k, v in stored["files"].items()}
        except (ValueError, TypeError, KeyError, OSError):
            known = {}  # a damaged cache file is rebuilt, never trusted
    out: dict[Path, RasterInfo] = {}
    todo: list[Path] = []
    for path in paths:
        info = known.get(str(path.resolve()))
        try:
            stat = path.stat()
        except OSError:
            raise SemilandError(f"file {path} not found") from None
        if info is not None and (info.size, info.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            out[path] = info
        else:
            todo.append(path)
    if todo:
        with progress_bar(
            total=len(todo), desc="indexing images", unit="file", disable=not progress or len(todo) < BAR_FROM
        ) as bar:
            if any(p.suffix.lower() not in PIL_SUFFIXES for p in todo):  # GDAL reads some (JPEG / PNG: Pillow)
                configure_gdal_for_many_files()  # headers of thousands of files: no folder listing per open
            for path in todo:
                out[path] = read_info(path)
                bar.update()
        if cache:
            files = {str(p.resolve()): asdict(info) for p, info in out.items()}
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache_file) as tmp:
                Path(tmp).write_text(json.dumps({"version": VERSION, "files": files}))
    return out
