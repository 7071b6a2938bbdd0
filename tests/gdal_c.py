"""What GDAL itself reads from a raster, through the C library rasterio ships (rasterio has no call for
category names or raster attribute tables): the names QGIS / ArcGIS legends show."""

from __future__ import annotations

import ctypes
from pathlib import Path

import rasterio


def _gdal() -> ctypes.CDLL:
    libs = Path(rasterio.__file__).resolve().parent.parent / "rasterio.libs"
    found = sorted(libs.glob("libgdal-*.so*")) or sorted(libs.glob("libgdal*"))
    lib = ctypes.CDLL(str(found[0]))  # already loaded by rasterio: the same library, its driver registry
    p = ctypes.c_void_p
    for name, res, args in [
        ("GDALOpen", p, [ctypes.c_char_p, ctypes.c_int]),
        ("GDALClose", None, [p]),
        ("GDALGetRasterBand", p, [p, ctypes.c_int]),
        ("GDALGetMetadata", p, [p, ctypes.c_char_p]),
        ("GDALGetRasterCategoryNames", ctypes.POINTER(ctypes.c_char_p), [p]),
        ("GDALGetDefaultRAT", p, [p]),
        ("GDALRATGetRowCount", ctypes.c_int, [p]),
        ("GDALRATGetColumnCount", ctypes.c_int, [p]),
        ("GDALRATGetNameOfCol", ctypes.c_char_p, [p, ctypes.c_int]),
        ("GDALRATGetValueAsString", ctypes.c_char_p, [p, ctypes.c_int, ctypes.c_int]),
    ]:
        getattr(lib, name).restype, getattr(lib, name).argtypes = res, args
    lib.GDALAllRegister()
    return lib


def categories_and_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Band 1's category names and raster attribute table rows, as `gdalinfo` reads them."""
    g = _gdal()
    ds = g.GDALOpen(str(path).encode(), 0)
    assert ds, f"GDAL cannot open {path}"
    try:
        band = g.GDALGetRasterBand(ds, 1)
        g.GDALGetMetadata(band, None)  # as gdalinfo does first: loads the .aux.xml sidecar (PAM)
        names, raw = [], g.GDALGetRasterCategoryNames(band)
        while raw and raw[len(names)]:
            names.append(raw[len(names)].decode())
        rat, rows = g.GDALGetDefaultRAT(band), []
        if rat:
            cols = [g.GDALRATGetNameOfCol(rat, c).decode() for c in range(g.GDALRATGetColumnCount(rat))]
            for r in range(g.GDALRATGetRowCount(rat)):
                rows.append({c: g.GDALRATGetValueAsString(rat, r, i).decode() for i, c in enumerate(cols)})
        return names, rows
    finally:
        g.GDALClose(ds)
