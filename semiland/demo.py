"""`semiland demo`: the end-to-end run on the default data (Dubai aerial imagery, else synthetic scenes).

Trains each demo run on the same region split and budget, tests it on the held-out tiles, prints a
metrics table and writes `report.html` (metrics, per-class IoU, training curves, panels, confusion).
"""

from __future__ import annotations

import time
from pathlib import Path

from semiland.data.presets.dubai import default_root
from semiland.engine.metrics import format_table
from semiland.engine.run_config import load_config
from semiland.engine.run_folder import best_validation
from semiland.engine.runner import fit
from semiland.errors import SemilandError
from semiland.io import plan_output_folder, write_output_folder
from semiland.paths import CONFIGS
from semiland.report.run_report import build_run_report, evaluate_run

# The semi-supervised method the demo shows beside the baseline (docs/benchmarks.md, "Semi-supervised learning:
# leave-one-tile-out"): FixMatch with its defaults (top-q targets from an EMA teacher after a burn-in, aligned to
# the labeled class shares), chosen on the fold protocol's validation tiles, never on a test tile; both runs
# train the demo config's 1400 steps (FixMatch's step costs ~2× supervised's: both in 9½ minutes on 2 CPU
# cores in float32).
DEMO_SSL = "fixmatch"
# (label, method overrides), trained in this order on the same split, budget and steps.
DEMO_RUNS: list[tuple[str, list[str]]] = [
    ("supervised", ["method.name=supervised"]),
    (DEMO_SSL, [f"method.name={DEMO_SSL}"]),
]

# What one split can and cannot show, said wherever the demo's comparison is (its last lines, its report).
DUBAI_SPLIT = (
    "This split is one cell of the leave-one-tile-out protocol (region2-on-tile_3, seed 0: 2 labeled images of "
    "tile 5, validation tile 4, test tile 3); one test tile's difference is within its noise, so the evidence is "
    "the protocol's 16 pairs per label budget (docs/benchmarks.md)."
)


def _looks_like_dubai(root: Path) -> bool:
    return (root / "class_colors.csv").is_file() and any(root.glob("tile_*/images"))


def run_demo(data: str | None, out: str, overwrite: bool, steps: int | None, device: list[str] | None = None) -> int:
    """The demo into `out`; `device`: its train.* overrides (`--device`, argtypes.device_overrides)."""
    root = Path(data) if data else default_root()
    if _looks_like_dubai(root):
        config, base, closing = CONFIGS / "dubai" / "demo.yaml", [f"data.root={root.resolve()}"], DUBAI_SPLIT
        intro = f"Dubai aerial imagery from {root.resolve()} (real data, CC0). {DUBAI_SPLIT}"
    elif data:
        raise SemilandError(f"{root} is not a Dubai dataset folder (no class_colors.csv and tile_*/images)")
    else:
        config, base, closing = CONFIGS / "synthetic" / "demo.yaml", [], ""
        intro = f"Dubai data not found at {root}: running on built-in synthetic scenes instead."
    print(intro)
    target = plan_output_folder(Path(out).absolute(), overwrite, "demo folder", [root])
    if steps is not None:
        base.append(f"train.steps={steps}")
    base += device or []
    with write_output_folder(target) as out_dir:  # an earlier demo there is replaced only when this one finished
        report = _demo_runs(config, base, intro, out_dir)
        if closing:
            print(closing)
    print(f"\nreport: {target.path / report.relative_to(out_dir)}")
    return 0


def _demo_runs(config: Path, base: list[str], intro: str, out_dir: Path) -> Path:
    outcomes, prepared = [], None
    for label, extra in DEMO_RUNS:
        cfg = load_config(config, [*base, *extra])
        print(
            f"\n== {label}: {cfg.model.arch}/{cfg.model.encoder}, {cfg.train.steps} steps, crops {cfg.data.crop_size} =="
        )
        started = time.time()
        result = fit(cfg, out_dir / label)
        outcomes.append(evaluate_run(result, label, time.time() - started))
        prepared = result.data
        print(format_table(outcomes[-1].metrics))
    assert prepared is not None
    print(f"\nsplit: {prepared.split.summary()}")
    # the validation mIoU chose each run's checkpoint; the test tile was never looked at in training
    print(f"{'run':<14} {'val mIoU':>9} {'test mIoU':>10} {'test OA':>8} {'time':>7}")
    for o in outcomes:
        val = best_validation(o.log_csv)
        val = float("nan") if val is None else 100 * val
        test, oa = 100 * (o.metrics["mIoU"] or 0), 100 * (o.metrics["OA"] or 0)
        print(f"{o.label:<14} {val:9.2f} {test:10.2f} {oa:8.2f} {o.seconds:6.0f}s")
    return build_run_report(out_dir, "semiland demo", outcomes, prepared, [intro], "semiland demo")
