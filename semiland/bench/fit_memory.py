"""`semiland bench fit-memory`: the peak memory of a `fit` does not grow with the data.

Two generated folder datasets, the same but for their size (3-band uint8 GeoTIFFs, deflate, tiled):
  small: one 2 000² px labeled raster + 1 GB of unlabeled rasters;
  large: one 20 000² px labeled raster + 10 GB of unlabeled rasters (`--scale` × these sizes);
each with small validation and test images. The unlabeled gigabytes are copies of one 8 192² px raster (201 MB
decoded, `--unlabeled-side`; the copies are separate files, read and indexed as any others). The same short FixMatch `fit`
(`data.cache=false`: training crops read by window) runs on each in its own process; reported: each fit's
peak resident memory (the kernel's VmHWM), the ratio large / small (goal: within 10 %), and its duration.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from semiland.bench.fixtures import make_raster, work_folder
from semiland.console import info
from semiland.engine.precision import machine
from semiland.errors import SemilandError
from semiland.io import atomic_write_json

CLASSES = "name,r,g,b\nbare,200,180,120\nbuilt,200,40,40\nwater,40,80,200\n"

FIT = """
import sys
from semiland.cli import main
code = main(sys.argv[1:])
print("peak_kb", open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
sys.exit(code)
"""


def labeled_raster(folder: Path, side: int) -> None:
    """images/scene.tif (make_raster's fields + noise) and masks/scene.tif (3 classes from its first band)."""
    import rasterio
    from rasterio.windows import Window

    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    with rasterio.open(make_raster(folder / "images" / "scene.tif", side)) as src:
        profile = {**src.profile, "count": 1}
        with rasterio.open(folder / "masks" / "scene.tif", "w", **profile) as dst:
            for y0 in range(0, side, 1024):
                window = Window(0, y0, side, min(1024, side - y0))
                band = src.read(1, window=window)
                dst.write(np.digitize(band, [110, 150]).astype(np.uint8), 1, window=window)


def make_dataset(root: Path, labeled_side: int, unlabeled_gb: float, source: Path, source_side: int) -> float:
    """The folder dataset; returns the unlabeled gigabytes (decoded) it holds."""
    if (root / "done").is_file():
        return float((root / "done").read_text())
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.csv").write_text(CLASSES)
    info(f"writing {root}: a {labeled_side:,}² labeled raster and {unlabeled_gb:g} GB of unlabeled rasters")
    labeled_raster(root / "a_labeled", labeled_side)
    for name in ("b_val", "c_test"):
        labeled_raster(root / name, 512)
    (root / "unlabeled").mkdir(exist_ok=True)
    per_file = source_side**2 * 3 / 1e9
    copies = max(1, round(unlabeled_gb / per_file))
    for k in range(copies):
        shutil.copyfile(source, root / "unlabeled" / f"scene_{k:03d}.tif")
    (root / "done").write_text(str(copies * per_file))
    return copies * per_file


def fit_peak(root: Path, run: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        "fit", "--config", "folder/unet", f"data.root={root}", f"data.unlabeled_dirs=[{root / 'unlabeled'}]",
        "data.labeled=[a_labeled]", "data.val=[b_val]", "data.test=[c_test]", "data.cache=false",
        "method.name=fixmatch", f"train.steps={args.steps}", f"train.val_every={args.steps}", "data.crop_size=64",
        "data.batch_size=8", "data.unlabeled_batch_size=8", "data.eval_tile=256", *args.overrides,
        "-o", str(run), "-q",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FIT, *command], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SemilandError(f"the fit on {root} failed: {last}")
    peak_kb = int(done.stdout.split("peak_kb")[-1].split()[0])
    return {"peak_rss_gb": peak_kb * 1024 / 1e9, "seconds": time.perf_counter() - started}


def run_fit_memory(args: argparse.Namespace) -> int:
    with work_folder(args.workdir, "semiland-fitmem-") as work:
        source = work / f"unlabeled_{args.unlabeled_side}.tif"
        if not source.is_file():
            make_raster(source, args.unlabeled_side, seed=1)
        result: dict[str, Any] = {"machine": machine(), "steps": args.steps}
        for name, side, gb in (("small", 2_000, 1.0), ("large", 20_000, 10.0)):
            side, gb = round(side * args.scale), gb * args.scale
            root = work / f"{name}-{side}-{gb:g}-{args.unlabeled_side}"
            unlabeled = make_dataset(root, side, gb, source, args.unlabeled_side)
            with tempfile.TemporaryDirectory(prefix=f"run-{name}-", dir=work) as runs:  # only the fit's own run
                figures = fit_peak(root, Path(runs) / "run", args)
            result[name] = {"labeled_side": side, "unlabeled_gb": unlabeled, **figures}
            info(
                f"{name}: {side:,}² labeled + {unlabeled:.1f} GB unlabeled: peak {figures['peak_rss_gb']:.2f} GB, "
                f"{figures['seconds']:.0f} s"
            )
        result["ratio"] = result["large"]["peak_rss_gb"] / result["small"]["peak_rss_gb"]
        info(f"peak memory large / small: {result['ratio']:.3f} (goal: within 10 %)")
    if args.json:
        atomic_write_json(args.json, result)
    return 0
