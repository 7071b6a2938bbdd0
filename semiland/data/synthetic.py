"""Procedural aerial-like scenes with per-region appearance shift (for tests and the offline demo).

Each scene has land as background, smooth water bodies and vegetation patches, straight roads and
rectangular buildings. Every class has a spectral signature per band plus texture; every region applies
its own per-band gain and offset (an "appearance shift" like a different sensor date or city), so region
splits behave like real ones. Scenes are written as GeoTIFFs (UTM 40N, Dubai) with RGB-coded PNG masks in
the folder layout, so the synthetic data goes through exactly the loaders real data does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from semiland.data.classes import RGB

CLASSES: list[tuple[str, RGB]] = [
    ("building", (60, 16, 152)),
    ("land", (132, 41, 246)),
    ("road", (110, 193, 228)),
    ("vegetation", (254, 221, 58)),
    ("water", (226, 169, 41)),
]
# Reflectance-like signatures of the five classes in R, G, B (0..255); extra bands get seeded ones.
RGB_SIGNATURES = np.array([[170, 160, 165], [200, 180, 140], [90, 90, 95], [70, 120, 60], [40, 80, 130]], float)


def class_signatures(bands: int) -> np.ndarray:
    """(K, bands) mean value of every class in every band."""
    rng = np.random.default_rng(1234)
    extra = rng.uniform(30, 220, size=(len(CLASSES), max(0, bands - 3)))
    return np.concatenate([RGB_SIGNATURES, extra], axis=1)[:, :bands] if bands > 3 else RGB_SIGNATURES[:, :bands]


def _smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal((size, size)), sigma)
    return (field - field.mean()) / (field.std() + 1e-8)


def make_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """(H, W) int64 class indices of one scene."""
    mask = np.full((size, size), 1, dtype=np.int64)  # land
    mask[_smooth_field(rng, size, size / 10) > rng.uniform(0.6, 1.2)] = 4  # water
    veg = (_smooth_field(rng, size, size / 25) > rng.uniform(0.7, 1.1)) & (mask != 4)
    mask[veg] = 3
    for _ in range(rng.integers(1, 4)):  # roads: straight horizontal / vertical strips
        width, pos = int(rng.integers(3, 7)), int(rng.integers(0, size - 8))
        if rng.random() < 0.5:
            mask[pos : pos + width, :][mask[pos : pos + width, :] != 4] = 2
        else:
            mask[:, pos : pos + width][mask[:, pos : pos + width] != 4] = 2
    for _ in range(rng.integers(size // 32, size // 12)):  # buildings on dry land only
        h, w = rng.integers(6, 24, size=2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        block = mask[y : y + h, x : x + w]
        if (block == 1).mean() > 0.8:
            block[block == 1] = 0
    return mask


def render(rng: np.random.Generator, mask: np.ndarray, bands: int, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Class layout → (bands, H, W) uint8 image with texture and the region's appearance shift."""
    signatures = class_signatures(bands)  # (K, C)
    image = signatures[mask].transpose(2, 0, 1)  # (C, H, W)
    texture = 12 * _smooth_field(rng, mask.shape[0], 1.5)[None] + 6 * rng.standard_normal(image.shape)
    image = image + texture
    image = image * gain[:, None, None] + offset[:, None, None]
    return np.clip(image, 0, 255).astype(np.uint8)


def region_shift(rng: np.random.Generator, bands: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0.75, 1.25, size=bands), rng.uniform(-25, 25, size=bands)


def generate(root: Path, regions: int, images: int, size: int, bands: int, seed: int = 0) -> Path:
    """Write `regions` × `images` scenes under root/region_<r>/{images,masks}/ (+ classes.csv); atomic."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    root = Path(root)
    if (root / "classes.csv").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        rng = np.random.default_rng(seed)
        colors = np.array([c for _, c in CLASSES], dtype=np.uint8)
        for r in range(regions):
            gain, offset = region_shift(rng, bands)
            (tmp / f"region_{r}" / "images").mkdir(parents=True)
            (tmp / f"region_{r}" / "masks").mkdir(parents=True)
            for i in range(images):
                mask = make_layout(rng, size)
                image = render(rng, mask, bands, gain, offset)
                transform = from_origin(300_000 + 10_000 * r + 1_000 * i, 2_800_000, 0.5, 0.5)
                meta = {"driver": "GTiff", "width": size, "height": size, "count": bands, "dtype": "uint8"}
                with rasterio.open(
                    tmp / f"region_{r}" / "images" / f"scene_{i:03d}.tif",
                    "w",
                    crs="EPSG:32640",
                    transform=transform,
                    **meta,
                ) as dst:
                    dst.write(image)
                Image.fromarray(colors[mask]).save(tmp / f"region_{r}" / "masks" / f"scene_{i:03d}.png")
        rows = "\n".join(f"{n},{c[0]},{c[1]},{c[2]}" for n, c in CLASSES)
        (tmp / "classes.csv").write_text(f"name,r,g,b\n{rows}\n")
        if root.exists():  # a concurrent generator finished first
            shutil.rmtree(tmp)
        else:
            tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
