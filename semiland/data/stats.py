"""Per-band normalisation statistics, computed from the training images (never hard-coded)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def band_stats(images: Iterable[tuple[np.ndarray, np.ndarray]], stride: int = 4) -> tuple[list[float], list[float]]:
    """Mean and std per band over valid pixels of (image (C, H, W), valid (H, W)) pairs.

    Every `stride`-th pixel in each direction is enough for stable statistics and 16x cheaper.
    """
    total = sq = None
    count = 0
    for image, valid in images:
        x = image[:, ::stride, ::stride].astype(np.float64)
        v = valid[::stride, ::stride]
        x = x[:, v]  # (C, N)
        total = x.sum(1) if total is None else total + x.sum(1)
        sq = (x**2).sum(1) if sq is None else sq + (x**2).sum(1)
        count += x.shape[1]
    if total is None or count == 0:
        raise ValueError("no valid pixels to compute normalisation statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # a constant band must not divide by zero
    return mean.tolist(), std.tolist()


def normalise(image: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(C, H, W) raw values → float32 per-band z-scores; invalid (nodata) pixels become 0, carrying no signal.

    `mean` / `std` broadcast per band: shape (C, 1, 1).
    """
    out = (image - mean) / std
    out[:, ~valid] = 0.0
    return out.astype(np.float32)


def robust_band_stats(
    images: Iterable[tuple[np.ndarray, np.ndarray]], stride: int = 4, per_image: int = 100_000, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Median and robust spread ((p84 − p16) / 2, the std of a normal) per band over valid pixels: SAR
    backscatter is heavy-tailed (speckle, bright targets), and a few strong scatterers would inflate a std.
    At most `per_image` pixels of every image (after the stride) are kept, at random."""
    rng = np.random.default_rng(seed)
    kept = []
    for image, valid in images:
        x = image[:, ::stride, ::stride][:, valid[::stride, ::stride]]  # (C, N)
        if x.shape[1] > per_image:
            x = x[:, rng.choice(x.shape[1], per_image, replace=False)]
        kept.append(x)
    if not kept or sum(k.shape[1] for k in kept) == 0:
        raise ValueError("no valid pixels to compute normalisation statistics from")
    x = np.concatenate(kept, 1)
    p16, p50, p84 = np.percentile(x, [16, 50, 84], axis=1)
    spread = (p84 - p16) / 2
    return p50.tolist(), np.where(spread < 1e-6, 1.0, spread).tolist()
