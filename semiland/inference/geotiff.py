"""The GeoTIFFs `predict` writes: one input's outputs, opened under temporary names and renamed when whole.

What a GIS reads from them:
- `<stem>_classes.tif`: uint8 class indices with the input's CRS, transform and nodata grid; a colour table,
  and beside it `<stem>_classes.tif.aux.xml` (GDAL's PAM sidecar) with the class names twice: as category
  names and as a thematic raster attribute table (value, class, red, green, blue), so QGIS's and ArcGIS's
  legends show names, not 0…K-1. Nodata 255 unless `--nodata` chooses another value (never a class index).
- `<stem>_confidence.tif`: float32, the winning class's probability in [0, 1]; NaN where no data.
- `<stem>_entropy.tif`: float32, the entropy of the class probabilities in nats (unit tag "nats"); NaN.
- `<stem>_probs.tif`: one uint8 band per class, the probability in percent (0–100, 255 no data), with GDAL
  scale 0.01: a reader that applies scale / offset (QGIS, `gdal_translate -unscale`) gets the same [0, 1]
  probabilities as the confidence raster, at a quarter of the float32 size.
With `--cog`, overviews of the class map are built by MODE (the most frequent class of each block: a class
map is never averaged into a class that was not there), those of the continuous rasters by AVERAGE.
Every output carries provenance tags (`SEMILAND_*`: version, checkpoint and hash, method, classes, input,
date). `--co KEY=VALUE` passes GDAL creation options (of the GTiff driver, or the COG driver with `--cog`),
tried on a tiny raster before any work so a misspelt key or value is one line, not a GDAL warning later.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from semiland.errors import SemilandError
from semiland.inference.stream import NODATA, Block
from semiland.io import atomic_path, disk_full

PROBS_SCALE = 0.01  # percent → probability
# GDAL raster attribute table field types and usages (gdal.h: GDALRATFieldType, GDALRATFieldUsage)
RAT_INT, RAT_STRING = 0, 2
RAT_MINMAX, RAT_NAME, RAT_RED, RAT_GREEN, RAT_BLUE = 5, 2, 6, 7, 8


def categories_xml(names: tuple[str, ...] | list[str], colors: tuple[tuple[int, int, int], ...]) -> str:
    """GDAL's PAM sidecar for a class band: category names and a thematic raster attribute table."""
    fields = [("value", RAT_INT, RAT_MINMAX), ("class", RAT_STRING, RAT_NAME),
              ("red", RAT_INT, RAT_RED), ("green", RAT_INT, RAT_GREEN), ("blue", RAT_INT, RAT_BLUE)]  # fmt: skip
    defs = "".join(
        f'      <FieldDefn index="{i}"><Name>{n}</Name><Type>{t}</Type><Usage>{u}</Usage></FieldDefn>\n'
        for i, (n, t, u) in enumerate(fields)
    )
    rows = "".join(
        f'      <Row index="{k}"><F>{k}</F><F>{escape(name)}</F><F>{r}</F><F>{g}</F><F>{b}</F></Row>\n'
        for k, (name, (r, g, b)) in enumerate(zip(names, colors))
    )
    cats = "".join(f"      <Category>{escape(n)}</Category>\n" for n in names)
    return (
        '<PAMDataset>\n  <PAMRasterBand band="1">\n'
        f"    <CategoryNames>\n{cats}    </CategoryNames>\n"
        f'    <GDALRasterAttributeTable tableType="thematic">\n{defs}{rows}    </GDALRasterAttributeTable>\n'
        "  </PAMRasterBand>\n</PAMDataset>\n"
    )


