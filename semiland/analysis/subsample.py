"""MiniFrance's "tiny" subsampling (§3.2, Table 4): a fraction of a labeled dataset as sub-tiles.

Every image is cut into a grid of `subtile` windows. Each region keeps `fraction` of its windows (at
least one from every image, so every tile is represented and the regions keep their shares), sampled
uniformly; of `draws` such random draws the one whose class distribution is closest (total variation)
to the full dataset's is kept, so the class balance is preserved too. The result is a new dataset folder
`OUT/<region>/{images,masks}/<stem>_r<row>_c<col>.<ext>` (GeoTIFFs keep their georeferencing; other
formats are written as lossless PNG) with `OUT/subsample.json` holding the distributions before / after.
Optical + SAR pairs keep their SAR: `OUT/<region>/{optical,sar,masks}/` (the `paired` layout), each window
cut from both rasters.

The images without masks are subsampled too (MiniFrance's tiny split keeps its unlabeled cities): the same
`fraction` of each region's windows, at least one from every image, drawn uniformly (there is no class
distribution to match). They land in region folders without masks/ (`OUT/<region>/images/`; a region that also
has labeled images gets `<region>-unlabeled`), which the `folder` and `paired` presets read as unlabeled images.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from semiland.analysis.inventory import grid_boxes
from semiland.console import progress_bar
from semiland.data.classes import IGNORE_INDEX
from semiland.data.raster import PIL_SUFFIXES, box_window, image_size, read_mask
from semiland.data.sources import DatasetSpec, SampleRef, load_sample
from semiland.data.vector import is_vector
from semiland.errors import SemilandError
from semiland.io import atomic_path, atomic_write_json

Box = tuple[int, int, int, int]


def window_counts(spec: DatasetSpec, subtile: int, progress: bool = True) -> list[tuple[SampleRef, Box, np.ndarray]]:
    """Every grid window of every labeled image with its class pixel counts (K,)."""
    k = spec.classes.num_classes
    out = []
    for ref in progress_bar(spec.samples, desc="count classes", unit="image", disable=not progress):
        mask = load_sample(ref, spec.classes, mask_threshold=spec.mask_threshold, label_field=spec.label_field).mask
        assert mask is not None
        for r, c, h, w in grid_boxes(*mask.shape, subtile, per_image=10**9):
            m = mask[r : r + h, c : c + w]
            out.append((ref, (r, c, h, w), np.bincount(m[m < k].ravel(), minlength=k)[:k]))
    return out


def _groups(refs: list[SampleRef]) -> dict[str, dict[str, list[int]]]:
    """Window indices by region, then by image."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, ref in enumerate(refs):
        groups[ref.region][ref.id].append(i)
    return groups


