"""MiniFrance's "tiny" subsampling (§3.2, Table 4): a fraction of a labeled dataset as sub-tiles.

Every image is cut into a grid of `subtile` windows. Each region keeps `fraction` of its windows (at
least one from every image, so every tile is represented and the regions keep their shares), sampled
uniformly; of `draws` such random draws the one whose class distribution is closest (total variation)
to the full dataset's is kept, so the class balance is preserved too. The result is a new dataset folder
`OUT/<region>/{images,masks}/<stem>_r<row>_c<col>.<ext>` (GeoTIFFs keep their georeferencing; other
formats are written as lossless PNG) with `OUT/subsample.json` holding the distributions before / after.
Optical + SAR pairs keep their SAR: `OUT/<region>/{optical,sar,masks}/` (the `paired` layout), each window
cut from both rasters.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from semiland.analysis.inventory import grid_boxes
from semiland.data.classes import IGNORE_INDEX
from semiland.data.raster import PIL_SUFFIXES, read_mask
from semiland.data.sources import DatasetSpec, SampleRef, load_sample
from semiland.errors import SemilandError
from semiland.io import atomic_path, atomic_write_json

Box = tuple[int, int, int, int]


def window_counts(spec: DatasetSpec, subtile: int, progress: bool = True) -> list[tuple[SampleRef, Box, np.ndarray]]:
    """Every grid window of every labeled image with its class pixel counts (K,)."""
    k = spec.classes.num_classes
    out = []
    for ref in tqdm(spec.samples, desc="count classes", unit="image", disable=not progress):
        mask = load_sample(ref, spec.classes, mask_threshold=spec.mask_threshold).mask
        assert mask is not None
        for r, c, h, w in grid_boxes(*mask.shape, subtile, per_image=10**9):
            m = mask[r : r + h, c : c + w]
            out.append((ref, (r, c, h, w), np.bincount(m[m < k].ravel(), minlength=k)[:k]))
    return out


def choose(
    windows: list[tuple[SampleRef, Box, np.ndarray]], fraction: float, draws: int = 50, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Indices of the kept windows and the total-variation distance of their class distribution to all."""
    if not 0 < fraction <= 1:
        raise SemilandError(f"--fraction must be in (0, 1], got {fraction}")
    by_region: dict[str, list[int]] = defaultdict(list)
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, (ref, _, _) in enumerate(windows):
        by_region[ref.region].append(i)
        by_image[ref.id].append(i)
    counts = np.stack([c for _, _, c in windows]).astype(float)
    full = counts.sum(0) / max(counts.sum(), 1)
    rng = np.random.default_rng(seed)
    best, best_tv = np.zeros(0, int), np.inf
    for _ in range(draws):
        keep = []
        for idx in by_region.values():
            images = {windows[i][0].id for i in idx}
            n = max(len(images), round(fraction * len(idx)))
            first = [int(rng.choice(by_image[im])) for im in sorted(images)]  # one from every tile
            rest = np.setdiff1d(idx, first)
            keep += first + rng.choice(rest, size=min(n - len(first), len(rest)), replace=False).tolist()
        keep_arr = np.sort(np.asarray(keep, int))
        dist = counts[keep_arr].sum(0) / max(counts[keep_arr].sum(), 1)
        tv = 0.5 * float(np.abs(dist - full).sum())
        if tv < best_tv:
            best, best_tv = keep_arr, tv
    return best, best_tv


