"""`semiland analyze`, `semiland subsample` and `semiland suggest-split`: dataset analysis before training."""

from __future__ import annotations

import argparse
from pathlib import Path

from semiland.analysis.advisor import describe
from semiland.argtypes import at_least
from semiland.errors import SemilandError
from semiland.io import OutputFolder, plan_output_folder, write_output_folder


def _dataset(args: argparse.Namespace):
    """(DatasetSpec, Split | None) from DATA / --preset, or from a run config (--config) with its split."""
    from semiland.data.prepare import resolve_split
    from semiland.data.presets import build_dataset
    from semiland.data.splits import Split
    from semiland.engine.run_config import load_config

    overrides = [f"data.root={args.data}"] if args.data else []
    if getattr(args, "config", None):
        cfg = load_config(args.config, overrides)
        spec, split = resolve_split(cfg)
        return spec, Split.load(args.split) if getattr(args, "split", None) else split
    preset = args.preset or _guess_preset(args.data)
    cfg = load_config(None, [*overrides, f"data.preset={preset}"])
    spec = build_dataset(cfg.data)
    return spec, Split.load(args.split) if getattr(args, "split", None) else None


def _guess_preset(data: str | None) -> str:
    if not data:
        return "dubai"  # the default data, as for the demo
    root = Path(data)
    if not root.is_dir():
        raise SemilandError(f"data folder {root} not found")
    if (root / "class_colors.csv").is_file():
        return "dubai"
    if (root / "classes.csv").is_file():
        return "folder"
    raise SemilandError(f"cannot tell the layout of {root}: pass --preset (see `semiland datasets`)")


def _regions(text: str | None) -> list[str]:
    return [r for r in (text or "").split(",") if r]


def _options(args: argparse.Namespace):
    from semiland.analysis.run import AnalyzeOptions

    return AnalyzeOptions(
        features=args.features, weights=args.weights, subtile=args.subtile, per_image=args.per_image,
        unit=args.unit, regions=_regions(args.regions), seed=args.seed, progress=not args.no_progress,
        ckpt=args.ckpt, ignore_masks=args.ignore_masks,
    )  # fmt: skip


def cmd_analyze(args: argparse.Namespace) -> int:
    from semiland.analysis.run import analyze

    spec, split = _dataset(args)
    target = _target(args, spec)
    with write_output_folder(target, carry=("cache",)) as out:  # replaces an earlier analysis when this is whole
        result = analyze(spec, split, out, _options(args))
    print(f"features: {result['features_note']}")
    for w in result["warnings"]:
        print(f"warning: {w}")
    for i, c in enumerate(result.get("advisor", {}).get("ranking", [])[:5], 1):
        print(f"label next #{i}: {c['unit']} ({describe(c)})")
    print(f"report: {target.path / 'report.html'}")
    return 0


def cmd_suggest_split(args: argparse.Namespace) -> int:
    from semiland.analysis.split_advice import suggest_split

    spec, _ = _dataset(args)
    target = _target(args, spec)
    with write_output_folder(target, carry=("cache",)) as out:
        result = suggest_split(spec, out, _options(args), args.budget, _regions(args.test), _regions(args.val))
    for i, p in enumerate(result["picks"], 1):
        print(f"pick {i}: {p['unit']} ({describe(p)})")
    c, r = result["conditions"], result["random_baseline"]
    print(
        f"labeled covers target: IoT {c['iot_labeled']:.2f} (random picks: {r['iot_labeled']:.2f}); "
        f"missing classes: {', '.join(c['missing_classes']) or 'none'} (random picks: {r['missing_classes']:.1f})"
    )
    print(f"split file: {target.path / result['split_file']} (train with data.split_mode=file data.split_file=…)")
    return 0


def _target(args: argparse.Namespace, spec, what: str = "output folder") -> OutputFolder:
    """The -o folder, checked: new, or (--overwrite) an earlier output of semiland's holding no input."""
    return plan_output_folder(Path(args.out), args.overwrite, what, [*spec.input_folders(), getattr(args, "ckpt", "")])


