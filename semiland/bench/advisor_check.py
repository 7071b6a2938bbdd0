"""`semiland bench advisor`: does the labeling advisor pick a better region than chance? (issue #8)

With validation and test regions fixed, every candidate region in turn is the one labeled region (a budget
of one region) and the supervised baseline is trained on it over a few seeds. A random choice is worth the
mean over candidates (each equally likely), so the advisor's pick is compared with that mean; the rank
correlation between the advisor's score and the measured test mIoU says whether its whole ranking is
informative, not only its first pick. Resumable like `bench sweep` (one run folder per region and seed).
With `--ckpt … --ignore-masks` the advisor ranks from a model's predicted classes, seeing no mask at all
(a user choosing among unlabeled tiles); the trained runs are the same, so only the ranking is new.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from semiland.analysis.run import AnalyzeOptions
from semiland.analysis.split_advice import suggest_split
from semiland.bench.sweep.cells import run_one
from semiland.bench.sweep.layout import CellRow
from semiland.bench.sweep.plan import RunSpec, snapshot_config
from semiland.data.presets import build_dataset
from semiland.engine.precision import machine
from semiland.engine.run_config import load_config
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, atomic_write_text, ensure_writable_dir


def _regions(text: str) -> list[str]:
    return [r for r in text.split(",") if r]


def run_advisor_check(args: argparse.Namespace) -> int:
    out = ensure_writable_dir(Path(args.out).resolve())
    config = snapshot_config(Path(args.config), out)
    cfg = load_config(config, args.overrides)
    test, val = _regions(args.test), _regions(args.val)
    if not test:
        raise SemilandError("--test REGIONS is required: the advisor is judged on how well its pick covers them")
    spec = build_dataset(cfg.data)
    opts = AnalyzeOptions(
        features=args.features, unit="region", progress=False, ckpt=args.ckpt, ignore_masks=args.ignore_masks
    )
    # the same trained runs serve every advisor mode; only the advice and the summary are per mode
    suffix = "-blind" if args.ignore_masks else ""
    advice = suggest_split(spec, out / f"advice{suffix}", opts, 1, test, val)
    candidates = [c["unit"] for c in advice["ranking"]]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    total = len(seeds) * len(candidates)
    for n, (seed, region) in enumerate([(s, r) for s in seeds for r in candidates], 1):
        print(f"[{n}/{total}] labeled {region} / seed {seed}", flush=True)
        others = [c for c in candidates if c != region]
        overrides = [
            "method.name=supervised", "data.split_mode=region", f"data.labeled=[{region}]",
            f"data.unlabeled=[{','.join(others)}]", f"data.val=[{','.join(val)}]", f"data.test=[{','.join(test)}]",
            f"train.seed={seed}",
        ]  # fmt: skip
        spec = RunSpec("supervised", region, seed, overrides)
        rows.append(run_one(config, spec, args.overrides, out, keep_model=False))  # metrics are all it needs
    summary = summarise(advice, rows)
    results = {"advice": advice, "runs": [r.to_json() for r in rows], "summary": summary, "machine": machine()}
    atomic_write_json(out / f"results{suffix}.json", results)
    atomic_write_text(out / f"summary{suffix}.md", markdown(summary, " ".join(args.argv)))
    print(markdown(summary, " ".join(args.argv)))
    return 0


def summarise(advice: dict[str, Any], rows: list[CellRow]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    per_region = []
    for rank, c in enumerate(advice["ranking"], 1):
        scores = [100 * r.mIoU for r in rows if r.budget == c["unit"] and r.mIoU is not None]
        per_region.append({
            "region": c["unit"], "advisor_rank": rank, "score": c["score"], "coverage": c["coverage_gain"],
            "class_amount": c["class_amount_gain"], "n": len(scores),
            "mIoU": statistics.mean(scores) if scores else float("nan"),
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
        })  # fmt: skip
    measured = [r for r in per_region if r["n"]]
    pick = per_region[0]
    random_mean = statistics.mean(r["mIoU"] for r in measured) if measured else float("nan")
    by_miou = sorted(measured, key=lambda r: -r["mIoU"])
    rho = spearmanr([r["score"] for r in measured], [r["mIoU"] for r in measured])[0] if len(measured) > 2 else None
    return {
        "pick": pick["region"],
        "pick_mIoU": pick["mIoU"],
        "pick_std": pick["std"],
        "random_mIoU": random_mean,
        "random_spread": statistics.stdev(r["mIoU"] for r in measured) if len(measured) > 1 else 0.0,
        "pick_rank_by_mIoU": next((i for i, r in enumerate(by_miou, 1) if r["region"] == pick["region"]), None),
        "spearman": None if rho is None else float(rho),
        "regions": per_region,
        "features": advice["features"],
        "class_source": advice["class_source"],
    }


def markdown(s: dict[str, Any], command: str) -> str:
    lines = [
        "# Labeling advisor vs random choice",
        "",
        f"Command: `semiland {command}`",
        "",
        f"Machine: {machine()}. Features: {s['features']}. Class terms: {s['class_source']}.",
        "",
        "| region | advisor rank | score | class amount | IoT coverage of test | test mIoU (mean ± std) | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["regions"]:
        lines.append(f"| {r['region']} | {r['advisor_rank']} | {r['score']:.2f} | {r['class_amount']:.2f} "
                     f"| {r['coverage']:.2f} | {r['mIoU']:.2f} ± {r['std']:.2f} | {r['n']} |")  # fmt: skip
    rho = "–" if s["spearman"] is None else f"{s['spearman']:.2f}"
    lines += [
        "",
        f"Advisor's pick **{s['pick']}**: {s['pick_mIoU']:.2f} ± {s['pick_std']:.2f} mIoU (rank {s['pick_rank_by_mIoU']} "
        f"of {len(s['regions'])} by measured mIoU); a random region: {s['random_mIoU']:.2f} in expectation "
        f"(spread between regions {s['random_spread']:.2f}). Spearman ρ(advisor score, mIoU) = {rho}.",
        "",
    ]
    return "\n".join(lines)
