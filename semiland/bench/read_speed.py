"""`semiland bench read-speed`: training crops read by window from the files vs cut from images held in memory.

Two generated datasets of unlabeled 3-band uint8 GeoTIFFs (deflate): one `--size`² raster (tiled 256², the
layout of a real orthophoto or scene) and `--files` small chips of `--chip`² px. For each, crops of the same
size and the same distribution (corners uniform over the images; `CropStream`, same model input) are drawn
through a `DataLoader`, as a run draws them:
(a) in memory: `data.cache=true`, every image decoded once beforehand (not timed; the 20 000² raster takes
    4.8 GB so), each crop cut from its image;
(b) by window: `data.cache=false`, crops cut several at a time from chunks read by window (`ChunkedCrops`,
    the default where a store reads by window);
(c) by window, one read per crop (the first windowed path: what chunks save).
Reported: crops/s of each with 0 and with `--workers` loader processes, the ratio (b)/(a), the peak
resident memory of each (of this process: (b) and (c) are measured first, before anything is decoded into
memory), and the file index's build time per thousand files (headers only, no cache).
With `--train-steps N`, also what training gets: N timed steps of the model of `--train-config` (default the
demo's, configs/dubai/demo.yaml: U-Net, EfficientNet-Lite0; supervised loss, the engine's precision on this
machine; `train_speed.plain_loop`) fed by (a) and by (b), crops/s of training and their ratio: whether steps
wait on data, which the loader's own rate cannot say (in one process the reads take turns with the forward
passes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from semiland.bench.fixtures import PeakRSS, make_raster, work_folder
from semiland.bench.train_speed import WARMUP, plain_loop
from semiland.config import Config
from semiland.console import info, progress_bar
from semiland.data.classes import ClassTable
from semiland.data.datamodule import CropStream
from semiland.data.index import build_index
from semiland.data.sources import DatasetSpec, SampleRef
from semiland.data.store import SampleStore
from semiland.engine.precision import machine, resolve_precision
from semiland.engine.run_config import load_config
from semiland.errors import SemilandError
from semiland.io import atomic_write_json
from semiland.paths import CONFIGS

CLASSES = ClassTable(names=("a", "b"), colors=((0, 0, 0), (255, 255, 255)))


def make_chips(folder: Path, count: int, side: int) -> list[Path]:
    """`count` side² GeoTIFF chips (smooth fields + noise), reused when already written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"chip_{k:05d}.tif" for k in range(count)]
    missing = [p for p in paths if not p.is_file()]
    with progress_bar(total=len(missing), desc="writing chips", unit="file", disable=len(missing) < 50) as bar:
        for path in missing:
            make_raster(path, side, seed=int(path.stem.split("_")[1]))
            bar.update()
    return paths


def crops_per_second(
    store: SampleStore, ids: list[str], args: argparse.Namespace, workers: int, chunked: bool | None = None
) -> tuple[float, int]:
    """Crops/s through a DataLoader (after one warm-up batch) and the peak resident memory while drawing."""
    stream = CropStream(
        store, ids, args.crop, args.batch * (args.batches + 1), seed=0, labeled=False, batch=args.batch,
        lanes=workers, chunked=chunked,
    )  # fmt: skip
    loader = DataLoader(stream, batch_size=args.batch, num_workers=workers, persistent_workers=False)
    with PeakRSS() as rss:
        batches = iter(loader)
        next(batches)  # workers started, files opened
        started = time.perf_counter()
        count = sum(len(batch["image"]) for batch in batches)
        seconds = time.perf_counter() - started
    return count / seconds, rss.peak


def training_config(args: argparse.Namespace) -> Config | None:
    """The config whose model `--train-steps` trains (`--train-config`, default the demo's; WARMUP more steps,
    its precision resolved for `training_device()`), read once, before the rasters are written; `--train-config`
    alone is refused (it would be ignored)."""
    if not args.train_steps:
        if args.train_config is not None:
            raise SemilandError("--train-config names the model of --train-steps N: add --train-steps (e.g. 30)")
        return None
    path = args.train_config or CONFIGS / "dubai" / "demo.yaml"
    cfg = load_config(path, [f"train.steps={args.train_steps + WARMUP}", "model.encoder_weights=null"])
    cfg.train.precision = resolve_precision(cfg.train.precision, "gpu" if training_device().type == "cuda" else "cpu")
    return cfg


def training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_crops_per_second(
    store: SampleStore, ids: list[str], args: argparse.Namespace, workers: int, cfg: Config
) -> float:
    """Crops/s of `cfg.train.steps` training steps (the first WARMUP untimed) of `cfg`'s model fed by `store`:
    the loader's reads and the steps share this machine's cores, as in a run. The chips carry no masks: every
    pixel is taught class 0 (the loss's value does not change a step's cost)."""
    steps = cfg.train.steps
    stream = CropStream(
        store, ids, args.crop, args.batch * steps, seed=0, labeled=False, batch=args.batch, lanes=workers
    )  # fmt: skip
    loader = DataLoader(stream, batch_size=args.batch, num_workers=workers, persistent_workers=False)
    taught = ({**batch, "mask": torch.zeros(batch["image"].shape[:1] + batch["image"].shape[2:], dtype=torch.long)}
              for batch in loader)  # fmt: skip
    shape = argparse.Namespace(batch=args.batch, bands=3)
    return plain_loop(shape, cfg, CLASSES, taught, training_device())


