"""`semiland predict`: georeferenced class maps for images and rasters of any size.

Every input is streamed strip by strip (`stream.py`), so memory does not grow with raster height. Per
input `<stem>_classes.tif` holds class indices with the input's CRS, transform and nodata, a colour table and
class names (`geotiff.py` says what each output holds, in which units); `--confidence`, `--entropy`, `--probs`
add `<stem>_confidence.tif`, `<stem>_entropy.tif` and `<stem>_probs.tif`; `--png` a colour preview. Outputs
are written under temporary names and renamed when complete, so an interrupted run leaves nothing
half-written; `--skip-existing` then finishes only what is missing.
Inputs are shared across `--workers` processes, or across the ranks of a `torchrun` launch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from semiland.console import progress_bar
from semiland.data.paired import SarOptions, pair_by_name
from semiland.data.raster import IMAGE_SUFFIXES, image_size
from semiland.engine.sliding import at_scale
from semiland.errors import SemilandError
from semiland.inference.geotiff import Outputs, check_creation_options
from semiland.inference.stream import NODATA, PairedReader, RasterReader, SarReader, TilePredictor, stream_blocks
from semiland.io import file_sha256, output_folder, owns_file, record_outputs, recorded_files
from semiland.models.fold import fold_batchnorm

EXTRAS = ("confidence", "entropy", "probs")
GDAL_CACHE_BYTES = 64 * 2**20  # GDAL block cache while streaming a raster (its default: 5 % of RAM)
SAR_BANDS = "the checkpoint's data.sar_bands"  # where a SAR band selection came from, in a band error
PNG_LIMIT = 100_000_000  # pixels: a PNG preview is decoded whole; larger maps are read in GIS from the GeoTIFF


@dataclass
class PredictOptions:
    tile: int | None = None  # default: the run's data.eval_tile
    overlap: float | None = None  # default: the run's data.eval_overlap
    batch_size: int = 8
    bands: list[int] | None = None  # 1-based; default: the run's data.bands
    extras: set[str] = field(default_factory=set)  # confidence, entropy, probs
    png: bool = False
    cog: bool = False
    tta: bool = False
    precision: str = "32"
    compile: bool = False
    device: str = "auto"
    overwrite: bool = False
    skip_existing: bool = False
    workers: int = 1
    sar: list[str] | None = None  # SAR rasters (files or folders), paired with the inputs by name
    head: str | None = None  # one of the method's parts alone (`Method.heads`; DLLR: optical or sar branch)
    creation_options: dict[str, str] = field(default_factory=dict)  # GDAL's, `--co KEY=VALUE` (geotiff.py)
    nodata: int | None = None  # the class map's nodata value; default NODATA (255)


def expand_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():  # its images, not the maps an earlier predict wrote beside them
            ours = recorded_files(item)
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in ours)
        elif item.is_file():
            files.append(item)
        else:
            raise SemilandError(f"input {item} not found")
    if not files:
        raise SemilandError(f"no image files in {', '.join(inputs)}")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise SemilandError(
                f"{stems[f.stem]} and {f} would both write {f.stem}_classes.tif; predict them into different -o"
            )
        stems[f.stem] = f
    return files


def _sar_partners(files: list[Path], sar: list[str] | None) -> dict[Path, Path]:
    """--sar files / folders, paired with the optical inputs by name (`data/paired.py: pair_by_name`)."""
    return pair_by_name(files, expand_inputs(sar), "--sar") if sar else {}


def output_paths(src: Path, out_dir: Path, opts: PredictOptions) -> dict[str, Path]:
    """An input's outputs, named so that none can be taken for the input: `<stem>_classes.tif` (+ its GDAL
    sidecar naming the classes), `<stem>_<extra>.tif`, `<stem>_classes.png`."""
    classes = out_dir / f"{src.stem}_classes.tif"
    paths = {"classes": classes, "categories": classes.with_name(classes.name + ".aux.xml")}
    paths.update({k: out_dir / f"{src.stem}_{k}.tif" for k in EXTRAS if k in opts.extras})
    if opts.png:
        paths["png"] = out_dir / f"{src.stem}_classes.png"
    return paths


def _device(name: str) -> torch.device:
    if name in ("auto", "cuda") and torch.cuda.is_available():  # under torchrun: this rank's own GPU
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SemilandError(f"unknown --device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SemilandError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return device


class Predictor:
    """A trained task (normally a loaded checkpoint) ready to predict files; one per process."""

    def __init__(self, task: Any, cfg: Any, opts: PredictOptions):
        self.opts, self.task, self.cfg = opts, task, cfg
        self.checkpoint: dict[str, str] = {}  # its path and hash, where it was loaded from a file
        self.device = _device(opts.device)
        self.task.to(self.device).eval()
        for net in self.task.method.children():  # prepared for inference in place: batch norm folded, NHWC
            fold_batchnorm(net)
        self.task.to(memory_format=torch.channels_last)  # NHWC weights to match the NHWC tiles
        given = opts.bands is not None  # `bands_from`: where the selection came from, for a band error naming it
        self.bands, self.bands_from = (
            (opts.bands, "--bands") if given else (self.cfg.data.bands, "the checkpoint's data.bands")
        )
        self.in_channels = len(self.cfg.data.mean)
        classes = self.task.classes
        if opts.nodata is not None and not classes.num_classes <= opts.nodata <= NODATA:
            raise SemilandError(
                f"--nodata {opts.nodata} is not a value a class map can hold apart from its classes "
                f"(0–{classes.num_classes - 1}: {', '.join(classes.names)}); choose {classes.num_classes}–255"
            )
        if opts.bands is not None and len(opts.bands) != self.in_channels:
            raise SemilandError(
                f"--bands selects {len(opts.bands)} bands but the checkpoint was trained on {self.in_channels}"
            )
        self.mean = np.asarray(self.cfg.data.mean, np.float32)[:, None, None]
        self.std = np.asarray(self.cfg.data.std, np.float32)[:, None, None]
        self.tile = opts.tile or self.cfg.data.eval_tile
        self.overlap = self.cfg.data.eval_overlap if opts.overlap is None else opts.overlap
        predict = at_scale(self._predict_fn(opts.head), self.task.cfg.data.scale, max(32, self.task.min_size))
        self.tiles = TilePredictor(predict, self.device, opts.precision, opts.tta, opts.compile)

    def _predict_fn(self, head: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """The method's prediction, or that of one of its parts alone (`--head`: a DLLR branch, where one
        modality maps better than the fused pair; benchmarks.md, the `sar` set)."""
        method = self.task.method
        if head is not None and head not in method.heads:
            parts = f"its parts: {', '.join(method.heads)}" if method.heads else "it has no part that predicts alone"
            raise SemilandError(
                f"--head {head}: the checkpoint's method ({method.name}) has no part {head!r} ({parts}); "
                "leave --head out to predict with the whole method"
            )
        return method.predict_fn(head)

    @classmethod
    def from_checkpoint(cls, ckpt: str | Path, opts: PredictOptions) -> Predictor:
        from semiland.engine.runner import load_task

        predictor = cls(*load_task(ckpt), opts)
        predictor.checkpoint = {"SEMILAND_CHECKPOINT": str(Path(ckpt).resolve()),
                                "SEMILAND_CHECKPOINT_SHA256": file_sha256(ckpt)}  # fmt: skip
        return predictor

    def provenance(self, source: Path) -> dict[str, str]:
        """The tags every output of `source` carries: semiland's version, the checkpoint (path and SHA-256),
        its method, classes (index: name) and the input, and when it was made."""
        from semiland.version import __version__

        return {
            "SEMILAND_VERSION": __version__,
            **self.checkpoint,
            "SEMILAND_METHOD": self.task.method.name,
            "SEMILAND_CLASSES": json.dumps(dict(enumerate(self.task.classes.names))),
            "SEMILAND_INPUT": str(Path(source).resolve()),
            "SEMILAND_DATE": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def open(self, path: Path, sar_path: Path | None = None) -> RasterReader | PairedReader:
        d = self.cfg.data
        paired = len(d.channels or []) == 2 or d.simulate_sar or sar_path is not None
        if paired and sar_path is None and not d.simulate_sar:
            raise SemilandError(
                f"the checkpoint was trained on optical + SAR pairs: give the SAR rasters with --sar ({path})"
            )
        reader: RasterReader | PairedReader
        if d.modality == "sar" and not paired:  # a SAR-only model given SAR rasters alone: no optical needed
            bands, what = (self.opts.bands, "--bands") if self.opts.bands is not None else (d.sar_bands, SAR_BANDS)
            reader = SarReader(path, list(bands) if bands else None, d.sar_db, what)
        else:
            reader = RasterReader(path, self.bands, self.bands_from)
        if paired:
            opts = SarOptions.from_config(d)  # as in training (prediction never resamples: PairedReader refuses)
            sar = None if d.simulate_sar else SarReader(sar_path, opts.bands and list(opts.bands), opts.db, SAR_BANDS)  # type: ignore[arg-type]
            reader = PairedReader(reader, sar, opts)
            if sar is not None and opts.modality == "both" and len(d.channels or []) == 2:
                for part, r, want in (("optical", reader.optical, d.channels[0]), ("SAR", sar, d.channels[1])):
                    if r.count != want:
                        reader.close()
                        bands = f"{r.count} band{'s' * (r.count != 1)}"
                        raise SemilandError(
                            f"{part} {r.path} has {bands} but the checkpoint's {part} part has {want} (trained on "
                            f"{d.channels[0]} optical + {d.channels[1]} SAR bands); give the matching {part} raster"
                        )
        if reader.count != self.in_channels:
            chosen = reader.bands if isinstance(reader, RasterReader) else self.bands  # a SAR-only model's: SAR's
            sel = f" (bands {chosen})" if chosen else ""
            reader.close()
            raise SemilandError(
                f"{path} has {reader.count} bands{sel} but the checkpoint was trained on {self.in_channels}; "
                "give an image with matching bands or choose them with --bands"
            )
        if self.opts.png and reader.height * reader.width > PNG_LIMIT:
            reader.close()
            raise SemilandError(
                f"{path} is {reader.width} x {reader.height} px: too large for a --png preview; "
                "drop --png (the GeoTIFF carries the colour table)"
            )
        return reader

    def predict(
        self, path: Path, paths: dict[str, Path], progress: tqdm | None = None, sar: Path | None = None
    ) -> None:
        import rasterio

        # GDAL's block cache defaults to 5 % of RAM (1.2 GB here) and would fill with blocks read once:
        # a few strips' worth is all the streaming needs (it rereads only the overlap rows).
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            self._predict(path, paths, progress, sar)

    def _predict(self, path: Path, paths: dict[str, Path], progress: tqdm | None, sar: Path | None) -> None:
        reader = self.open(path, sar)
        outputs = Outputs(paths, reader, self.task.classes, self.opts, self.provenance(path))
        ok = False
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="semiland-write") as writer:
                queued: list[Future] = []
                blocks = stream_blocks(
                    reader, self.tiles, self.mean, self.std, self.task.classes.num_classes, self.tile,
                    self.overlap, self.opts.batch_size, max(32, self.task.min_size), self.opts.extras,
                )  # fmt: skip
                for block in blocks:
                    queued.append(writer.submit(outputs.write, block))
                    while len(queued) > 2:  # bounded: at most two finished blocks wait for the disk
                        queued.pop(0).result()
                    if progress is not None:
                        progress.update(block.classes.size)
                for f in queued:
                    f.result()
            ok = True
        finally:
            outputs.close(ok)
            reader.close()
        record_outputs(next(iter(paths.values())).parent, list(paths.values()))  # finished: --skip-existing may skip


def plan_outputs(
    files: list[Path], out_dir: Path, opts: PredictOptions, inputs: list[Path] = ()
) -> list[tuple[Path, dict[str, Path]]]:
    """(input, outputs) still to do, checked before anything is written: no output may be an input (`inputs`:
    every file read, SAR included) or be shared by two outputs, and an existing file is replaced only when
    semiland wrote it and --overwrite is given; --skip-existing skips an input whose outputs semiland finished."""
    planned = {f: output_paths(f, out_dir, opts) for f in files}
    read = {Path(i).resolve(): i for i in [*files, *inputs]}
    writer: dict[Path, Path] = {}
    for f, paths in planned.items():
        for p in paths.values():
            if (r := p.resolve()) in read:
                raise SemilandError(f"predicting {f} would write {p}, which is an input; choose an -o folder "
                                    "that holds no input")  # fmt: skip
            if r in writer:
                raise SemilandError(f"{writer[r]} and {f} would both write {p}; predict them into different -o")
            writer[r] = f
    todo = []
    for f, paths in planned.items():
        existing = [p for p in paths.values() if p.exists() or p.is_symlink()]
        if foreign := [p for p in existing if not owns_file(p)]:
            raise SemilandError(f"{foreign[0]} exists and was not written by semiland; choose another -o folder "
                                "(semiland never replaces files it did not write)")  # fmt: skip
        if existing and opts.skip_existing and len(existing) == len(paths):
            continue
        if existing and not opts.overwrite and not opts.skip_existing:
            raise SemilandError(
                f"{existing[0]} already exists; pass --skip-existing to finish only what is missing, "
                "or --overwrite to replace outputs"
            )
        todo.append((f, paths))
    return todo


def _rank_share(items: list[Any]) -> list[Any]:
    """Under torchrun (WORLD_SIZE > 1) each rank takes every WORLD_SIZE-th input."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    return items[rank::world] if world > 1 else items


