"""`semiland bench sweep`: check the whole plan, train the cells, then write the summary."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from semiland.bench.folds import fold_budgets, parse_folds
from semiland.bench.sweep.cells import finished_rows
from semiland.bench.sweep.mirror import mirror_summary, sync_mirror
from semiland.bench.sweep.plan import parse_budgets, parse_methods, plan, snapshot_config, training_pool
from semiland.bench.sweep.report import write_summary
from semiland.bench.sweep.schedule import CellOptions, remaining, train_cells
from semiland.data.presets import build_dataset
from semiland.engine.precision import strict_float32
from semiland.engine.run_config import load_config
from semiland.errors import SemilandError
from semiland.io import ensure_writable_dir


def run_sweep(args: argparse.Namespace) -> int:
    if args.summary_only and args.no_summary:
        raise SemilandError("--summary-only and --no-summary together would do nothing: give one of them")
    out = ensure_writable_dir(Path(args.out).resolve())
    args.mirror = ensure_writable_dir(Path(args.mirror).resolve()) if args.mirror else None
    if args.mirror is not None:
        restored, added = sync_mirror(out, args.mirror)
        print(f"mirror {args.mirror}: {len(restored)} finished cells restored into {out}, {len(added)} added to it")
    methods = parse_methods(args.methods, not args.no_baseline)  # supervised first: the baseline
    seeds = [int(s) for s in args.seeds.split(",")]
    config = snapshot_config(Path(args.config), out)
    budgets = parse_budgets(args.budget or [], default=not args.folds)
    if args.folds:  # leave-one-tile-out: every region the test region once (bench/folds.py)
        regions = build_dataset(load_config(config, args.overrides).data).regions
        tests = [t.strip() for t in (args.fold_tests or "").split(",") if t.strip()] or None
        if args.fold_tests is not None and tests is None:
            raise SemilandError("--fold-tests names no region: give test regions, e.g. --fold-tests tile_1,tile_2")
        budgets.update(fold_budgets(regions, parse_folds(args.folds), tests))
    elif args.fold_tests is not None:
        raise SemilandError("--fold-tests chooses among the folds of --folds: give --folds too")
    for own in methods.values():  # a bad config, method or override fails before any run starts
        load_config(config, [*args.overrides, *own])
    pools = {b: training_pool(config, [*args.overrides, *extra], args.also_on) for b, extra in budgets.items()}
    specs = plan(methods, budgets, seeds, oracle=not args.no_oracle, pools=pools)
    if not args.summary_only:
        strict_float32()  # a float32 protocol's cells, trained on a CPU or a GPU, do the same arithmetic
        options = CellOptions(args.overrides, args.also_on, args.keep_models, args.mirror, args.stop_at, args.finish_by)
        train_cells(specs, config, options, out)
    rows = finished_rows(specs, out)  # every finished cell, this process's or another's, in the plan's order
    cells = sum(s.same_as is None for s in specs)  # a shared oracle is one cell
    print(f"{sum(not r.get('same_as') for r in rows)} of {cells} cells finished; {remaining(specs, out)}")
    if args.no_summary:
        return 0
    if not rows:
        raise SemilandError(f"no finished cell in {out} for these methods, budgets and seeds")
    command = "semiland " + " ".join(shlex.quote(a) for a in args.argv)
    write_summary(rows, list(methods), out, command)
    if args.mirror is not None:
        mirror_summary(out, args.mirror, rows, command)
    return 0
