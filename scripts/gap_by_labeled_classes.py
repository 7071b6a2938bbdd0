"""How much of the leave-one-tile-out gap (oracle − supervised) lies in classes the labeled images barely show, and
how much of each part a method recovers (issue #40, docs/benchmarks.md "What limits it").

A semi-supervised method learns a class only from its labels: its targets are the model's own predictions. Where
the labeled images hold almost none of a class, supervised and the method both miss it, and the oracle's lead on
it is out of any such method's reach. The labeled pixels per class come from training's own pre-flight pass
(`data/preflight.py`) over each cell's `split.json`; the IoUs from the cells' `result.json`. Run (needs the Dubai
data at ../shared/data/dubai_aerial or data.root):

    .venv/bin/python scripts/gap_by_labeled_classes.py SWEEP_DIR [--supervised sup_long] [--oracle oracle_long]
        [--methods fmqa_long] [--budget region2] [--rare 0.01] [--root DUBAI_DIR]

SWEEP_DIR: a sweep's output (or its mirror, benchmarks/dubai-folds). The oracle of a fold is its region2 cell.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semiland.data.preflight import RARE, preflight
from semiland.data.prepare import prepare_data
from semiland.engine.run_config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "dubai" / "demo.yaml"


def labeled_shares(split_file: Path, cache: dict[str, np.ndarray], root: str = "") -> np.ndarray:
    """(K,) share of the split's labeled pixels per class (one pre-flight pass per distinct split)."""
    key = split_file.read_text(encoding="utf-8")
    if key not in cache:
        overrides = ["data.split_mode=file", f"data.split_file={split_file}", *([f"data.root={root}"] if root else [])]
        cfg = load_config(CONFIG, overrides)
        counts = preflight(prepare_data(cfg), None, progress=False).labeled_pixels
        cache[key] = counts / max(1, int(counts.sum()))
    return cache[key]


def lead(result: Path, sup: dict, classes: list[str], rare: np.ndarray) -> np.ndarray:
    """(2,) the cell's lead over supervised in mIoU points: summed over the rare classes, over the others."""
    r = json.loads(result.read_text())
    d = np.array([r[c] - sup[c] for c in classes]) * 100 / len(classes)  # (K,) each class's part of the mIoU
    return np.array([d[rare].sum(), d[~rare].sum()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--supervised", default="sup_long")
    ap.add_argument("--oracle", default="oracle_long")
    ap.add_argument("--methods", default="fmqa_long", help="comma-separated labels")
    ap.add_argument("--budget", default="region2", help="the fold kind: region2, random7, ...")
    ap.add_argument("--rare", type=float, default=RARE, help="a class under this share of the labeled pixels")
    ap.add_argument("--root", default="", help="the Dubai data (default: the preset's, ../shared/data/dubai_aerial)")
    args = ap.parse_args()
    methods = args.methods.split(",")
    cache: dict[str, np.ndarray] = {}
    sums = {m: np.zeros(2) for m in ["gap", *methods]}  # [rare classes, the others], mIoU points
    pairs = 0
    for sup_dir in sorted((args.sweep / args.supervised).glob(f"{args.budget}-on-*/seed*")):
        fold, seed = sup_dir.parent.name, sup_dir.name
        oracle = args.sweep / args.oracle / f"region2-on-{fold.split('-on-')[1]}" / seed / "result.json"
        found = [args.sweep / m / fold / seed / "result.json" for m in methods]
        if not (oracle.is_file() and all(f.is_file() for f in found)):
            continue
        sup = json.loads((sup_dir / "result.json").read_text())
        classes = [k for k in sup if k.startswith("IoU/")]
        rare = labeled_shares(sup_dir / "split.json", cache, args.root) < args.rare  # (K,)

        sums["gap"] += (gap := lead(oracle, sup, classes, rare))
        for m, f in zip(methods, found, strict=True):
            sums[m] += lead(f, sup, classes, rare)
        pairs += 1
        names = [c[4:] for c, r in zip(classes, rare, strict=True) if r]
        print(f"{fold} {seed}: gap {gap.sum():+.2f}, under {args.rare:.0%} of the labeled pixels: {names}")
    if not pairs:
        raise SystemExit(f"no {args.budget} fold with {args.supervised}, {args.oracle} and {methods} cells")
    gap = sums["gap"] / pairs
    print(f"\n{args.budget}, {pairs} pairs: gap {gap.sum():.2f} mIoU points, {gap[0]:.2f} of it ({100 * gap[0] / gap.sum():.0f} %)"
          f" in classes under {args.rare:.0%} of the labeled pixels")  # fmt: skip
    for m in methods:
        lead_m = sums[m] / pairs
        print(f"{m}: {lead_m.sum():+.2f}; in those classes {lead_m[0]:+.2f}, in the others {lead_m[1]:+.2f}"
              f" ({100 * lead_m[1] / gap[1]:.0f} % of their gap {gap[1]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
