"""Which cell a process trains next: processes given the same command share the cells (each claims the
next free one), and on a machine lent for a fixed time a cell starts only if it is expected to end in time
(`--stop-at`, `--finish-by`; wall-time estimates from the finished cells).
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from semiland.bench.sweep.cells import last_checkpoint, needs_sets, run_one
from semiland.bench.sweep.layout import CellRow, cost_seconds, read_row
from semiland.bench.sweep.mirror import finished_in_mirror, mirror_cell, restore_cell
from semiland.bench.sweep.plan import RunSpec
from semiland.errors import SemilandError
from semiland.io import claim


def _finished_costs(out: Path, cost: Callable[[CellRow], float | None]) -> dict[str, list[float]]:
    """`cost` of every finished cell in the folder (any budget or seed, whichever process or call made it),
    by label; cells it gives None (a GPU cell, a paused process) left out."""
    secs: dict[str, list[float]] = {}
    for path in out.glob("*/*/seed*/result.json"):
        if (c := cost(read_row(path))) is not None:
            secs.setdefault(path.parts[-4], []).append(c)
    return secs


def _estimate(spec: RunSpec, secs: dict[str, list[float]], specs: list[RunSpec]) -> float | None:
    """The mean of the label's finished cells or, for a label with none yet, of the finished cells of the
    plan's labels that train the same registered method (MiniFrance's six `multitask` rows, DLLR's ablation
    rows), else of the label named after that method (`fixmatch_flex=fixmatch:…`); None for neither."""
    kin = {s.method for s in specs if s.registered == spec.registered}
    known = secs.get(spec.method) or [c for label in sorted(kin) for c in secs.get(label, [])]
    known = known or secs.get(spec.registered)
    return statistics.mean(known) if known else None


def remaining(specs: list[RunSpec], out: Path, start: int = 0) -> str:
    """What is left of the plan from its `start`-th cell on, in hours of one process, each unfinished cell costed
    by `_estimate` (CPU seconds) over the whole plan, as `--finish-by` costs it."""
    secs = _finished_costs(out, cost_seconds)
    todo = [s for s in specs[start:] if s.same_as is None and not (s.folder(out) / "result.json").is_file()]
    known, borrowed, unknown = [], set(), set()
    for spec in todo:
        if (est := _estimate(spec, secs, specs)) is None:
            unknown.add(spec.method)
            continue
        known.append(est)
        borrowed |= {f"{spec.method} as {spec.registered}"} if spec.method not in secs else set()
    text = f"left: {len(todo)} cells, ≈ {sum(known) / 3600:.1f} h of one process for {len(known)} of them"
    text += f" ({', '.join(sorted(borrowed))})" if borrowed else ""
    return text + (f" (no finished cell yet to cost: {', '.join(sorted(unknown))})" if unknown else "")


def _wall_seconds(row: CellRow) -> float | None:
    """A finished CPU cell's wall time (`cost_seconds`' cells): what a cell takes on this kind of machine under
    its usual load (more than its CPU time when processes share the cores). Rows written before `cell_seconds`
    (with the --also-on sets) was recorded give their fit and test only."""
    return None if cost_seconds(row) is None else row.cell_seconds or row.fit_seconds


# --finish-by starts a cell when MARGIN × its estimate fits: room for the spread of one method's cell times
# (±20 % on Dubai's CPU cells) and the older rows' untimed --also-on sets
MARGIN = 1.25


def _done_share(folder: Path) -> float:
    """The share of its steps an interrupted cell's last checkpoint holds (0 for none, or one `fit --resume`
    could not read: the cell starts again)."""
    try:
        found = last_checkpoint(folder)
    except (SemilandError, KeyError):
        return 0.0
    return 0.0 if found is None else min(found[1] / max(found[0].train.steps, 1), 1.0)


def fits_before(spec: RunSpec, out: Path, finish_by: float, specs: list[RunSpec]) -> tuple[bool, str]:
    """Whether the cell, started now, is expected to end by `finish_by` (unix time), and why: the mean wall time
    of the folder's finished CPU cells of its label (else of its method, `_estimate`) or, with none, the longest
    cell of any label (a new method's first cells), less the share an interrupted cell's last checkpoint
    already holds; a folder with no finished cell at all lets every cell start."""
    secs = _finished_costs(out, _wall_seconds)
    est = _estimate(spec, secs, specs)
    basis = "its finished cells" if spec.method in secs else f"{spec.registered}'s finished cells"
    if est is None and secs:
        est, basis = max(max(v) for v in secs.values()), "the longest finished cell (none of its method yet)"
    if est is None:
        return True, "no finished cell to estimate from"
    if spec.registered != "self_training" and (done := _done_share(spec.folder(out))) > 0:
        est, basis = est * (1 - done), f"{basis}, {100 * done:.0f} % done"
    left = finish_by - time.time()
    return MARGIN * est <= left, f"≈ {est / 60:.0f} min by {basis} (×{MARGIN}), {max(left, 0) / 60:.0f} min left"


@dataclass(frozen=True)
class CellOptions:
    """What every cell of one sweep call is trained with, beside its own spec (the command's options)."""

    overrides: list[str]  # section.key=value for every cell
    also_on: list[str]  # extra sets each cell is scored on
    keep_models: bool  # keep each cell's best model (slimmed)
    mirror: Path | None = None  # copy finished cells there; count its finished cells as finished
    stop_at: float | None = None  # start no cell after this time (seconds since the epoch)
    finish_by: float | None = None  # start a cell only if expected to end by then


def train_cells(specs: list[RunSpec], config: Path, opts: CellOptions, out: Path) -> None:
    """Train (or complete) every cell of the plan that no other process is training. Each cell is claimed
    (`OUT/<method>/<budget>/seed<k>.lock`) while it runs, so several processes given the same command share
    the work: each takes the next free cell. A pass that skipped cells (claimed elsewhere, or a self_training
    cell whose supervised teacher another process is still training) is followed by another while it got
    something done; the holders of those claims reach the rest in their own passes."""
    todo = [s for s in specs if s.same_as is None]
    while todo:
        waiting = []
        for spec in todo:
            folder = spec.folder(out)
            if (folder / "result.json").is_file() and not needs_sets(folder, spec, opts.also_on):
                continue
            if opts.stop_at is not None and time.time() >= opts.stop_at:
                print(f"--stop-at {opts.stop_at:.0f} reached: no new cell started; run again to continue", flush=True)
                return
            with claim(folder.parent / f"{folder.name}.lock") as mine:
                teacher = RunSpec("supervised", spec.budget, spec.seed, []).folder(out) / "result.json"
                blocked = spec.registered == "self_training" and not teacher.is_file()
                if not mine or blocked:
                    waiting.append(spec)
                    continue
                if (folder / "result.json").is_file() and not needs_sets(folder, spec, opts.also_on):
                    continue  # finished by another process between the first look and the claim
                if (kept := finished_in_mirror(folder, out, opts.mirror)) is not None:
                    # finished on another machine since this sweep started; the claim is ours: no process is
                    # training the unfinished run this folder may hold
                    shutil.rmtree(folder, ignore_errors=True)
                    restore_cell(kept, folder)
                    print(
                        f"{spec.method} / {spec.budget} / seed {spec.seed}: finished in {opts.mirror}, taken from there"
                    )
                    continue
                if opts.finish_by is not None and not (fit := fits_before(spec, out, opts.finish_by, specs))[0]:
                    # free, but expected to end too late: a later, shorter cell may still fit (claim released)
                    print(f"{spec.method} / {spec.budget} / seed {spec.seed}: not started, --finish-by: {fit[1]}", flush=True)  # fmt: skip
                    continue
                i = specs.index(spec) + 1
                left = "" if (folder / "result.json").is_file() else f" — {remaining(specs, out, i - 1)}"
                print(f"[{i}/{len(specs)}] {spec.method} / {spec.budget} / seed {spec.seed}{left}", flush=True)
                # supervised keeps its best.ckpt whole: the round-0 teacher of self_training cells (perhaps of a
                # later call), the baseline for `test --on`, `bench targets` or `analyze --ckpt`
                run_one(config, spec, opts.overrides, out, spec.method == "supervised", opts.also_on, opts.keep_models)
                if opts.mirror is not None:  # trained, or given an --also-on set: its files changed
                    mirror_cell(folder, out, opts.mirror)
        if len(waiting) == len(todo):
            names = ", ".join(f"{s.method}/{s.budget}/seed{s.seed}" for s in waiting)
            print(f"{len(waiting)} cells left to the other processes of this sweep: {names}", flush=True)
            return
        todo = waiting
