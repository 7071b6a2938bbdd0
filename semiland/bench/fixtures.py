"""What the speed and memory benchmarks share: generated rasters, a work folder, a process's peak memory."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from semiland.inference.predict import GDAL_CACHE_BYTES


@contextmanager
def work_folder(given: str | None, prefix: str) -> Iterator[Path]:
    """`given` (created, kept: generated data is reused by the next run), else a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(given) if given else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        yield work


class PeakRSS:
    """Peak resident set size (bytes) of this process while the block runs, sampled every 10 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def make_raster(path: Path, size: int, bands: int = 3, seed: int = 0) -> Path:
    """A size × size uint8 GeoTIFF (smooth fields + noise, deflate, tiled), written strip by strip."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.002, 0.02, (bands, 2))
    meta = {"driver": "GTiff", "width": size, "height": size, "count": bands, "dtype": "uint8", "tiled": True}
    meta |= {"compress": "deflate", "BIGTIFF": "IF_SAFER", "crs": "EPSG:32640"}
    meta |= {"transform": from_origin(300000, 2800000, 0.5, 0.5)}
    cols = np.arange(size)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(path, "w", **meta) as dst:
        for y0 in range(0, size, 1024):
            rows = np.arange(y0, min(y0 + 1024, size))[:, None]
            for b in range(bands):
                field = np.sin(rows * freq[b, 0]) * np.cos(cols[None] * freq[b, 1])
                strip = 128 + 80 * field + rng.normal(0, 20, field.shape)
                dst.write(strip.clip(0, 255).astype(np.uint8), b + 1, window=Window(0, y0, size, len(rows)))
    return path
