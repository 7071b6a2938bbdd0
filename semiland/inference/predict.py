"""`semiland predict`: class maps for image files, GeoTIFF (input georeferencing kept) + PNG colour map.

Whole images are read into memory here; streaming prediction of rasters larger than memory is the
windowed pipeline's job (see docs/design.md, "Inference on large rasters").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from semiland.data.raster import IMAGE_SUFFIXES, read_image, write_class_geotiff, write_png
from semiland.data.stats import normalise
from semiland.engine.runner import device_for_inference, load_task
from semiland.errors import SemilandError
from semiland.io import ensure_writable_dir

NODATA = 255


def expand_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise SemilandError(f"input {item} not found")
    if not files:
        raise SemilandError(f"no image files in {', '.join(inputs)}")
    return files


def predict_files(
    ckpt: str | Path,
    inputs: list[str],
    out_dir: str | Path,
    overwrite: bool = False,
    tile: int | None = None,
    overlap: float | None = None,
) -> list[Path]:
    task, cfg = load_task(ckpt)
    files = expand_inputs(inputs)
    out_dir = ensure_writable_dir(out_dir)
    targets = [(f, out_dir / f"{f.stem}.tif", out_dir / f"{f.stem}.png") for f in files]
    existing = [p for _, tif, png in targets for p in (tif, png) if p.exists()]
    if existing and not overwrite:
        raise SemilandError(f"{existing[0]} already exists; pass --overwrite to replace outputs")
    if tile is not None:
        cfg.data.eval_tile = tile
    if overlap is not None:
        cfg.data.eval_overlap = overlap
    device = device_for_inference()
    task.to(device)
    mean = np.asarray(cfg.data.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(cfg.data.std, dtype=np.float32)[:, None, None]
    colors = list(task.classes.colors)
    written = []
    for path, tif, png in tqdm(targets, desc="predict", unit="image", disable=len(targets) < 2):
        raster = read_image(path, cfg.data.bands)
        if raster.data.shape[0] != len(cfg.data.mean):
            raise SemilandError(
                f"{path} has {raster.data.shape[0]} bands but the checkpoint was trained on {len(cfg.data.mean)}"
                f"{' (bands ' + str(cfg.data.bands) + ')' if cfg.data.bands else ''}; give an image with matching bands"
            )
        image = normalise(raster.data, raster.valid, mean, std)
        with torch.no_grad():
            logits = task.predict_logits(torch.from_numpy(image)[None].to(device))
        classes = logits.argmax(1)[0].cpu().numpy().astype(np.uint8)
        classes[~raster.valid] = NODATA  # nodata in → nodata out
        write_class_geotiff(tif, classes, colors, raster.profile, nodata=NODATA)
        write_png(png, task.classes.colorize(classes))
        written += [tif, png]
    return written