def _draw(groups: dict[str, dict[str, list[int]]], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """One uniform draw: `fraction` of each region's windows (at least one from every image), sorted indices."""
    keep: list[int] = []
    for by_image in groups.values():
        idx = [i for rows in by_image.values() for i in rows]
        n = max(len(by_image), round(fraction * len(idx)))
        first = [int(rng.choice(by_image[im])) for im in sorted(by_image)]  # one from every tile
        rest = np.setdiff1d(idx, first)
        keep += first + rng.choice(rest, size=min(n - len(first), len(rest)), replace=False).tolist()
    return np.sort(np.asarray(keep, int))


def unlabeled_windows(spec: DatasetSpec, subtile: int) -> list[tuple[SampleRef, Box]]:
    """Every grid window of every image without a mask (its size read from the header, not the pixels)."""
    out = []
    for ref in spec.unlabeled:
        h, w = ref.window[2:] if ref.window else image_size(ref.image)
        out += [(ref, box) for box in grid_boxes(h, w, subtile, per_image=10**9)]
    return out


def choose(
    windows: list[tuple[SampleRef, Box, np.ndarray]], fraction: float, draws: int = 50, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Indices of the kept windows and the total-variation distance of their class distribution to all."""
    if not 0 < fraction <= 1:
        raise SemilandError(f"--fraction must be in (0, 1], got {fraction}")
    groups = _groups([w[0] for w in windows])
    counts = np.stack([c for _, _, c in windows]).astype(float)
    full = counts.sum(0) / max(counts.sum(), 1)
    rng = np.random.default_rng(seed)
    best, best_tv = np.zeros(0, int), np.inf
    for _ in range(draws):
        keep_arr = _draw(groups, fraction, rng)
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

    dst = dst_stem.with_suffix(".tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(src) as s:
            win = box_window(box)
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
    if not is_vector(ref.mask) and read_mask(ref.mask)[0].ndim == 3:
        return None
    mask = load_sample(ref, spec.classes, mask_threshold=spec.mask_threshold, label_field=spec.label_field).mask
    assert mask is not None
    return np.where(mask == spec.classes.ignore_index, IGNORE_INDEX, mask).astype(np.uint8)


def paired_output(spec: DatasetSpec) -> bool:
    """Whether the subset is written in the paired layout: the samples carry SAR rasters of their own (not
    SAR simulated from the optical image, which the subset's optical images give again)."""
    return spec.sar is not None and not spec.sar.simulate and any(ref.sar is not None for ref in spec.samples)


def _write_image_window(ref: SampleRef, box: Box, region_dir: Path, paired: bool) -> tuple[Box, str]:
    """The window `box` (in the sample) of `ref`'s image (and SAR, `paired`) under `region_dir`; returns the box
    in the file and the window's file stem."""
    r0, c0, h, w = box
    r, c = (r0 + ref.window[0], c0 + ref.window[1]) if ref.window else (r0, c0)  # boxes lie in the sample
    name = f"{Path(ref.image).stem}_r{r}_c{c}"
    files = {"optical" if paired else "images": ref.image, "sar": ref.sar if paired else None}
    for folder, path in files.items():
        if path is not None:
            _write_crop(Path(path), (r, c, h, w), region_dir / folder / name)
    return (r, c, h, w), name


def _unlabeled_folder(region: str, labeled: set[str]) -> str:
    """The subset's folder for a region's images without masks: a folder name (data.unlabeled_dirs regions are
    `unlabeled:<name>`), apart from a labeled region's folder, whose images all need masks."""
    name = region.replace(":", "-").replace("/", "-")
    return f"{name}-unlabeled" if name in labeled else name


def _subsample_unlabeled(
    spec: DatasetSpec, fraction: float, out: Path, subtile: int, seed: int, paired: bool, progress: bool
) -> dict:
    """`fraction` of every unlabeled region's windows (one at least from each image), drawn uniformly; what was
    kept, by region, for the summary."""
    windows = unlabeled_windows(spec, subtile)
    if not windows:
        return {"windows_before": 0, "windows_after": 0, "images": 0, "images_kept": 0, "regions": {}}
    keep = _draw(_groups([ref for ref, _ in windows]), fraction, np.random.default_rng(seed))
    labeled, regions = set(spec.regions), {}
    for ref, _ in windows:
        folder = _unlabeled_folder(ref.region, labeled)
        regions.setdefault(ref.region, {"folder": folder, "windows_before": 0, "windows_after": 0})[
            "windows_before"
        ] += 1
    for i in progress_bar(keep, desc="write unlabeled sub-tiles", unit="tile", disable=not progress):
        ref, box = windows[i]
        _write_image_window(ref, box, out / regions[ref.region]["folder"], paired)
        regions[ref.region]["windows_after"] += 1
    return {
        "windows_before": len(windows),
        "windows_after": int(len(keep)),
        "images": len({ref.id for ref, _ in windows}),
        "images_kept": len({windows[i][0].id for i in keep}),
        "regions": regions,
    }


def subsample(
    spec: DatasetSpec, fraction: float, out: Path, subtile: int = 256, seed: int = 0, progress: bool = True
) -> dict:
    """Write the "tiny" subset of `spec`'s labeled images (class shares kept) and of its images without masks
    to `out`; returns (and saves) the summary."""
    windows = window_counts(spec, subtile, progress)
    keep, tv = choose(windows, fraction, seed=seed)
    paired = paired_output(spec)
    decoded: tuple[str, np.ndarray | None] = ("", None)  # the last image's index mask (kept windows come by image)
    for i in progress_bar(keep, desc="write sub-tiles", unit="tile", disable=not progress):
        ref, (r0, c0, h, w), _ = windows[i]
        box, name = _write_image_window(ref, (r0, c0, h, w), out / ref.region, paired)
        if decoded[0] != ref.id:
            decoded = ref.id, _index_mask(spec, ref)
        crop = None if decoded[1] is None else decoded[1][r0 : r0 + h, c0 : c0 + w]
        assert ref.mask is not None  # labeled samples only
        _write_crop(Path(ref.mask), box, out / ref.region / "masks" / name, crop)
    unlabeled = _subsample_unlabeled(spec, fraction, out, subtile, seed, paired, progress)
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
        "unlabeled": unlabeled,
    }
    atomic_write_json(out / "subsample.json", summary)
    return summary
