"""Labels drawn as polygons (GeoPackage, Shapefile, GeoJSON, FlatGeobuf), rasterized on the fly onto the grid
of the pixels being read: a training crop's window, a block, or a whole image. Most analysts' labels are
polygons with a class attribute, not masks.

Each polygon's class comes from the attribute `data.label_field` (default "class"): a class name of the
dataset's table (any case) or a class value as index masks hold it. Pixels no polygon covers are not
labeled (ignored, never taught as background); where polygons overlap, the later feature wins. The
polygons are read once per process and file, reprojected to the image's CRS (labels and images may be in
different CRSs), and found for a window through a spatial index.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from semiland.data.classes import ClassTable
from semiland.errors import SemilandError

VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".fgb"}
_LOADED: OrderedDict[tuple[Any, ...], tuple[Any, np.ndarray]] = OrderedDict()  # (geometries, class per polygon)
KEEP = 8  # vector files kept parsed per process


def is_vector(path: Path) -> bool:
    return path.suffix.lower() in VECTOR_SUFFIXES


def class_codes(values: Any, classes: ClassTable, path: Path, field: str) -> np.ndarray:
    """The class index (or ignore) of each polygon from its attribute: a class name, or a class value."""
    by_name = {n.strip().lower(): k for k, n in enumerate(classes.names)}
    codes = np.empty(len(values), np.int64)
    for i, value in enumerate(values):
        text = str(value).strip()
        if text.lower() in by_name:
            codes[i] = by_name[text.lower()]
            continue
        try:
            number = float(text)
        except ValueError:
            raise SemilandError(
                f"{path}: polygon {i} has {field} = '{text}', not a class of the table "
                f"({', '.join(classes.names)}); rename it or set data.label_field to the column that names classes"
            ) from None
        codes[i] = classes.decode(np.array([[number]]), f"{path} ({field} of polygon {i})")[0, 0]
    return codes


def _polygons(path: Path, crs: Any, classes: ClassTable, field: str) -> tuple[Any, np.ndarray]:
    """The file's polygons in `crs` (a GeoSeries with a spatial index) and their class codes, parsed once."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, str(crs), field, classes.names)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    import geopandas
    from pyogrio.errors import DataSourceError

    try:
        frame = geopandas.read_file(path)
    except (DataSourceError, OSError, ValueError) as err:
        raise SemilandError(f"cannot read vector labels {path}: {err}") from None
    if field not in frame.columns:
        columns = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        raise SemilandError(f"{path} has no attribute '{field}' (data.label_field); its attributes: {columns}")
    if frame.crs is None:
        raise SemilandError(f"vector labels {path} have no CRS; assign the one they are in (ogr2ogr -a_srs EPSG:…)")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    codes = class_codes(frame[field].tolist(), classes, path, field)
    geometries = frame.geometry.to_crs(crs).reset_index(drop=True)
    _ = geometries.sindex  # built now, once, not on the first window
    _LOADED[key] = (geometries, codes)
    if len(_LOADED) > KEEP:
        _LOADED.popitem(last=False)
    return geometries, codes


def rasterize_labels(
    path: Path, classes: ClassTable, field: str, transform: Any, crs: Any, shape: tuple[int, int]
) -> np.ndarray:
    """int64 (H, W) class indices of the polygons under the grid (`transform`, `crs`, `shape`); ignore elsewhere."""
    from rasterio.features import rasterize
    from rasterio.transform import array_bounds
    from shapely.geometry import box

    geometries, codes = _polygons(path, crs, classes, field)
    west, south, east, north = array_bounds(shape[0], shape[1], transform)
    hits = np.sort(geometries.sindex.query(box(west, south, east, north)))  # file order: the later polygon wins
    if len(hits) == 0:
        return np.full(shape, classes.ignore_index, np.int64)
    burned = rasterize(
        zip(geometries.iloc[hits], codes[hits].tolist(), strict=True),
        out_shape=shape, transform=transform, fill=classes.ignore_index, dtype="int32",
    )  # fmt: skip
    return burned.astype(np.int64)
