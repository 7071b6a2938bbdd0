"""Streaming sliding-window prediction of rasters of any size, in bounded memory.

The raster is processed in strips, one row of tiles at a time. With tile size T and stride
S = T · (1 − overlap), tile row r starts at y_r and a (K, T, W) accumulator holds the blended logits of
raster rows [y_r, y_r + T). Once row r is predicted, rows [y_r, y_{r+1}) receive nothing more: they are
normalised, turned into class indices (+ confidence / entropy / probabilities) and handed to the writer,
and the accumulator shifts up by y_{r+1} − y_r. Memory grows with T × raster width, never with height.

Reading the next strip and writing finished rows run in threads (GDAL releases the GIL) while the main
thread runs the batched forward passes. Tiles are blended with `sliding.blend_window`, the window used
in evaluation; since the tile grid is a product of row and column starts, the sum of weights at a pixel
is row_norm[y] · col_norm[x] and needs no (H, W) buffer. Tiles whose pixels are all nodata are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semiland.data.paired import SarOptions, grid_difference, simulated_sar, to_db
from semiland.data.raster import as_float_valid, check_bands, decoded_by_pillow, open_raster, read_image
from semiland.engine.precision import warn_if_emulated
from semiland.engine.sliding import blend_window_1d, ceil_to, class_indices, tile_starts
from semiland.errors import SemilandError
from semiland.methods.perturb import FLIPS

NODATA = 255  # class maps and percent probabilities


@dataclass
class Grid:
    """Tile placement over a raster padded (bottom / right, with nodata) to at least one tile."""

    tile: int
    rows: list[int]  # tile-row starts y_r
    cols: list[int]  # tile-column starts x_c
    height: int  # padded height ≥ tile
    width: int  # padded width ≥ tile

    @classmethod
    def plan(cls, height: int, width: int, tile: int, overlap: float, multiple: int) -> Grid:
        # a tile larger than the raster is clipped to it: padding a small image to a huge tile is pure cost
        tile = max(multiple, ceil_to(min(tile, max(height, width)), multiple))
        if not 0 <= overlap < 1:
            raise SemilandError(f"--overlap must be in [0, 1), got {overlap}")
        stride = max(1, int(tile * (1 - overlap)))
        ph, pw = max(height, tile), max(width, tile)
        return cls(tile, tile_starts(ph, tile, stride), tile_starts(pw, tile, stride), ph, pw)

    def norm(self, starts: list[int], length: int, window: torch.Tensor) -> torch.Tensor:
        """Sum over tiles of the 1-D blend weight at each position: (length,)."""
        total = torch.zeros(length)
        for s in starts:
            total[s : s + self.tile] += window
        return total


class RasterReader:
    """Rows of one image as float32 (C, h, W) + valid (h, W). GDAL formats are read by window; JPEG / PNG
    (which cannot be) are decoded once."""

    def __init__(self, path: Path, bands: list[int] | None, what: str = "--bands"):
        self.path, self.bands = path, bands  # `what`: where `bands` came from, for the error naming it
        self._whole = None
        self._src: Any = None
        if decoded_by_pillow(path):
            self._whole = read_image(path, bands)
            self.count, (self.height, self.width) = self._whole.data.shape[0], self._whole.shape
            self.profile: dict[str, Any] = {}
            return
        if not path.is_file():
            raise SemilandError(f"file {path} not found")
        self._src = open_raster(path)
        check_bands(path, self._src.count, bands, what)
        self.count = len(bands) if bands else self._src.count
        self.height, self.width = self._src.height, self._src.width
        self.profile = {"crs": self._src.crs, "transform": self._src.transform}
        self.nodata = self._src.nodata

    def read(self, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [y0, y1) clipped to the raster; the caller pads."""
        y1 = min(y1, self.height)
        if self._whole is not None:
            return self._whole.data[:, y0:y1].copy(), self._whole.valid[y0:y1]  # a copy: callers may edit it
        from rasterio.errors import RasterioIOError
        from rasterio.windows import Window

        try:
            arr = self._src.read(self.bands, window=Window(0, y0, self.width, y1 - y0))
        except RasterioIOError as err:
            raise SemilandError(f"cannot read rows {y0}–{y1} of {self.path}: {err}") from None
        return as_float_valid(arr, self.nodata)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()