def _write_crop(src: Path, box: Box, dst_stem: Path, data: np.ndarray | None = None) -> Path:
    """The window `box` of `src` → `dst_stem` + suffix: a GeoTIFF window keeps CRS and transform. `data`
    (H, W) uint8, if given, is written instead of the source's pixels (on the window's grid)."""
    r, c, h, w = box
    if src.suffix.lower() in PIL_SUFFIXES:
        dst = dst_stem.with_suffix(".png")
        with Image.open(src) as im, atomic_path(dst) as tmp:
            (im.crop((c, r, c + w, r + h)) if data is None else Image.fromarray(data)).save(tmp, format="PNG")
        return dst
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    dst = dst_stem.with_suffix(".tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(src) as s:
            win = Window(c, r, w, h)
            profile = {**s.profile, "height": h, "width": w, "transform": s.window_transform(win)}
            profile.pop("blockxsize", None), profile.pop("blockysize", None)
            profile["tiled"] = False
            if data is not None:
                profile.update(count=1, dtype="uint8", nodata=None)
            with atomic_path(dst) as tmp, rasterio.open(tmp, "w", **{**profile, "driver": "GTiff"}) as d:
                d.write(s.read(window=win) if data is None else data[None])
    return dst


def _index_mask(spec: DatasetSpec, ref: SampleRef) -> np.ndarray | None:
    """An index mask as the subset stores it: class k as k, ignored pixels as 255, (H, W) uint8 (of the sample:
    its window, where it is one), because the subset's classes.csv numbers the classes 0..K-1 whatever raw values
    the preset read (Sen1Floods11's −1 / 0 / 1, WHU-OPT-SAR's 0 / 10 / …); None for an RGB mask, whose colours
    classes.csv keeps (its windows are copied)."""
    assert ref.mask is not None
    if read_mask(ref.mask).ndim == 3:
        return None
    mask = load_sample(ref, spec.classes, mask_threshold=spec.mask_threshold).mask
    assert mask is not None
    return np.where(mask == spec.classes.ignore_index, IGNORE_INDEX, mask).astype(np.uint8)


def paired_output(spec: DatasetSpec) -> bool:
    """Whether the subset is written in the paired layout: the samples carry SAR rasters of their own (not
    SAR simulated from the optical image, which the subset's optical images give again)."""
    return spec.sar is not None and not spec.sar.simulate and any(ref.sar is not None for ref in spec.samples)


def subsample(
    spec: DatasetSpec, fraction: float, out: Path, subtile: int = 256, seed: int = 0, progress: bool = True
) -> dict:
    """Write the "tiny" subset of `spec`'s labeled images to `out`; returns (and saves) the summary."""
    windows = window_counts(spec, subtile, progress)
    keep, tv = choose(windows, fraction, seed=seed)
    paired = paired_output(spec)
    decoded: tuple[str, np.ndarray | None] = ("", None)  # the last image's index mask (kept windows come by image)
    for i in tqdm(keep, desc="write sub-tiles", unit="tile", disable=not progress):
        ref, (r0, c0, h, w), _ = windows[i]
        r, c = (r0 + ref.window[0], c0 + ref.window[1]) if ref.window else (r0, c0)  # boxes lie in the sample
        box, name = (r, c, h, w), f"{Path(ref.image).stem}_r{r}_c{c}"
        files = {"optical" if paired else "images": ref.image, "sar": ref.sar if paired else None}
        for folder, path in files.items():
            if path is not None:
                _write_crop(Path(path), box, out / ref.region / folder / name)
        if decoded[0] != ref.id:
            decoded = ref.id, _index_mask(spec, ref)
        crop = None if decoded[1] is None else decoded[1][r0 : r0 + h, c0 : c0 + w]
        assert ref.mask is not None  # labeled samples only
        _write_crop(Path(ref.mask), box, out / ref.region / "masks" / name, crop)
    counts = np.stack([c for _, _, c in windows]).astype(float)
    regions = sorted({w[0].region for w in windows})

    def share(rows: np.ndarray) -> dict[str, float]:
        total = max(counts[rows].sum(), 1)
        return {n: float(v / total) for n, v in zip(spec.classes.names, counts[rows].sum(0), strict=True)}

    def region_share(rows: np.ndarray) -> dict[str, float]:
        names = [windows[i][0].region for i in rows]
        return {r: names.count(r) / max(len(names), 1) for r in regions}

    every = np.arange(len(windows))
    summary = {
        "fraction": fraction,
        "subtile": subtile,
        "seed": seed,
        "windows_before": len(windows),
        "windows_after": int(len(keep)),
        "images": len({w[0].id for w in windows}),
        "images_kept": len({windows[i][0].id for i in keep}),
        "class_share_before": share(every),
        "class_share_after": share(keep),
        "class_total_variation": tv,
        "region_share_before": region_share(every),
        "region_share_after": region_share(keep),
    }
    atomic_write_json(out / "subsample.json", summary)
    return summary