_WORKER: Predictor | None = None


def _worker_init(ckpt: str, opts: PredictOptions, threads: int) -> None:
    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Predictor.from_checkpoint(ckpt, opts)


def _worker_predict(path: Path, paths: dict[str, Path], sar: Path | None) -> None:
    assert _WORKER is not None
    _WORKER.predict(path, paths, sar=sar)


def predict_files(ckpt: str | Path, inputs: list[str], out_dir: str | Path, opts: PredictOptions) -> dict[str, Any]:
    """Predict every input into `out_dir`; returns a summary (files written, skipped, pixels, seconds)."""
    files = expand_inputs(inputs)
    sars = _sar_partners(files, opts.sar)
    floats = {"float32"} if opts.extras & {"confidence", "entropy"} else set()
    check_creation_options(opts.creation_options, opts.cog, {"uint8"} | floats)  # before any folder or model
    with output_folder(out_dir) as out:
        todo = plan_outputs(files, out, opts, [*sars.values(), Path(ckpt)])
        return _predict_into(ckpt, files, sars, todo, opts)


def _predict_into(
    ckpt: str | Path,
    files: list[Path],
    sars: dict[Path, Path],
    planned: list[tuple[Path, dict[str, Path]]],
    opts: PredictOptions,
) -> dict[str, Any]:
    todo = _rank_share([(f, p, sars.get(f)) for f, p in planned])
    started = time.time()
    pixels = sum(h * w for h, w in (image_size(f) for f, _, _ in todo))
    predictor = Predictor.from_checkpoint(ckpt, opts) if todo else None
    for f, _, sar in progress_bar(todo, desc="checking the inputs", unit="file", disable=len(todo) < 20):
        assert predictor is not None
        predictor.open(f, sar).close()  # bands, pairs, sizes: a bad input is named before any map is written
    if opts.workers > 1 and len(todo) > 1:
        if opts.device.startswith("cuda") and opts.device != "cuda":
            raise SemilandError("--workers shares inputs across processes on one --device; use --device cuda")
        threads = max(1, (os.cpu_count() or 1) // opts.workers)
        ctx = get_context("spawn")  # fresh interpreters: no forked CUDA or OpenMP state
        with ProcessPoolExecutor(opts.workers, ctx, _worker_init, (str(ckpt), opts, threads)) as pool:
            jobs = [pool.submit(_worker_predict, f, paths, sar) for f, paths, sar in todo]
            for job in progress_bar(jobs, desc="predict", unit="file", disable=len(jobs) < 2):
                job.result()
    elif predictor is not None:
        with progress_bar(total=pixels, desc="predict", unit="px", unit_scale=True, disable=pixels < 4_000_000) as bar:
            for f, paths, sar in todo:
                predictor.predict(f, paths, bar, sar=sar)
    written = [p for _, paths, _ in todo for p in paths.values()]
    return {
        "written": written,
        "skipped": len(files) - len(todo),
        "pixels": pixels,
        "seconds": time.time() - started,
    }
