"""`semiland bench predict`: our streaming prediction vs a naive sliding window, side by side.

On one model, raster, tile size and overlap, in one process:
(a) ours: `semiland predict`'s pipeline (strips, batched channels-last forward passes, reading and writing
    in threads, bounded memory);
(b) naive: read the whole raster into memory, predict one tile at a time into full-size logit buffers
    (the in-memory `sliding_window_logits` with batch 1), argmax, write.
Both write the same class GeoTIFF. Reported: pixels/s of each and the ratio, the peak resident memory
during each (sampled from /proc every 10 ms), and our pixels/s as a fraction of the machine's limit:
FLOPs per output pixel (the model's FLOPs per tile, counted by torch's FlopCounterMode, × tiles ÷ pixels)
× pixels/s ÷ the machine's fp32 matmul rate (a measured 2048² GEMM, the attainable peak).
Then ours alone on the large raster (`--size`, e.g. 20 000 × 20 000), which the naive one cannot hold.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semiland.bench.fixtures import PeakRSS, make_raster
from semiland.data.classes import ClassTable
from semiland.data.raster import read_image, write_class_geotiff
from semiland.data.stats import normalise
from semiland.engine.precision import machine
from semiland.engine.run_config import load_config
from semiland.engine.runner import build_task, load_task
from semiland.engine.sliding import at_scale, ceil_to, class_indices, sliding_window_logits
from semiland.inference.predict import PredictOptions, Predictor
from semiland.inference.stream import NODATA, Grid
from semiland.io import atomic_write_json, atomic_write_text


def naive_predict(task: Any, cfg: Any, src: Path, dst: Path, tile: int, overlap: float) -> None:
    raster = read_image(src, cfg.data.bands)  # the whole raster, float32
    mean = np.asarray(cfg.data.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.data.std, np.float32)[:, None, None]
    image = torch.from_numpy(normalise(raster.data, raster.valid, mean, std))[None]
    predict = at_scale(task.method.predict, cfg.data.scale)  # a model trained at data.scale, as `predict` runs it
    logits = sliding_window_logits(predict, image, tile, overlap, batch_size=1)  # (1, K, H, W)
    classes = class_indices(logits)[0].numpy().astype(np.uint8)
    classes[~raster.valid] = NODATA
    write_class_geotiff(dst, classes, list(task.classes.colors), raster.profile)


def flops_per_tile(model: torch.nn.Module, bands: int, tile: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, bands, tile, tile))
    return float(counter.get_total_flops())


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GEMM rate (FLOP/s) over `repeats` timings of 4 n×n products, with torch's threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t))
    return best


def _task(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.ckpt:
        return load_task(args.ckpt)
    cfg = load_config(args.config, args.overrides)
    classes = ClassTable(names=tuple(f"class{k}" for k in range(6)), colors=tuple((40 * k, 0, 0) for k in range(6)))
    torch.manual_seed(0)
    cfg.data.mean, cfg.data.std = [128.0] * args.bands, [50.0] * args.bands
    return build_task(cfg, classes, cfg.data.mean, cfg.data.std), cfg


def _timed(fn: Any) -> tuple[float, int]:
    with PeakRSS() as rss:
        started = time.perf_counter()
        fn()
        seconds = time.perf_counter() - started
    return seconds, rss.peak


def run_predict_speed(args: argparse.Namespace) -> int:
    task, cfg = _task(args)
    task.eval()
    bands = len(cfg.data.mean)
    tile = args.tile or cfg.data.eval_tile
    overlap = cfg.data.eval_overlap if args.overlap is None else args.overlap
    opts = PredictOptions(tile=tile, overlap=overlap, batch_size=args.batch, device="cpu", precision=args.precision)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        small = make_raster(work / "side_by_side.tif", args.naive_size, bands)
        naive = copy.deepcopy(task)  # as a plain script holds it: before `Predictor` folds batch norm, NHWC
        ours = Predictor(task, cfg, opts)
        predict_ours = lambda src, dst: ours.predict(src, {"classes": dst})  # noqa: E731
        predict_ours(small, work / "warm.tif")  # warm-up: oneDNN kernels, page cache
        naive_predict(naive, cfg, small, work / "naive.tif", tile, overlap)
        rows = []
        for r in range(args.repeats):  # alternate so drift of the machine hits both
            t_ours, m_ours = _timed(lambda: predict_ours(small, work / "ours.tif"))
            t_naive, m_naive = _timed(lambda: naive_predict(naive, cfg, small, work / "naive.tif", tile, overlap))
            rows.append((t_ours, m_ours, t_naive, m_naive))
            print(f"repeat {r + 1}: ours {t_ours:.1f} s, {m_ours / 2**20:.0f} MiB; naive {t_naive:.1f} s, "
                  f"{m_naive / 2**20:.0f} MiB", flush=True)  # fmt: skip
        agree = _agreement(work / "ours.tif", work / "naive.tif")
        grid = Grid.plan(args.naive_size, args.naive_size, tile, overlap, max(32, task.min_size))
        px = args.naive_size**2
        model_tile = ceil_to(round(grid.tile * cfg.data.scale), 32)  # the tile as the model sees it (data.scale)
        flops_px = flops_per_tile(task.method.model, bands, model_tile) * len(grid.rows) * len(grid.cols) / px
        peak = matmul_peak()
        t_ours, t_naive = (float(np.median([r[i] for r in rows])) for i in (0, 2))
        result: dict[str, Any] = {
            "model": f"{cfg.model.arch}/{cfg.model.encoder} width {cfg.model.width}, scale {cfg.data.scale}",
            "tile": grid.tile,
            "overlap": overlap,
            "batch": args.batch,
            "precision": args.precision,
            "threads": torch.get_num_threads(),
            "side_by_side_px": px,
            "ours_px_per_s": px / t_ours,
            "naive_px_per_s": px / t_naive,
            "ratio": t_naive / t_ours,
            "ours_peak_rss_mib": max(r[1] for r in rows) / 2**20,
            "naive_peak_rss_mib": max(r[3] for r in rows) / 2**20,
            "class_agreement": agree,
            "flops_per_output_px": flops_px,
            "matmul_peak_gflops": peak / 1e9,
            "fraction_of_peak": flops_px * px / t_ours / peak,
            "repeats": rows,
            "machine": machine(),
        }
        if args.size:
            big = make_raster(work / "large.tif", args.size, bands)
            before = PeakRSS()._rss()  # the process before reading a pixel: interpreter, torch, model
            t_big, m_big = _timed(lambda: predict_ours(big, work / "large_classes.tif"))
            result |= {"large_px": args.size**2, "large_seconds": t_big, "large_px_per_s": args.size**2 / t_big}
            result |= {"large_peak_rss_mib": m_big / 2**20, "large_start_rss_mib": before / 2**20}
    print(report(result))
    if args.json:
        atomic_write_json(args.json, result)
    if args.markdown:
        atomic_write_text(args.markdown, report(result) + "\n")
    return 0


def _agreement(a: Path, b: Path) -> float:
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        return float((x.read(1) == y.read(1)).mean())


def report(r: dict[str, Any]) -> str:
    side = int(r["side_by_side_px"] ** 0.5)
    lines = [
        f"model {r['model']}, tile {r['tile']}, overlap {r['overlap']}, batch {r['batch']}, "
        f"ours in {r.get('precision', '32')} (naive in 32), "
        f"{r['threads']} threads; {r['machine']}",
        "",
        "| pipeline | raster | Mpx/s | peak RSS (MiB) |",
        "|---|---|---|---|",
        f"| naive (whole raster in memory, one tile at a time) | {side}² | {r['naive_px_per_s'] / 1e6:.3f} | "
        f"{r['naive_peak_rss_mib']:.0f} |",
        f"| semiland predict | {side}² | {r['ours_px_per_s'] / 1e6:.3f} | {r['ours_peak_rss_mib']:.0f} |",
    ]
    if "large_px" in r:
        big = int(r["large_px"] ** 0.5)
        lines.append(
            f"| semiland predict | {big}² | {r['large_px_per_s'] / 1e6:.3f} | {r['large_peak_rss_mib']:.0f} "
            f"({r['large_seconds'] / 60:.1f} min; {r['large_start_rss_mib']:.0f} before its first pixel) |"
        )
    lines += [
        "",
        f"ratio ours / naive: {r['ratio']:.2f}× (goal ≥ 2×); identical classes on {100 * r['class_agreement']:.3f} % "
        "of pixels",
        f"{r['flops_per_output_px'] / 1e3:.1f} kFLOP per output pixel × {r['ours_px_per_s'] / 1e6:.3f} Mpx/s = "
        f"{100 * r['fraction_of_peak']:.1f} % of the measured fp32 GEMM rate ({r['matmul_peak_gflops']:.0f} GFLOP/s)",
    ]
    return "\n".join(lines)
