"""`semiland bench …`: the benchmark commands' options (the research operations' wing of the command line;
`semiland.cli` adds them as it adds `analysis.cli`'s). Each command's work is imported when it runs."""

from __future__ import annotations

import argparse

from semiland.argtypes import at_least, positive
from semiland.paths import CONFIGS


def cmd_bench_step_cost(args: argparse.Namespace) -> int:
    from semiland.bench.train_speed import run_step_cost

    return run_step_cost(args)


def cmd_bench_train_speed(args: argparse.Namespace) -> int:
    from semiland.bench.train_speed import run_train_speed

    return run_train_speed(args)


def cmd_bench_predict(args: argparse.Namespace) -> int:
    from semiland.bench.predict_speed import run_predict_speed

    return run_predict_speed(args)


def cmd_bench_read_speed(args: argparse.Namespace) -> int:
    from semiland.bench.read_speed import run_read_speed

    return run_read_speed(args)


def cmd_bench_fit_memory(args: argparse.Namespace) -> int:
    from semiland.bench.fit_memory import run_fit_memory

    return run_fit_memory(args)


def cmd_bench_sweep(args: argparse.Namespace) -> int:
    from semiland.bench.sweep.run import run_sweep

    return run_sweep(args)


def cmd_bench_targets(args: argparse.Namespace) -> int:
    from semiland.bench.targets import run_targets

    return run_targets(args)