def measure(name: str, paths: list[Path], args: argparse.Namespace, cfg: Config | None) -> dict[str, Any]:
    """By window first (its peak memory is then its own), then in memory."""
    refs = [SampleRef(f"bench/{p.stem}", p, None, "bench") for p in paths]
    spec = DatasetSpec(name, paths[0].parent, [], CLASSES, unlabeled=refs)
    ids = [r.id for r in refs]
    files = build_index(paths, progress=False)  # as a run has it (prepare_data): no header read per new file
    index = {r.id: files[r.image] for r in refs}
    mean, std = [128.0] * 3, [50.0] * 3
    workers = sorted({0, args.workers})
    windowed = SampleStore(spec, None, mean, std, cache=False, windowed=True, index=index)
    by_window = {w: crops_per_second(windowed, ids, args, w) for w in workers}
    per_crop = {w: crops_per_second(windowed, ids, args, w, chunked=False) for w in workers}
    memory = SampleStore(spec, None, mean, std, cache=True)
    started = time.perf_counter()
    for sample_id in progress_bar(ids, desc=f"{name}: decoding into memory", unit="image", disable=len(ids) < 50):
        memory.raw(sample_id, labeled=False, scaled=True)
    out: dict[str, Any] = {"images": len(paths), "decode_into_memory_s": time.perf_counter() - started}
    for w in workers:
        (win_rate, win_peak), (mem_rate, mem_peak) = by_window[w], crops_per_second(memory, ids, args, w)
        out[f"workers_{w}"] = {
            "in_memory_crops_s": mem_rate, "windowed_crops_s": win_rate, "ratio": win_rate / mem_rate,
            "in_memory_peak_rss_gb": mem_peak / 1e9, "windowed_peak_rss_gb": win_peak / 1e9,
            "windowed_one_read_per_crop_crops_s": per_crop[w][0],
        }  # fmt: skip
        info(
            f"{name}, {w} workers: in memory {mem_rate:,.0f} crops/s (peak {mem_peak / 1e9:.2f} GB), "
            f"by window {win_rate:,.0f} crops/s (peak {win_peak / 1e9:.2f} GB): {100 * win_rate / mem_rate:.0f} %; "
            f"one read per crop {per_crop[w][0]:,.0f} crops/s"
        )
    for w in workers if cfg else ():
        # alternated, twice each, the faster of each kept: drift of the machine hits both sources alike
        rates: dict[str, list[float]] = {"memory": [], "window": []}
        for _ in range(2):
            rates["memory"].append(training_crops_per_second(memory, ids, args, w, cfg))
            rates["window"].append(training_crops_per_second(windowed, ids, args, w, cfg))
        mem_rate, win_rate = max(rates["memory"]), max(rates["window"])
        out[f"workers_{w}"] |= {
            "in_memory_training_crops_s": mem_rate, "windowed_training_crops_s": win_rate,
            "training_ratio": win_rate / mem_rate,
        }  # fmt: skip
        info(
            f"{name}, {w} workers, training ({args.train_steps} steps of {cfg.model.arch}/{cfg.model.encoder}): "
            f"in memory {mem_rate:,.1f} crops/s, by window {win_rate:,.1f} crops/s: {100 * win_rate / mem_rate:.0f} %"
        )
    return out


def run_read_speed(args: argparse.Namespace) -> int:
    cfg = training_config(args)  # a bad --train-config ends here, before any raster is written
    with work_folder(args.workdir, "semiland-read-") as work:
        big = work / f"raster_{args.size}.tif"
        if not big.is_file():
            info(f"writing a {args.size:,}² px raster to {big}")
            make_raster(big, args.size)
        chips = make_chips(work / f"chips_{args.chip}", args.files, args.chip)
        started = time.perf_counter()
        build_index(chips, cache=False, progress=False)
        index_s = time.perf_counter() - started
        info(f"index: {args.files} files in {index_s:.2f} s ({1000 * index_s / args.files:.2f} s per 1000 files)")
        result = {
            "machine": machine(),
            "crop": args.crop, "batch": args.batch, "batches": args.batches, "train_steps": args.train_steps,
            "index_s_per_1000_files": 1000 * index_s / args.files,
            "one_raster": measure(f"one {args.size}² raster", [big], args, cfg),
            "chips": measure(f"{args.files} chips of {args.chip}²", chips, args, cfg),
        }  # fmt: skip
    if args.json:
        atomic_write_json(args.json, result)
    return 0