@contextmanager
def _gdal_warnings() -> Any:
    """Collect the warnings GDAL reports through rasterio's logger while the block runs."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                seen.append(record.getMessage())

    logger, handler = logging.getLogger("rasterio._env"), Collect()
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def check_creation_options(options: dict[str, str], cog: bool, dtypes: set[str]) -> None:
    """Refuse `--co` options GDAL would ignore or fail on: each output dtype is written once, 32 × 32 px, in
    memory, with the options; an unknown key, an unsupported value or a write error is one line."""
    import rasterio
    import rasterio.shutil
    from rasterio._err import CPLE_BaseError  # GDAL's own errors, raised on close; rasterio.errors lacks them
    from rasterio.io import MemoryFile

    if not options:
        return
    driver = "COG" if cog else "GTiff"
    given = " ".join(f"{k}={v}" for k, v in options.items())
    for dtype in sorted(dtypes):
        profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 1, "dtype": dtype, "tiled": True}
        # MemoryFile: GDAL's /vsimem/, released on exit whatever state a failed write left the file in
        with _gdal_warnings() as seen, MemoryFile() as scratch, MemoryFile() as final:
            try:
                with scratch.open(**profile, **({} if cog else options)) as dst:
                    dst.write(np.zeros((1, 32, 32), dtype))
                if cog:
                    rasterio.shutil.copy(scratch.name, final.name, driver="COG", **options)
            except (rasterio.errors.RasterioError, CPLE_BaseError, ValueError) as err:
                seen.append(str(err).splitlines()[0])
        if problems := [m.removeprefix("CPLE_NotSupported in ").removeprefix("CPLE_IllegalArg in ") for m in seen]:
            raise SemilandError(
                f"--co {given}: {problems[0]} (the {driver} driver's creation options: "
                f"https://gdal.org/drivers/raster/{driver.lower()}.html)"
            )


class Outputs:
    """The GeoTIFFs of one input, open under temporary names; `close()` finishes (COG) and renames them."""

    def __init__(
        self,
        paths: dict[str, Path],
        reader: Any,
        classes: Any,
        opts: Any,
        provenance: dict[str, str] | None = None,
    ):
        import rasterio

        self.paths, self.opts, self.reader, self.classes = paths, opts, reader, classes
        self.nodata = NODATA if opts.nodata is None else opts.nodata
        self._stack = ExitStack()  # atomic_path contexts: renamed on success, removed on failure
        rasters = [k for k in paths if k not in ("png", "categories")]
        self._final = {k: self._stack.enter_context(atomic_path(paths[k])) for k in rasters}
        self._categories = (
            self._stack.enter_context(atomic_path(paths["categories"])) if "categories" in paths else None
        )
        # With --cog the blocks go to a plain tiled GeoTIFF first; close() copies it into COG layout.
        self._scratch = {k: t.with_name(t.name + ".gtiff") for k, t in self._final.items()} if opts.cog else {}
        base = {
            "driver": "GTiff",
            "height": reader.height,
            "width": reader.width,
            "TILED": "YES",
            "BLOCKXSIZE": 256,
            "BLOCKYSIZE": 256,
            "COMPRESS": "DEFLATE",
            "BIGTIFF": "IF_SAFER",
            **{k: v for k, v in reader.profile.items() if v is not None},
            **({} if opts.cog else opts.creation_options),  # with --cog they are the COG copy's
        }
        kinds = {
            "classes": {"count": 1, "dtype": "uint8", "nodata": self.nodata},
            "confidence": {"count": 1, "dtype": "float32", "nodata": float("nan")},
            "entropy": {"count": 1, "dtype": "float32", "nodata": float("nan")},
            "probs": {"count": classes.num_classes, "dtype": "uint8", "nodata": NODATA, "INTERLEAVE": "BAND"},
        }
        self.dst = {}
        for kind, tmp in self._final.items():
            self.dst[kind] = rasterio.open(self._scratch.get(kind, tmp), "w", **base, **kinds[kind])
        self.dst["classes"].write_colormap(1, {k: (*c, 255) for k, c in enumerate(classes.colors)})
        self.dst["classes"].set_band_description(
            1, "class: " + ", ".join(f"{k} {n}" for k, n in enumerate(classes.names))
        )
        for dst in self.dst.values():  # what made the map: GDAL metadata (gdalinfo, QGIS's layer properties)
            dst.update_tags(**(provenance or {}))
        if "entropy" in self.dst:
            self.dst["entropy"].units = ("nats",)
        if "probs" in self.dst:
            for i, name in enumerate(classes.names, 1):
                self.dst["probs"].set_band_description(i, f"P({name}) percent; scale 0.01 gives the probability")
            self.dst["probs"].scales = (PROBS_SCALE,) * classes.num_classes

    def write(self, block: Block) -> None:
        from rasterio.windows import Window

        h = block.classes.shape[0]
        window = Window(0, block.y0, self.reader.width, h)
        classes = (
            block.classes if self.nodata == NODATA else np.where(block.classes == NODATA, self.nodata, block.classes)
        )
        self.dst["classes"].write(classes, 1, window=window)
        for kind in ("confidence", "entropy"):
            if kind in self.dst:
                self.dst[kind].write(getattr(block, kind), 1, window=window)
        if "probs" in self.dst:
            self.dst["probs"].write(block.probs, window=window)

    def close(self, ok: bool) -> None:
        import rasterio.shutil

        for dst in self.dst.values():
            dst.close()
        try:
            if ok:
                for kind, scratch in self._scratch.items():
                    resampling = "MODE" if kind == "classes" else "AVERAGE"
                    options = {"COMPRESS": "DEFLATE", "BLOCKSIZE": 512, "OVERVIEW_RESAMPLING": resampling,
                               "BIGTIFF": "IF_SAFER", **self.opts.creation_options}  # fmt: skip
                    rasterio.shutil.copy(scratch, self._final[kind], driver="COG", **options)
                for kind, tmp in self._final.items():
                    verify_written(tmp, self.paths[kind])
                if self._categories is not None:
                    xml = categories_xml(self.classes.names, self.classes.colors)
                    self._categories.write_text(xml, encoding="utf-8")
                if "png" in self.paths:
                    self._png()
        except BaseException:
            ok = False  # a failed check or copy: no output of this input is renamed into place
            raise
        finally:
            for scratch in self._scratch.values():
                scratch.unlink(missing_ok=True)
            if ok:
                self._stack.close()  # every output complete: rename them all
            else:
                self._stack.__exit__(RuntimeError, RuntimeError("interrupted"), None)  # remove the temporaries

    def _png(self) -> None:
        import rasterio

        from semiland.data.raster import write_png

        with rasterio.open(self._final["classes"]) as src:
            classes = src.read(1)
        write_png(self.paths["png"], self.classes.colorize(np.where(classes == self.nodata, NODATA, classes)))


def verify_written(tmp: Path, final: Path) -> None:
    """GDAL reports a failed flush on close (a full disk, a quota) only on stderr, leaving a file that cannot be
    read: reopen it and check that every block of every band lies whole inside the file (metadata only)."""
    import rasterio

    try:
        size = tmp.stat().st_size
        with rasterio.open(tmp) as src:
            bw, bh = src.block_shapes[0][1], src.block_shapes[0][0]
            nx, ny = -(-src.width // bw), -(-src.height // bh)
            for band in range(1, src.count + 1):
                for y in range(ny):
                    for x in range(nx):
                        offset = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=band)
                        length = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=band)
                        if not offset or not length or int(offset) + int(length) > size:
                            raise OSError(f"block {x},{y} of band {band} is missing or cut short")
    except (OSError, rasterio.errors.RasterioError) as err:
        if shutil.disk_usage(tmp.parent).free < 16 << 20:
            raise disk_full(final) from None
        raise SemilandError(f"writing {final} failed ({str(err).splitlines()[0]}); check the output folder") from None
