"""Band-agnostic augmentations. Geometric ones act the same on image, mask and valid mask.

Nothing here assumes RGB: flips and 90° rotations are exact for any band count (SAR, 13-band).
Strong / photometric perturbations for semi-supervised methods live with the methods (on tensors).
"""

from __future__ import annotations

import numpy as np


def random_crop_window(rng: np.random.Generator, height: int, width: int, crop: int) -> tuple[int, int]:
    """Top-left corner of a crop×crop window (0 where the image is smaller: it is padded)."""
    top = int(rng.integers(0, height - crop + 1)) if height > crop else 0
    left = int(rng.integers(0, width - crop + 1)) if width > crop else 0
    return top, left


def crop_pad(
    array: np.ndarray, top: int, left: int, crop: int | tuple[int, int], fill: float | int | bool
) -> np.ndarray:
    """Crop the last two axes to crop×crop (or (h, w)) at (top, left), padding with `fill` past the border."""
    out_h, out_w = (crop, crop) if isinstance(crop, int) else crop
    window = array[..., top : top + out_h, left : left + out_w]
    h, w = window.shape[-2:]
    if (h, w) == (out_h, out_w):
        return window
    out = np.full((*array.shape[:-2], out_h, out_w), fill, dtype=array.dtype)
    out[..., :h, :w] = window
    return out


def flip_rot90(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """The same random horizontal / vertical flip and 90° rotation applied to every array's last two axes."""
    hflip, vflip, k = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(0, 4))
    out = []
    for a in arrays:
        if hflip:
            a = a[..., :, ::-1]
        if vflip:
            a = a[..., ::-1, :]
        out.append(np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1))))
    return out


def speckle_db(rng: np.random.Generator, image: np.ndarray, valid: np.ndarray, first: int, looks: float) -> np.ndarray:
    """SAR-safe photometric augmentation: multiplicative speckle of `looks` looks on bands `first:` (in dB).

    Fully developed speckle multiplies intensity by G ~ Gamma(L, 1/L) (mean 1); in dB that is the additive
    10 · log10(G), drawn per pixel and band. image (C, H, W) raw values with SAR bands in dB; invalid
    pixels are left at 0. Optical bands (before `first`) are untouched.
    """
    out = image.copy()
    sar = out[first:]
    g = rng.gamma(looks, 1.0 / looks, size=sar.shape).astype(np.float32)
    sar += np.where(valid, 10.0 * np.log10(np.maximum(g, 1e-6)), 0.0).astype(np.float32)
    return out