def cmd_subsample(args: argparse.Namespace) -> int:
    from semiland.analysis.subsample import paired_output, subsample

    spec, _ = _dataset(args)
    out = Path(args.out)
    target = _target(args, spec, "subsample folder")
    if spec.root.resolve() in target.path.resolve().parents:  # its <region>/images would join the dataset
        raise SemilandError(f"subsample folder {out} lies inside the dataset {spec.root}; choose a folder outside it")
    with write_output_folder(target) as write_dir:  # an earlier subset is replaced only when this one is whole
        s = subsample(spec, args.fraction, write_dir, args.subtile, args.seed, progress=not args.no_progress)
        _copy_class_table(spec, write_dir)
    print(f"kept {s['windows_after']} of {s['windows_before']} sub-tiles from {s['images_kept']} of {s['images']} "
          f"images; class distribution total variation {s['class_total_variation']:.4f}")  # fmt: skip
    if (u := s["unlabeled"])["windows_before"]:
        print(f"unlabeled: kept {u['windows_after']} of {u['windows_before']} sub-tiles from {u['images_kept']} of "
              f"{u['images']} images without masks, in {', '.join(r['folder'] for r in u['regions'].values())}")  # fmt: skip
    preset = "paired" if paired_output(spec) else "folder"
    print(f"dataset: {out} (preset {preset}), summary: {out / 'subsample.json'}")
    return 0


def _copy_class_table(spec, out: Path) -> None:
    """The subset is a `folder` (or `paired`) dataset: write its classes.csv (name,r,g,b), ignored colours included."""
    from semiland.io import atomic_write_text

    c = spec.classes
    rows = list(zip(c.names, c.colors, strict=True))
    if len(c.ignore_colors) == len(c.ignored_names):
        rows += list(zip(c.ignored_names, c.ignore_colors, strict=True))
    atomic_write_text(out / "classes.csv", "name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in rows))
    if c.ignored_names:
        print(f"train on it with data.ignore_classes=[{','.join(c.ignored_names)}]")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", help="dataset folder (default: the Dubai data, as for the demo)")
    p.add_argument("--preset", help="dataset layout (see `semiland datasets`; default: guessed from DATA)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier output of semiland's in -o")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _appearance(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", default="auto", help="auto (ImageNet EfficientNet-Lite0, shipped offline; else stats) | stats | "
                   "timm:<model>")  # fmt: skip
    p.add_argument("--weights", default="", help="local weights file for --features timm:<model>")
    p.add_argument(
        "--subtile", type=at_least(16), default=256, help="sub-tile size in pixels (the unit of the analysis)"
    )
    p.add_argument("--per-image", type=at_least(1), default=16, help="at most this many sub-tiles per image")
    p.add_argument("--unit", default="region", choices=["region", "image"], help="what the advisor ranks")
    p.add_argument("--regions", help="comma-separated regions to analyse (default: all)")
    p.add_argument("--ckpt", default="", help="a trained run's checkpoint: the advisor estimates the classes of "
                   "images without masks from its predictions")  # fmt: skip
    p.add_argument("--ignore-masks", action="store_true", help="with --ckpt: estimate every image's classes, as "
                   "if none had a mask (to check the advisor on labeled data)")  # fmt: skip


def add_parsers(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("analyze", help="dataset representativeness: class shares, appearance maps, IoU / IoT, advice")
    _common(a)
    _appearance(a)
    a.add_argument("--config", help="a run config: analyse its dataset and its split")
    a.add_argument("--split", help="a split file (a run folder's split.json)")
    a.set_defaults(func=cmd_analyze)

    s = sub.add_parser("suggest-split", help="labeling advisor: which regions / images to label for a budget")
    _common(s)
    _appearance(s)
    s.add_argument("--budget", type=at_least(1), required=True, help="how many units (regions or images) to label")
    s.add_argument("--test", help="comma-separated test regions (the target to cover; default: all data)")
    s.add_argument("--val", help="comma-separated validation regions (kept out of the picks)")
    s.set_defaults(func=cmd_suggest_split)

    t = sub.add_parser("subsample", help='MiniFrance "tiny" subset: a fraction of sub-tiles, shares kept')
    _common(t)
    t.add_argument("--fraction", type=float, required=True, help="share of sub-tiles to keep, in (0, 1]")
    t.add_argument("--subtile", type=at_least(16), default=256)
    t.set_defaults(func=cmd_subsample)
