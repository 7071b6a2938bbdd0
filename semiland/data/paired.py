"""Paired optical + SAR samples (issue #7): the SAR raster of a sample is read beside its optical image,
checked to lie on the same grid, optionally converted from linear backscatter to dB, and stacked after the
optical bands, so the whole pipeline (crops, normalisation, sliding-window evaluation, prediction) sees one
(C_opt + C_sar, H, W) array. Methods that treat the modalities apart (DLLR) split it with
`SarOptions`'s band counts; single-network methods on the stack are the early-fusion baseline.

Validity: a pixel is valid where both modalities are (SAR chips often carry NaN). Grids must agree: same
size, and same CRS and transform where both files are georeferenced; otherwise the sample is refused with
both files named, or, with `data.resample_sar=true`, the SAR raster is resampled (bilinear) onto the optical grid.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semiland.data.raster import Box, Raster, opened, read_image, window_covering
from semiland.errors import SemilandError

MODALITIES = ("both", "optical", "sar")
SIMULATED_SAR_BANDS = 2  # simulated_sar's "VV" and "VH"


@dataclass(frozen=True)
class SarOptions:
    bands: tuple[int, ...] | None = None  # 1-based selection of the SAR file's bands
    db: bool = False  # the SAR file holds linear backscatter: convert to dB
    resample: bool = False  # resample SAR onto the optical grid instead of refusing a mismatch
    modality: str = "both"  # both | optical | sar (single-modality baselines)
    simulate: bool = False  # derive SAR-like bands from the optical image itself (the Dubai test bed)

    @classmethod
    def from_config(cls, d: Any) -> SarOptions:
        """From a `DataConfig` (training presets and prediction read the same keys)."""
        bands = tuple(d.sar_bands) if d.sar_bands else None
        return cls(bands, d.sar_db, d.resample_sar, d.modality, d.simulate_sar)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise SemilandError(f"data.modality must be one of {', '.join(MODALITIES)}, got '{self.modality}'")


def to_db(data: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear backscatter → 10 · log10; non-positive values have no dB value and become invalid."""
    positive = (data > 0).all(axis=0)
    out = np.zeros_like(data)
    ok = valid & positive
    out[:, ok] = 10 * np.log10(data[:, ok])
    return out, ok


def grid_difference(
    shape_a: tuple[int, int], profile_a: dict[str, Any], shape_b: tuple[int, int], profile_b: dict[str, Any]
) -> str | None:
    """What keeps raster b ((H, W), its crs / transform profile) off raster a's grid ("size 64x64 px vs 60x60
    px", "CRS …", "origin …, pixel …"), or None when they agree. Where either is not georeferenced, the size is
    all that can be checked. Training (`stack_sar`) and prediction (`PairedReader`) check pairs with it."""
    if shape_a != shape_b:
        return f"size {shape_a[1]}x{shape_a[0]} px vs {shape_b[1]}x{shape_b[0]} px"
    if profile_a.get("crs") is None or profile_b.get("crs") is None:
        return None
    if profile_a["crs"] != profile_b["crs"]:
        return f"CRS {profile_a['crs']} vs {profile_b['crs']}"
    ta, tb = profile_a["transform"], profile_b["transform"]
    if not ta.almost_equals(tb):
        return f"origin ({ta.c:.12g}, {ta.f:.12g}), pixel {ta.a:.12g} vs origin ({tb.c:.12g}, {tb.f:.12g}), pixel {tb.a:.12g}"
    return None


def _pair_keys(files: list[Path]) -> list[str]:
    """File stems less the prefix and suffix they all share: `Bolivia_1_S2Hand`, `Ghana_7_S2Hand` → `Bolivia_1`,
    `Ghana_7`, so an optical and a SAR list that differ only in a sensor tag get the same keys."""
    stems = [f.stem for f in files]
    head = len(os.path.commonprefix(stems))
    rests = [s[head:] for s in stems]
    tail = len(os.path.commonprefix([r[::-1] for r in rests]))
    return [r[: len(r) - tail] for r in rests]


def pair_by_name(optical: list[Path], sar: list[Path], where: str) -> dict[Path, Path]:
    """Each optical raster's SAR partner among `sar` (found in `where`, for the messages): the same stem, or
    the same stem once the part every file of a list shares is set aside (`x_S2Hand` with `x_S1Hand`).
    Never by position alone, which would silently pair two dates of one tile the wrong way round.
    `predict --sar` and the paired presets' unlabeled folders pair with it."""
    if len(sar) != len(optical):
        raise SemilandError(
            f"{len(optical)} optical inputs but {len(sar)} SAR rasters in {where}: give one SAR raster per input"
        )
    if len(optical) == 1:
        return {optical[0]: sar[0]}
    stems = [f.stem for f in optical], [p.stem for p in sar]
    keys = _pair_keys(optical), _pair_keys(sar)
    for own, theirs in (stems, keys):
        by_key = dict(zip(theirs, sar))
        if len(set(own)) == len(optical) and set(own) == set(by_key):
            return {f: by_key[k] for f, k in zip(optical, own)}
    unmatched = set(keys[0]) - set(keys[1])
    lonely = next((f for f, k in zip(optical, keys[0]) if k in unmatched), optical[0])
    raise SemilandError(
        f"no SAR raster named like {lonely.name} among {where} ({sar[0].name}, …): name each pair alike "
        "(the same stem, or stems that differ only in a part every file shares, as x_S2Hand / x_S1Hand)"
    )


