"""The `semiland` command line: each subcommand parses its arguments and calls the library.

Errors the user can fix (`SemilandError`) print one line, `semiland: error: …`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from semiland import console
from semiland.analysis import cli as analysis_cli
from semiland.argtypes import Parser, at_least, device_overrides, key_value
from semiland.bench import cli as bench_cli
from semiland.engine.run_folder import RunFolder
from semiland.errors import Interrupted, SemilandError, one_line


def _run_dir(args: argparse.Namespace, stem: str) -> Path:
    if args.out:
        return Path(args.out).absolute()  # not resolved: an -o that is a link is refused, never followed to replace
    return (Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}").absolute()


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device_overrides, default=None, metavar="DEVICE",
                        help="auto, cpu, cuda or cuda:N (as train.accelerator / train.devices)")  # fmt: skip


def _device_into_overrides(args: argparse.Namespace) -> None:
    """--device becomes its train.* overrides; given together with them, it is refused (which would win?)."""
    if args.device is None:
        return
    given = [o for o in args.overrides or [] if o.split("=")[0].strip() in ("train.accelerator", "train.devices")]
    if given:
        raise SemilandError(f"--device and {given[0]} both choose the device; give one of them")
    args.overrides = [*(args.overrides or []), *args.device]


def cmd_fit(args: argparse.Namespace) -> int:
    from semiland.api import fit, report_run
    from semiland.engine.run_config import load_config
    from semiland.engine.runner import env_is_child_process, is_rank_zero, plan_fit, run_fit

    started = time.time()
    command = f"semiland {' '.join(map(shlex.quote, args.argv))}"
    _device_into_overrides(args)
    if args.resume:
        run_dir = Path(args.resume).resolve()
        if not (run := RunFolder(run_dir)).is_run():
            raise SemilandError(f"{run_dir} is not a run folder (no config.yaml); give the -o folder of a fit")
        cfg = load_config(run.config, args.overrides, saved=True)
        result = run_fit(plan_fit(cfg, run_dir, resume=True), run_dir)
        if (done := report_run(result, started, command)) is not None and is_rank_zero():
            print(f"\nrun folder: {result.run_dir}\nreport:     {done[1]}")
        return 0
    if not args.config:
        raise SemilandError("fit needs --config FILE (see configs/) or --resume RUN_DIR")
    run_dir = _run_dir(args, f"{Path(args.config).stem}")
    if args.print_config or env_is_child_process():
        cfg = load_config(args.config, args.overrides)
        if args.print_config:  # the complete resolved config, as a run folder's config.yaml would hold it
            print(cfg.to_yaml(), end="")
            return 0
        # DDP workers re-run this command: they train into the folder rank 0 chose
        report_run(run_fit(plan_fit(cfg, run_dir), Path(os.environ.get(WRITE_DIR_ENV, run_dir))), started, command)
        return 0
    run = fit(
        args.config, run_dir, args.overrides, overwrite=args.overwrite, command=command, write_dir_env=WRITE_DIR_ENV
    )
    print(f"\nrun folder: {run.run_dir}\nreport:     {run.report}")
    return 0


WRITE_DIR_ENV = "SEMILAND_WRITE_DIR"  # where rank 0 writes a run (the --overwrite staging folder), for DDP workers


def cmd_test(args: argparse.Namespace) -> int:
    from semiland.api import test
    from semiland.engine.metrics import format_table

    _device_into_overrides(args)
    out = _test_folder(args)
    metrics = test(args.ckpt, out, args.on, args.overrides, overwrite=args.overwrite)  # replaces only when whole
    print(format_table(metrics))
    for head, m in metrics.get("heads", {}).items():  # a method's parts scored alone (DLLR: each modality)
        print(
            f"{head} alone: mIoU {100 * m['mIoU']:.2f}, "
            + ", ".join(f"{c} {100 * v['IoU']:.1f}" for c, v in m["per_class"].items() if v["IoU"] is not None)
        )
    print(f"\nmetrics: {out / 'metrics.json'}\nconfusion matrix: {out / 'confusion_matrix.png'}")
    return 0


def _test_folder(args: argparse.Namespace) -> Path:
    """-o, else the run's own test/ (test-on-SET/) when the checkpoint lies in a run folder's checkpoints/."""
    if args.out:
        return Path(args.out)
    run = RunFolder.of_checkpoint(args.ckpt)
    if run is None:
        raise SemilandError(f"{args.ckpt} is not in a run folder's checkpoints/: give the output folder with -o")
    return run.evaluation(args.on)


# What an interrupted command leaves behind and how to go on, per command.
INTERRUPTED = {
    "fit": "checkpoints written so far are intact; resume with semiland fit --resume RUN",
    "predict": "finished outputs are complete, none is half-written; re-run with --skip-existing to finish",
    "bench": "finished runs are kept; re-run the same command to go on",
}


def cmd_export(args: argparse.Namespace) -> int:
    from semiland.inference.export import export_onnx

    done = export_onnx(args.ckpt, args.out, head=args.head, overwrite=args.overwrite)
    print(
        f"wrote {done['path']}: image (B, {done['bands']}, H, W) raw values, NaN = no data, H and W multiples of "
        f"{done['multiple']} → probabilities (B, {len(done['classes'])}, H, W), classes (B, H, W) uint8 "
        f"[{', '.join(done['classes'])}]; ONNX Runtime matches PyTorch within {done['max_difference']:.1g}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from semiland.inference.predict import PredictOptions, predict_files

    opts = PredictOptions(
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch,
        bands=_band_list(args.bands),
        extras={k for k in ("confidence", "entropy", "probs") if getattr(args, k)},
        png=args.png,
        cog=args.cog,
        tta=args.tta,
        precision=args.precision,
        compile=args.compile,
        device=args.device,
        overwrite=args.overwrite,
        skip_existing=args.skip_existing,
        workers=args.workers,
        sar=args.sar,
        head=args.head,
        creation_options=dict(args.co or []),
        nodata=args.nodata,
    )
    summary = predict_files(args.ckpt, args.inputs, args.out, opts)
    skipped = f", skipped {summary['skipped']} inputs already done" if summary["skipped"] else ""
    rate = summary["pixels"] / max(summary["seconds"], 1e-9)
    print(
        f"wrote {len(summary['written'])} files to {args.out}{skipped} "
        f"({summary['pixels'] / 1e6:.1f} Mpx in {summary['seconds']:.1f} s, {rate / 1e6:.2f} Mpx/s)"
    )
    return 0


def _band_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise SemilandError(f"--bands must be 1-based band numbers like 4,3,2, got '{text}'") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from semiland.demo import run_demo

    return run_demo(args.data, str(_run_dir(args, "demo")), args.overwrite, args.steps, args.device)


def cmd_self_train(args: argparse.Namespace) -> int:
    from semiland.selftrain import run_self_training

    _device_into_overrides(args)
    return run_self_training(args.config, args.overrides, args.out, args.overwrite)


def cmd_methods(args: argparse.Namespace) -> int:
    from semiland.methods import METHODS, describe, describe_config, method_class

    if args.name:  # one method: its paper, its symbols and every key with its default and range
        print(describe_config(method_class(args.name)))
        return 0
    for name, cls in METHODS.items():
        print(f"{name:<14} {describe(cls)}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from semiland.data.presets import PRESETS

    for name, preset in PRESETS.items():
        print(f"{name:<14} {preset.description}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from semiland.models import MODELS

    for name, entry in MODELS.items():
        print(f"{name:<14} {entry.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from semiland.version import __version__

    p = Parser(prog="semiland", description="semi-supervised segmentation of remote-sensing imagery")
    p.add_argument("--version", action="version", version=f"semiland {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train and evaluate on the default data (Dubai, else synthetic); write a report")
    d.add_argument("--data", help="dataset folder (default: $SEMILAND_DATA, else ../shared/data/dubai_aerial)")
    d.add_argument("-o", "--out", help="output folder (default runs/demo-<time>)")
    d.add_argument(
        "--steps", type=at_least(1), default=None, help="training steps per run (default: the demo config's)"
    )
    d.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    _add_device(d)
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("fit", help="train a method from a YAML config")
    f.add_argument("--config", help="YAML config (see configs/)")
    f.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.steps=200")
    f.add_argument("-o", "--out", help="run folder (default runs/<config>-<time>)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    f.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    f.add_argument(
        "--print-config", action="store_true", help="print the complete resolved config (file + overrides) and exit"
    )
    _add_device(f)
    f.set_defaults(func=cmd_fit)

    st = sub.add_parser("self-train", help="offline self-training in rounds (teacher → pseudo-labels → student)")
    st.add_argument("--config", required=True, help="YAML config; method.rounds / threshold / top_q / lambda_u apply")
    st.add_argument("overrides", nargs="*", help="section.key=value overrides")
    st.add_argument("-o", "--out", required=True, help="output folder")
    st.add_argument("--overwrite", action="store_true")
    _add_device(st)
    st.set_defaults(func=cmd_self_train)

    t = sub.add_parser("test", help="evaluate a checkpoint on its test images")
    t.add_argument("--ckpt", required=True)
    t.add_argument("overrides", nargs="*", help="section.key=value, e.g. data.root=/moved/data")
    t.add_argument("-o", "--out", help="output folder (default: <run>/test, or <run>/test-on-SET)")
    t.add_argument("--overwrite", action="store_true", help="replace earlier results in the output folder")
    t.add_argument(
        "--on",
        default="test",
        metavar="SET|REGIONS",
        help="what to evaluate: test (default), val, labeled, unlabeled (its images that have masks: how good "
        "pseudo-labels can be) or regions R1,R2 of the dataset",
    )
    _add_device(t)
    t.set_defaults(func=cmd_test)

    pr = sub.add_parser("predict", help="georeferenced class maps for images and rasters of any size")
    pr.add_argument("--ckpt", required=True)
    pr.add_argument("inputs", nargs="+", help="image files or folders")
    pr.add_argument("-o", "--out", required=True, help="output folder")
    pr.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    pr.add_argument("--skip-existing", action="store_true", help="finish only the inputs whose outputs are missing")
    pr.add_argument("--tile", type=at_least(16), default=None, help="sliding-window tile size (default: the run's)")
    pr.add_argument("--overlap", type=float, default=None, help="tile overlap fraction (default: the run's)")
    pr.add_argument("--batch", type=at_least(1), default=8, help="tiles per forward pass (default 8)")
    pr.add_argument("--bands", default=None, help="1-based input bands, e.g. 4,3,2 (default: the run's)")
    pr.add_argument(
        "--confidence", action="store_true", help="also write <stem>_confidence.tif (max probability, 0–1, float32)"
    )
    pr.add_argument("--entropy", action="store_true", help="also write <stem>_entropy.tif (nats, float32)")
    pr.add_argument(
        "--probs", action="store_true", help="also write <stem>_probs.tif (percent per class, uint8, scale 0.01)"
    )
    pr.add_argument("--png", action="store_true", help="also write <stem>_classes.png (images up to 100 Mpx)")
    pr.add_argument(
        "--cog", action="store_true", help="cloud-optimised GeoTIFFs (overviews: MODE for classes, else AVERAGE)"
    )
    pr.add_argument(
        "--co",
        type=key_value,
        action="append",
        metavar="KEY=VALUE",
        help="GDAL creation option of every output, repeatable (GTiff's, or COG's with --cog), e.g. COMPRESS=ZSTD",
    )
    pr.add_argument(
        "--nodata", type=int, default=None, help="the class map's nodata value (default 255; not a class index)"
    )
    pr.add_argument("--tta", action="store_true", help="test-time augmentation: average over the four flips")
    pr.add_argument("--precision", default="32", choices=["32", "bf16", "16"], help="autocast (default 32)")
    pr.add_argument("--compile", action="store_true", help="torch.compile the model (GPU; needs a compiler)")
    pr.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda or cuda:N")
    pr.add_argument("--workers", type=at_least(1), default=1, help="processes sharing the inputs (default 1)")
    pr.add_argument(
        "--sar",
        nargs="+",
        default=None,
        help="SAR rasters / folders, paired with the inputs by name (x.tif with x.tif, or x_S2Hand with x_S1Hand)",
    )
    pr.add_argument(
        "--head",
        default=None,
        help="map with one part of the method alone: optical or sar for dllr (each branch sees its own bands; "
        "`semiland test` scores both)",
    )
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("export", help="a trained model as one ONNX file, normalisation folded in (for deployment)")
    ex.add_argument("--ckpt", required=True)
    ex.add_argument("-o", "--out", required=True, help="the .onnx file to write")
    ex.add_argument("--overwrite", action="store_true", help="replace an ONNX file semiland wrote earlier")
    ex.add_argument("--head", default=None, help="export one part of the method alone (as predict --head)")
    ex.set_defaults(func=cmd_export)

    analysis_cli.add_parsers(sub)
    me = sub.add_parser("methods", help="list registered methods, or one method's keys (semiland methods NAME)")
    me.add_argument("name", nargs="?", help="a method: print its description and its method.* keys with defaults")
    me.set_defaults(func=cmd_methods)
    sub.add_parser("datasets", help="list dataset presets").set_defaults(func=cmd_datasets)
    sub.add_parser("models", help="list model architectures").set_defaults(func=cmd_models)

    bench_cli.add_parsers(sub)
    for command in _commands(p):  # the same two options in every command, after its name or before it
        _add_verbosity(command, argparse.SUPPRESS)
    _add_verbosity(p, None)
    return p


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's parser below `parser` (`fit`, `bench sweep`, …)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                found += [command, *_commands(command)]
    return found


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    """-q / -v; a command's own copy defaults to SUPPRESS so that `semiland -q fit …` is not undone."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", dest="verbosity", const=console.QUIET, default=default,
                       help="no progress and no informational lines: results and errors only")  # fmt: skip
    group.add_argument("-v", "--verbose", action="store_const", dest="verbosity", const=console.VERBOSE,
                       default=default, help="also Lightning's and the libraries' own messages")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    for arg in argv:  # bytes of another encoding (os.fsdecode's surrogates): GDAL, YAML and JSON need UTF-8 paths
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            parser.error(
                f"{arg!r} is not valid UTF-8; rename the file or folder (semiland reads and writes UTF-8 paths)"
            )
    args, extra = parser.parse_known_args(argv)
    # `section.key=value` overrides may also follow the options (`fit --config F -o RUN train.steps=10`)
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*(args.overrides or []), *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv  # the exact command, recorded in reports
    console.set_verbosity(console.NORMAL if args.verbosity is None else args.verbosity)
    received = {"signal": signal.SIGINT}

    def terminated(signum: int, frame: object) -> None:  # what schedulers send: stop as on Ctrl-C
        received["signal"] = signal.SIGTERM
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, terminated) if _main_thread() else None
    try:
        return args.func(args)
    except SemilandError as err:
        print(f"semiland: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `semiland methods | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as err:
        detail = str(err) or INTERRUPTED.get(args.command, "outputs are written whole or not at all")
        name = "terminated (SIGTERM)" if received["signal"] == signal.SIGTERM else "interrupted"
        print(f"semiland: {name}: {one_line(detail)}", file=sys.stderr)
        return 128 + received["signal"]  # 130 for Ctrl-C, 143 for SIGTERM, as shells report them
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