def cmd_bench_advisor(args: argparse.Namespace) -> int:
    from semiland.bench.advisor_check import run_advisor_check

    return run_advisor_check(args)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    ts = bsub.add_parser("train-speed", help="engine vs plain PyTorch training throughput, side by side")
    ts.add_argument("--arch", default="unet")
    ts.add_argument("--encoder", default="resnet18")
    ts.add_argument("--batch", type=at_least(1), default=8)
    ts.add_argument("--size", type=at_least(32), default=128)
    ts.add_argument("--bands", type=at_least(1), default=3)
    ts.add_argument("--steps", type=at_least(1), default=30, help="timed steps per repeat")
    ts.add_argument("--repeats", type=at_least(1), default=3, help="alternating repeats of each loop")
    ts.add_argument("--device", default="auto", help="cpu | cuda | auto")
    ts.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"],
                    help="both loops (train.precision; the plain loop autocasts by hand)")  # fmt: skip
    ts.add_argument("--json", help="also write the figures to this JSON file")
    ts.set_defaults(func=cmd_bench_train_speed)
    rs = bsub.add_parser("read-speed", help="training crops read by window vs cut from images held in memory")
    rs.add_argument("--size", type=at_least(256), default=20_000, help="side of the one large raster (px)")
    rs.add_argument("--files", type=at_least(1), default=2_000, help="number of small chips")
    rs.add_argument("--chip", type=at_least(32), default=256, help="side of each chip (px)")
    rs.add_argument("--crop", type=at_least(8), default=64, help="crop side (data.crop_size)")
    rs.add_argument("--batch", type=at_least(1), default=8, help="crops per batch")
    rs.add_argument("--batches", type=at_least(1), default=100, help="timed batches per measurement")
    rs.add_argument("--workers", type=at_least(0), default=2, help="loader processes, measured beside 0")
    rs.add_argument("--train-steps", type=at_least(0), default=0,
                    help="also time this many training steps fed each way (0: off)")  # fmt: skip
    rs.add_argument("--train-config", help="the config whose model those steps train (default: the demo's)")
    rs.add_argument("--workdir", help="keep the generated rasters here and reuse them (default: a temporary folder)")
    rs.add_argument("--json", help="also write the figures to this JSON file")
    rs.set_defaults(func=cmd_bench_read_speed)
    fm = bsub.add_parser("fit-memory", help="peak memory of a fit over 2 000² + 1 GB vs 20 000² + 10 GB of rasters")
    fm.add_argument("--steps", type=at_least(1), default=20, help="training steps of each fit")
    fm.add_argument("--scale", type=positive, default=1.0, help="× the two datasets' sizes (a quick check: 0.1)")
    fm.add_argument("--unlabeled-side", type=at_least(64), default=8192,
                    help="side of the unlabeled raster copied to make up the gigabytes")  # fmt: skip
    fm.add_argument("--workdir", help="keep the generated datasets here and reuse them (default: a temporary folder)")
    fm.add_argument("--json", help="also write the figures to this JSON file")
    fm.add_argument("overrides", nargs="*", help="section.key=value for both fits (e.g. model.encoder=resnet34)")
    fm.set_defaults(func=cmd_bench_fit_memory)
    sc = bsub.add_parser("step-cost", help="each method's training step vs supervised's, side by side in one process")
    sc.add_argument("--config", default=str(CONFIGS / "dubai" / "sweep.yaml"), help="model, crops, batches, precision")
    sc.add_argument("--methods", default="supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps",
                    help="sweep syntax: name or label=method:key=value …; supervised first")  # fmt: skip
    sc.add_argument("--steps", type=at_least(1), default=10, help="timed steps per method and repeat")
    sc.add_argument("--repeats", type=at_least(1), default=3, help="alternating repeats (median)")
    sc.add_argument("--bands", type=at_least(1), default=3, help="bands when the config has no data.mean")
    sc.add_argument("--json", help="also write the figures to this JSON file")
    sc.add_argument("overrides", nargs="*", help="section.key=value for --config")
    sc.set_defaults(func=cmd_bench_step_cost)
    bt = bsub.add_parser("targets", help="a model's predictions on batches of crops: running vs batch statistics")
    bt.add_argument("--ckpt", required=True, help="a trained checkpoint (e.g. a supervised run's best.ckpt)")
    bt.add_argument("--images", choices=["unlabeled", "val"], default="unlabeled",
                    help="the run's images to draw crops from (they need masks; val when unlabeled have none)")  # fmt: skip
    bt.add_argument("--batches", type=at_least(1), default=20, help="batches of random training crops (default 20)")
    bt.add_argument("--batch-size", type=at_least(1), default=8, help="crops per batch, as data.unlabeled_batch_size")
    bt.add_argument("--seed", type=int, default=123)
    bt.add_argument("--strong", type=float, default=None, metavar="S",
                    help="also score the strong photometric view of strength S (as fixmatch's method.photometric)")  # fmt: skip
    bt.add_argument("--blur-p", type=float, default=0.5, help="blur probability of the strong view (method.blur_p)")
    bt.add_argument("--affine", action="store_true",
                    help="also score S4Net's affine views mapped back, and its consistency term between two")  # fmt: skip
    bt.add_argument("--no-progress", dest="progress", action="store_false")
    bt.set_defaults(func=cmd_bench_targets)
    bp = bsub.add_parser("predict", help="streaming prediction vs a naive sliding window: speed, memory, FLOP/s")
    bp.add_argument("--ckpt", default=None, help="a trained checkpoint (default: random weights of --config's model)")
    bp.add_argument("--config", default=str(CONFIGS / "dubai" / "sweep.yaml"), help="model when no --ckpt")
    bp.add_argument("--bands", type=at_least(1), default=3, help="raster bands when no --ckpt (default 3)")
    bp.add_argument(
        "--naive-size", type=at_least(32), default=2048, help="side of the side-by-side raster (default 2048)"
    )
    bp.add_argument("--size", type=at_least(0), default=0, help="side of a large raster for ours alone, e.g. 20000")
    bp.add_argument("--tile", type=at_least(16), default=None, help="tile size (default: the run's eval_tile)")
    bp.add_argument("--overlap", type=float, default=None, help="tile overlap (default: the run's)")
    bp.add_argument("--batch", type=at_least(1), default=8, help="tiles per forward pass in ours (default 8)")
    bp.add_argument("--repeats", type=at_least(1), default=1, help="alternating timings of both (median)")
    bp.add_argument("--precision", default="32", choices=["32", "bf16", "16"],
                    help="ours only (the naive loop stays float32): bf16 autocast pays on CPUs with AVX512-BF16 / AMX")  # fmt: skip
    bp.add_argument("--workdir", default=None, help="where the test rasters are made (default: the temp folder)")
    bp.add_argument("--json", default=None, help="write the figures to this JSON file")
    bp.add_argument("--markdown", default=None, help="write the table to this Markdown file")
    bp.add_argument("overrides", nargs="*", help="section.key=value for --config")
    bp.set_defaults(func=cmd_bench_predict)
    sw = bsub.add_parser("sweep", help="methods x label budgets x seeds (+ oracle), resumable, with a summary table")
    sw.add_argument("--config", required=True, help="base YAML config (the method is set per run)")
    sw.add_argument("overrides", nargs="*", help="section.key=value applied to every run")
    sw.add_argument("--methods", default="supervised,fixmatch", help="comma-separated method names")
    sw.add_argument("--budget", action="append", metavar='NAME="k=v ..."', help="a named label budget (repeatable)")
    sw.add_argument(
        "--folds",
        metavar="KIND:N[,KIND:N]",
        help="leave-one-tile-out: every region is the test region once (the next one validates), with N labeled "
        "images of one training region (region:N) or drawn across them (random:N), e.g. region:2,random:7; "
        "the summary pools every fold and seed",
    )
    sw.add_argument(
        "--fold-tests",
        metavar="REGION[,REGION]",
        help="with --folds: only the folds that test on these regions, e.g. tile_1,tile_2,tile_3 (a development "
        "subset whose validation tiles choose the settings before every fold runs)",
    )
    sw.add_argument("--seeds", default="0,1,2")
    sw.add_argument("--no-oracle", action="store_true", help="skip the oracle (all training images labeled)")
    sw.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the plain `supervised` cells, where --methods names the supervised run its methods are paired "
        "with (the summary pairs a method with supervised of the same steps and machine, e.g. "
        "sup_long=supervised:train.steps=1400)",
    )
    sw.add_argument(
        "--no-models",
        dest="keep_models",
        action="store_false",
        help="keep metrics only: by default every cell keeps its best model (checkpoints/best.ckpt without the "
        "optimizer state, ~50 MB per network of the Dubai protocol) for `test --on`, `predict` or a later --also-on",
    )
    sw.add_argument(
        "--summary-only",
        action="store_true",
        help="summarise the finished cells, train nothing (safe while the sweep is still running)",
    )
    sw.add_argument(
        "--no-summary",
        action="store_true",
        help="train the cells, write no summary (several processes sharing one sweep folder: a summary costs "
        "~15 s of plots per call, so make it once at the end with --summary-only)",
    )
    sw.add_argument(
        "--also-on",
        action="append",
        default=[],
        metavar="SET|REGIONS",
        help="also evaluate every run on this (as `test --on`), e.g. unlabeled: the images the methods learned "
        "from without labels, where they have masks (repeatable)",
    )
    sw.add_argument(
        "-o", "--out", required=True, help="sweep folder (finished runs in it are not redone; interrupted ones resume)"
    )
    # kept apart in --help: for sweeps that outlive one job or one machine — a cluster job with a wall-time
    # limit, a lent GPU, a sweep continued elsewhere — not needed for a sweep run once on one machine
    lab = sw.add_argument_group(
        "long sweeps across jobs and machines",
        "a sweep of tens of hours: keep its results under version control and stop in time for a job's end",
    )
    lab.add_argument(
        "--mirror",
        metavar="DIR",
        help="copy each finished cell's rows, configs, logs and metrics (no models) to DIR, e.g. a folder under "
        "version control, and count the cells finished there as finished (a sweep continued on a new machine)",
    )
    lab.add_argument(
        "--stop-at",
        type=float,
        metavar="UNIX_TIME",
        help="start no new cell after this time (seconds since the epoch, e.g. $(date -d '+8 min' +%%s)); the "
        "cells already running finish: a machine lent for a fixed time",
    )
    lab.add_argument(
        "--finish-by",
        type=float,
        metavar="UNIX_TIME",
        help="start a cell only when it is expected to end by this time (its method's mean wall time over the "
        "finished CPU cells, with a margin, less what an interrupted cell's last checkpoint holds), else try "
        "the next, shorter one: a job with a wall-time limit (SLURM --time) or a lent machine, no cell cut off at its end",
    )
    sw.set_defaults(func=cmd_bench_sweep)

    ba = bsub.add_parser("advisor", help="the labeling advisor's pick vs every other region, supervised, over seeds")
    ba.add_argument("--config", required=True, help="base YAML config (region split; method set to supervised)")
    ba.add_argument("overrides", nargs="*", help="section.key=value applied to every run")
    ba.add_argument("--test", required=True, help="comma-separated test regions")
    ba.add_argument("--val", default="", help="comma-separated validation regions")
    ba.add_argument("--seeds", default="0,1")
    ba.add_argument("--features", default="auto", help="advisor features: auto | stats | timm:<model>")
    ba.add_argument("--ckpt", default="", help="the advisor estimates classes of mask-less images with this model")
    ba.add_argument("--ignore-masks", action="store_true", help="with --ckpt: the advisor sees no mask at all "
                    "(the realistic case: choosing among unlabeled tiles); results get the suffix -blind")  # fmt: skip
    ba.add_argument("-o", "--out", required=True, help="output folder (finished runs in it are not redone)")
    ba.set_defaults(func=cmd_bench_advisor)