def _resample(sar_path: Path, sar: Raster, optical: Raster, optical_path: Path) -> Raster:
    from rasterio.warp import Resampling, reproject

    if optical.profile.get("crs") is None or sar.profile.get("crs") is None:
        raise SemilandError(f"cannot resample {sar_path} onto {optical_path}: both must be georeferenced")
    h, w = optical.shape
    out = np.full((sar.data.shape[0], h, w), np.nan, np.float32)
    src = np.where(sar.valid[None], sar.data, np.nan).astype(np.float32)
    for band in range(src.shape[0]):
        reproject(
            src[band], out[band], src_transform=sar.profile["transform"], src_crs=sar.profile["crs"],
            dst_transform=optical.profile["transform"], dst_crs=optical.profile["crs"],
            resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan,
        )  # fmt: skip
    valid = np.isfinite(out).all(axis=0)
    out[:, ~valid] = 0.0
    return Raster(out, valid, optical.profile)


def _same_file_grid(sar_path: Path, optical_path: Path) -> bool:
    """Whether two GDAL rasters share one grid (size, CRS, transform), from their open handles."""
    a, b = opened(sar_path), opened(optical_path)
    shape = (a.height, a.width), (b.height, b.width)
    return grid_difference(shape[0], {"crs": a.crs, "transform": a.transform}, shape[1],
                           {"crs": b.crs, "transform": b.transform}) is None  # fmt: skip


def simulated_sar(optical: Raster, name: str, looks: int = 4) -> Raster:
    """Two SAR-like bands in dB from an optical image alone (never from labels), for a test bed where no real
    SAR exists: "VV" = backscatter from brightness (mean of the bands, so water and shadow are dark), "VH" =
    from local structure (Sobel gradient magnitude: edges and texture such as buildings and trees scatter
    more in cross-polarisation). Both get multiplicative gamma speckle of `looks` looks, seeded by the file
    name (the same image always gets the same speckle), then 10·log10. A stand-in with SAR's statistics,
    not a physical simulation: it shows whether a method can use a second, noisier view of the scene."""
    from scipy import ndimage

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    bright = optical.data.mean(0)
    bright = bright / max(float(np.percentile(bright[optical.valid], 99)) if optical.valid.any() else 1.0, 1e-6)
    structure = np.hypot(ndimage.sobel(bright, 0), ndimage.sobel(bright, 1))
    bands = []
    for linear in (0.05 + bright, 0.02 + 0.5 * structure):
        speckle = rng.gamma(looks, 1.0 / looks, linear.shape)
        bands.append(10 * np.log10(linear * speckle + 1e-4))
    data = np.stack(bands).astype(np.float32)
    data[:, ~optical.valid] = 0.0
    return Raster(data, optical.valid.copy(), optical.profile)


def stack_sar(
    optical: Raster, optical_path: Path, sar_path: Path, opts: SarOptions, window: Box | None = None
) -> Raster:
    """The sample's bands as the pipeline sees them: optical, SAR or both stacked (optical first). `window`:
    `optical` is that window of its file, and the same window of the SAR raster is read; with
    `data.resample_sar`, the window of the SAR raster under the optical window's ground (and two pixels
    around it), resampled onto the optical window's grid."""
    bands = list(opts.bands) if opts.bands else None
    if opts.simulate:
        sar = simulated_sar(optical, optical_path.name)
    elif window is not None and opts.resample and not _same_file_grid(sar_path, optical_path):
        under = window_covering(sar_path, optical.profile, optical.shape)
        if under is None:  # no SAR under this window: nothing valid
            count = len(bands) if bands else opened(sar_path).count
            h, w = optical.shape
            sar = Raster(np.zeros((count, h, w), np.float32), np.zeros((h, w), bool), optical.profile)
        else:
            sar = read_image(sar_path, bands, under)
    else:
        sar = read_image(sar_path, bands, window)
    if difference := grid_difference(optical.shape, optical.profile, sar.shape, sar.profile):
        if not opts.resample:
            raise SemilandError(
                f"optical {optical_path} and SAR {sar_path} are not on the same grid ({difference}); "
                "co-register them, or set data.resample_sar=true to resample the SAR raster"
            )
        sar = _resample(sar_path, sar, optical, optical_path)
    data, valid = to_db(sar.data, sar.valid) if opts.db else (sar.data, sar.valid)
    both_valid = optical.valid & valid  # every modality's baseline trains and scores on the same pixels
    bands = {"both": lambda: np.concatenate([optical.data, data]), "optical": optical.data.copy, "sar": data.copy}
    stacked = bands[opts.modality]()
    stacked[:, ~both_valid] = 0.0
    return Raster(stacked, both_valid, optical.profile)
