"""`semiland bench sweep`: methods × label budgets × seeds on one config, plus the oracle, resumable.

Every run is an ordinary run folder (`OUT/<method>/<budget>/seed<k>`); a run whose test metrics exist is
not redone. The summary gives, per method and budget, mean ± std (over seeds) of test mIoU and OA, the
share of the supervised → oracle gap recovered, and wall time relative to supervised.

Budgets are named override sets, e.g. `--budget 1tile="data.labeled=[tile_4]"`; the oracle is the
supervised method with `data.oracle=true` (every training image labeled) under each budget's split.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shlex
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semiland.config import load_config
from semiland.engine.runner import fit, test
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, atomic_write_text, ensure_writable_dir
from semiland.report.html import Report, write_report
from semiland.report.run_report import machine

ORACLE = "oracle"


@dataclass
class RunSpec:
    method: str  # a registered method, or "oracle"
    budget: str
    seed: int
    overrides: list[str]

    def folder(self, out: Path) -> Path:
        return out / self.method / self.budget / f"seed{self.seed}"


def parse_budgets(items: list[str]) -> dict[str, list[str]]:
    budgets: dict[str, list[str]] = {}
    for item in items:
        name, sep, overrides = item.partition("=")
        if not sep or not re.fullmatch(r"[\w-]+", name):
            raise SemilandError(f"--budget '{item}' must look like NAME=\"section.key=value …\"")
        budgets[name] = shlex.split(overrides)
    return budgets or {"default": []}


def plan(methods: list[str], budgets: dict[str, list[str]], seeds: list[int], oracle: bool) -> list[RunSpec]:
    runs = []
    for budget, extra in budgets.items():
        for seed in seeds:
            for method in [*methods, ORACLE] if oracle else methods:
                m = ["method.name=supervised", "data.oracle=true"] if method == ORACLE else [f"method.name={method}"]
                runs.append(RunSpec(method, budget, seed, [*extra, *m, f"train.seed={seed}"]))
    return runs


def run_one(config: Path, spec: RunSpec, common: list[str], out: Path) -> dict[str, Any]:
    folder = spec.folder(out)
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = load_config(config, [*common, *spec.overrides])
    if folder.exists():  # an interrupted run: start it again from scratch (it was never finished)
        shutil.rmtree(folder)
    ensure_writable_dir(folder)
    started = time.time()
    result = fit(cfg, folder)
    fit_seconds = time.time() - started
    metrics = test(result.best_ckpt, folder / "test")
    row = {
        "method": spec.method,
        "budget": spec.budget,
        "seed": spec.seed,
        "mIoU": metrics["mIoU"],
        "OA": metrics["OA"],
        "kappa": metrics["kappa"],
        **{f"IoU/{k}": v["IoU"] for k, v in metrics["per_class"].items()},
        "fit_seconds": fit_seconds,
        "steps": cfg.train.steps,
        "labeled_images": len(result.data.split.labeled),
        "unlabeled_images": len(result.data.split.unlabeled),
    }
    atomic_write_json(done, row)
    for ckpt in (folder / "checkpoints").glob("*.ckpt"):  # a sweep keeps metrics, not hundreds of MB per run
        ckpt.unlink()
    return row


def _stats(rows: list[dict[str, Any]], method: str, budget: str, key: str) -> tuple[float, float, int]:
    """Mean, std (0 for one seed) and count of 100 × `key` over the seeds of one method and budget."""
    vals = [100 * r[key] for r in rows if r["method"] == method and r["budget"] == budget and r[key] is not None]
    if not vals:
        return float("nan"), float("nan"), 0
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    table = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        sup, _, _ = _stats(rows, "supervised", budget, "mIoU")
        orc, _, _ = _stats(rows, ORACLE, budget, "mIoU")
        sup_time = [r["fit_seconds"] for r in rows if r["method"] == "supervised" and r["budget"] == budget]
        for method in [*methods, ORACLE]:
            mean, std, n = _stats(rows, method, budget, "mIoU")
            if n == 0:
                continue
            oa, oa_std, _ = _stats(rows, method, budget, "OA")
            secs = [r["fit_seconds"] for r in rows if r["method"] == method and r["budget"] == budget]
            has_gap = method not in ("supervised", ORACLE) and abs(orc - sup) > 1e-9  # NaN compares False
            table.append(
                {
                    "budget": budget,
                    "method": method,
                    "n": n,
                    "mIoU": mean,
                    "mIoU_std": std,
                    "OA": oa,
                    "OA_std": oa_std,
                    "gap_recovered": (mean - sup) / (orc - sup) if has_gap else float("nan"),
                    "time_vs_supervised": statistics.mean(secs) / statistics.mean(sup_time)
                    if sup_time
                    else float("nan"),
                }
            )
    return table


def _fmt(x: float, pct: bool = False) -> str:
    if x != x:
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.2f}"


def markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| budget | method | seeds | test mIoU (mean ± std) | OA | gap recovered | time vs supervised |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['budget']} | {r['method']} | {r['n']} | {r['mIoU']:.2f} ± {r['mIoU_std']:.2f} | "
            f"{r['OA']:.2f} ± {r['OA_std']:.2f} | {_fmt(r['gap_recovered'], pct=True)} | {_fmt(r['time_vs_supervised'])}× |"
        )
    return "\n".join(lines)


def run_sweep(args: argparse.Namespace) -> int:
    out = ensure_writable_dir(Path(args.out).resolve())
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "supervised" not in methods:
        methods.insert(0, "supervised")  # every comparison is against the baseline
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = parse_budgets(args.budget or [])
    specs = plan(methods, budgets, seeds, oracle=not args.no_oracle)
    load_config(args.config, args.overrides)  # a bad config fails before any run starts
    rows = []
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {spec.method} / {spec.budget} / seed {spec.seed}", flush=True)
        rows.append(run_one(Path(args.config), spec, args.overrides, out))
    table = summarise(rows, methods)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_json(out / "results.json", {"runs": rows, "summary": table, "machine": machine()})
    command = "semiland " + " ".join(shlex.quote(a) for a in args.argv)
    md = f"# Sweep\n\nCommand: `{command}`\n\nMachine: {machine()}\n\n{markdown(table)}\n"
    atomic_write_text(out / "summary.md", md)
    report = Report(
        title="semiland sweep",
        intro=[f"Command: {command}", f"Machine: {machine()}"],
        details={
            f"{r['budget']} / {r['method']}": f"mIoU {r['mIoU']:.2f} ± {r['mIoU_std']:.2f} (n={r['n']}), "
            f"gap recovered {_fmt(r['gap_recovered'], pct=True)}, time {_fmt(r['time_vs_supervised'])}×"
            for r in table
        },
    )
    write_report(report, out / "summary.html")
    print("\n" + markdown(table) + f"\n\nresults: {out / 'results.csv'}, {out / 'summary.md'}, {out / 'summary.html'}")
    return 0