class SarReader(RasterReader):
    """A SAR raster alone, for a SAR-only model (`data.modality=sar`): its bands (`data.sar_bands`) and dB
    conversion (`data.sar_db`) as training read them; validity is the SAR's own."""

    def __init__(self, path: Path, bands: list[int] | None, db: bool, what: str = "--bands"):
        super().__init__(path, bands, what)
        self.db = db

    def read(self, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        data, valid = super().read(y0, y1)
        return to_db(data, valid) if self.db else (data, valid)


SIMULATE_MAX_PX = 64 << 20  # a simulated-SAR raster is read whole (float32: 4 bytes × bands a pixel)


class PairedReader:
    """An optical reader and its SAR partner read row by row and stacked as the training samples were
    (`data/paired.py`: optical first, dB conversion, validity of both, `modality`). Grids must agree:
    prediction does not resample. Simulated SAR (the Dubai test bed) is derived from the whole optical image."""

    def __init__(self, optical: RasterReader, sar: SarReader | None, opts: SarOptions):
        self.optical, self.sar, self.opts = optical, sar, opts
        self.path, self.height, self.width, self.profile = optical.path, optical.height, optical.width, optical.profile
        self._simulated = None
        if opts.simulate:  # from the whole image, as in training (its brightness percentile, its edges)
            whole = optical._whole
            if whole is None:
                if optical.height * optical.width > SIMULATE_MAX_PX:
                    raise SemilandError(
                        f"{optical.path} is {optical.width} x {optical.height} px: simulated SAR is made from the "
                        f"whole image, at most {SIMULATE_MAX_PX >> 20} Mpx; predict it in parts, or train on real SAR"
                    )
                whole = read_image(optical.path, optical.bands)
            self._simulated = simulated_sar(whole, optical.path.name)
            n_sar = self._simulated.data.shape[0]
        else:
            assert sar is not None
            shapes = (optical.height, optical.width), (sar.height, sar.width)
            if difference := grid_difference(shapes[0], optical.profile, shapes[1], sar.profile):
                raise SemilandError(
                    f"optical {optical.path} and SAR {sar.path} are not on the same grid ({difference}); "
                    "co-register them (prediction does not resample)"
                )
            n_sar = sar.count
        self.count = {"both": optical.count + n_sar, "optical": optical.count, "sar": n_sar}[opts.modality]

    def read(self, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        data_o, valid_o = self.optical.read(y0, y1)
        if self._simulated is not None:
            y1 = min(y1, self.height)
            data_s, valid_s = self._simulated.data[:, y0:y1], self._simulated.valid[y0:y1]
        else:
            assert self.sar is not None
            data_s, valid_s = self.sar.read(y0, y1)  # in dB where the SAR reader converts (`SarReader`)
        valid = valid_o & valid_s
        data = {"both": lambda: np.concatenate([data_o, data_s]), "optical": lambda: data_o.copy(), "sar": lambda: data_s.copy()}[self.opts.modality]()  # fmt: skip
        data[:, ~valid] = 0.0
        return data, valid

    def close(self) -> None:
        self.optical.close()
        if self.sar is not None:
            self.sar.close()


class TilePredictor:
    """(N, C, T, T) normalised CPU tiles → (N, K, T, T) float32 CPU logits on the chosen device.

    Channels-last tensors (oneDNN and cuDNN both run convolutions faster in NHWC: about 1.5× for a
    U-Net / ResNet-18 on this project's CPU); on a GPU pinned-memory, non-blocking copies; bf16 / fp16
    autocast and torch.compile as options. `tta` averages the logits of the four flips.
    """

    def __init__(
        self,
        predict: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        precision: str = "32",
        tta: bool = False,
        compile: bool = False,
    ):
        if precision not in ("32", "bf16", "16"):
            raise SemilandError(f"--precision must be 32, bf16 or 16, got '{precision}'")
        self.device, self.tta = device, tta
        self.dtype = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}[precision]
        if precision == "bf16":
            warn_if_emulated("--precision bf16 (use 32)", gpu=device.type == "cuda")
        self.predict = torch.compile(predict) if compile else predict

    @torch.no_grad()
    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            tiles = tiles.pin_memory()
        x = tiles.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        flips = FLIPS if self.tta else FLIPS[:1]
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            logits = sum(self._flipped(x, dims) for dims in flips) / len(flips)
        return logits.float().cpu()

    def _flipped(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        if not dims:
            return self.predict(x).float()
        return self.predict(x.flip(dims)).float().flip(dims)


@dataclass
class Block:
    """Finished rows [y0, y0 + h) of one raster: what the writer receives."""

    y0: int
    classes: np.ndarray  # (h, W) uint8, NODATA where the input is invalid
    confidence: np.ndarray | None = None  # (h, W) float32 max probability, NaN = nodata
    entropy: np.ndarray | None = None  # (h, W) float32 entropy in nats, NaN = nodata
    probs: np.ndarray | None = None  # (K, h, W) uint8 percent, NODATA = nodata


def finish_rows(logits: torch.Tensor, norm: torch.Tensor, valid: np.ndarray, y0: int, extras: set[str]) -> Block:
    """Blended logit sums (K, h, W) / weights (h, W) → class indices and the requested extras.
    `logits` is divided in place: the caller's finished rows, which it discards next."""
    blended = logits.div_(norm)  # (K, h, W)
    classes = class_indices(blended, 0).numpy().astype(np.uint8)
    classes[~valid] = NODATA
    block = Block(y0, classes)
    if extras:
        probs = blended.softmax(0)  # (K, h, W)
        if "confidence" in extras:
            block.confidence = probs.max(0).values.numpy()
            block.confidence[~valid] = np.nan
        if "entropy" in extras:
            block.entropy = -(probs * probs.clamp_min(1e-12).log()).sum(0).numpy()
            block.entropy[~valid] = np.nan
        if "probs" in extras:
            block.probs = (probs * 100).round().numpy().astype(np.uint8)
            block.probs[:, ~valid] = NODATA
    return block


def shift_rows(acc: torch.Tensor, done: int) -> None:
    """Move rows [done, T) of the (K, T, W) accumulator up to [0, T − done) and zero the rest, in place
    (a concatenated copy would hold a second strip-sized tensor). Chunks of at most `done` rows never
    overlap their destination."""
    t = acc.shape[1]
    for i in range(0, max(t - done, 0), done):
        n = min(done, t - done - i)
        acc[:, i : i + n].copy_(acc[:, done + i : done + i + n])
    acc[:, max(t - done, 0) :].zero_()


def stream_blocks(
    reader: RasterReader | PairedReader,
    predictor: TilePredictor,
    mean: np.ndarray,
    std: np.ndarray,
    num_classes: int,
    tile: int,
    overlap: float,
    batch_size: int,
    multiple: int,
    extras: set[str],
) -> Iterator[Block]:
    """Predict `reader`'s raster strip by strip; yields finished row blocks from top to bottom."""
    grid = Grid.plan(reader.height, reader.width, tile, overlap, multiple)
    T, W = grid.tile, grid.width
    window_1d = blend_window_1d(T)  # (T,)
    weight = window_1d[:, None] * window_1d[None, :]  # (T, T): sliding.blend_window(T)
    row_norm, col_norm = grid.norm(grid.rows, grid.height, window_1d), grid.norm(grid.cols, W, window_1d)
    acc = torch.zeros(num_classes, T, W)  # blended logit sums of rows [y_r, y_r + T)

    def load(y0: int) -> tuple[torch.Tensor, np.ndarray]:
        """Normalised (C, T, W) strip and its valid (T, W) mask, padded with nodata past the raster."""
        data, valid = reader.read(y0, y0 + T)  # a fresh float32 array: normalised in place (no temporaries)
        z = data.astype(np.float32, copy=False)
        z -= mean
        z /= std
        z[:, ~valid] = 0.0  # invalid pixels 0, as in training (stats.normalise)
        h, w = valid.shape
        if (h, w) == (T, W):  # a full strip: no padded copy
            return torch.from_numpy(z), valid
        strip = np.zeros((z.shape[0], T, W), np.float32)
        ok = np.zeros((T, W), bool)
        strip[:, :h, :w], ok[:h, :w] = z, valid
        return torch.from_numpy(strip), ok

    with ThreadPoolExecutor(1, thread_name_prefix="semiland-read") as pool:
        pending: Future = pool.submit(load, grid.rows[0])
        for r, y in enumerate(grid.rows):
            strip, ok = pending.result()
            if r + 1 < len(grid.rows):
                pending = pool.submit(load, grid.rows[r + 1])  # read the next strip during this one's compute
            todo = [x for x in grid.cols if ok[:, x : x + T].any()]  # all-nodata tiles are skipped
            for i in range(0, len(todo), batch_size):
                xs = todo[i : i + batch_size]
                logits = predictor(torch.stack([strip[:, :, x : x + T] for x in xs]))  # (n, K, T, T)
                for x, part in zip(xs, logits):
                    acc[:, :, x : x + T] += part * weight
            done = (grid.rows[r + 1] if r + 1 < len(grid.rows) else grid.height) - y  # rows now final
            h = max(0, min(done, reader.height - y))  # the padding below the raster is not output
            if h:
                norm = row_norm[y : y + h, None] * col_norm[None, : reader.width]
                yield finish_rows(acc[:, :h, : reader.width], norm, ok[:h, : reader.width], y, extras)
            shift_rows(acc, done)
