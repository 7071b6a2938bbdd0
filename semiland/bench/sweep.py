"""`semiland bench sweep`: methods × label budgets × seeds on one config, plus the oracle, resumable.

Every run is an ordinary run folder (`OUT/<method>/<budget>/seed<k>`); a run whose test metrics exist is
not redone, and one interrupted after its first checkpoint continues from its last (`fit --resume`).
Processes given the same command share the cells (`train_cells`: each claims the next free one). The
summary gives, per method and budget, mean ± std (over seeds) of test mIoU and OA, the difference to
supervised paired by seed (mean ± std, seeds won), the share of the supervised → oracle gap recovered, and
wall time relative to supervised; `--also-on SET` adds the same on other images.

Budgets are named override sets, e.g. `--budget 1tile="data.labeled=[tile_4]"`; the oracle is the
supervised method with `data.oracle=true` (every training image labeled). Budgets whose splits share one
training pool (labeled ∪ unlabeled) share one oracle run per seed. A method may carry its own overrides and
a label (its name in folders and tables), `--methods "fixmatch,self_training:method.rounds=1,
late_km=multitask:method.network=berunda_late method.aux_loss=kmeans"`. `self_training` runs its rounds with the budget's
supervised run (same seed) as the round-0 teacher, so it costs only its students. The summary: `sweep_summary.py`.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shlex
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semiland.bench.folds import fold_budgets, parse_folds
from semiland.bench.sweep_mirror import finished_in_mirror, mirror_cell, mirror_summary, restore_cell, sync_mirror
from semiland.bench.sweep_report import write_summary
from semiland.bench.sweep_summary import ORACLE, cell_folder, cell_run, cost_seconds, last_val_classes
from semiland.config import Config, dump_yaml
from semiland.data.presets import build_dataset
from semiland.engine.checkpoint import read_checkpoint, slim_checkpoint
from semiland.engine.precision import device_name, strict_float32
from semiland.engine.run_config import load_config
from semiland.engine.run_folder import RunFolder, evaluation_folder, read_log
from semiland.engine.runner import fit
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, atomic_write_text, claim, ensure_writable_dir
from semiland.report.run_report import test_run


@dataclass
class RunSpec:
    method: str  # a registered method, or "oracle"
    budget: str
    seed: int
    overrides: list[str]
    same_as: str | None = None  # oracle only: the budget whose oracle run (same training pool) this one is

    def folder(self, out: Path) -> Path:
        return cell_folder(out, self.method, self.budget, self.seed)

    @property
    def registered(self) -> str:
        """The registered method the cell trains: its last `method.name=` override (`plan` puts the label's
        first, then the method spec's own; a later override wins, as in `load_config`)."""
        return [o.split("=", 1)[1] for o in self.overrides if o.startswith("method.name=")][-1]


def parse_methods(text: str) -> dict[str, list[str]]:
    """'a,b:method.k=v,lab=c:method.j=w' → {label: overrides}, overrides starting with method.name=…;
    the label is the method's name unless given; supervised always comes first."""
    methods: dict[str, list[str]] = {}
    for item in re.split(r",(?![^\[]*\])", text):  # commas inside [...] (list values) do not separate methods
        head, _, overrides = item.strip().partition(":")
        label, _, name = head.strip().rpartition("=")
        if not name:
            continue
        label = label.strip() or name.strip()
        if not re.fullmatch(r"[\w-]+", label):
            raise SemilandError(f"--methods label '{label}' must be letters, digits, _ or -")
        methods[label] = [f"method.name={name.strip()}", *shlex.split(overrides)]
    return {"supervised": methods.pop("supervised", ["method.name=supervised"]), **methods}


def training_pool(config: Path, overrides: list[str], sets: list[str] = ()) -> frozenset[str]:
    """Image ids of labeled ∪ unlabeled under one budget (what its oracle is trained on); checks that each
    `--also-on` set has images with masks there before any run starts."""
    from semiland.data.prepare import resolve_split
    from semiland.engine.runner import evaluation_images

    spec, split = resolve_split(load_config(config, overrides))
    for on in sets:
        evaluation_images(spec, split, on)
    return frozenset([*split.labeled, *split.unlabeled])


def parse_budgets(items: list[str], default: bool = True) -> dict[str, list[str]]:
    """Named override sets; none given: one budget, "default" (unless `default` is False: --folds makes them)."""
    budgets: dict[str, list[str]] = {}
    for item in items:
        name, sep, overrides = item.partition("=")
        if not sep or not re.fullmatch(r"[\w-]+", name):
            raise SemilandError(f"--budget '{item}' must look like NAME=\"section.key=value …\"")
        budgets[name] = shlex.split(overrides)
    return budgets or ({"default": []} if default else {})


def plan(
    methods: dict[str, list[str]],
    budgets: dict[str, list[str]],
    seeds: list[int],
    oracle: bool,
    pools: dict[str, frozenset[str]] | None = None,
) -> list[RunSpec]:
    """Runs in order budget → seed → method (partial sweeps are whole seeds of the first budgets)."""
    pools = pools or {}
    first_with_pool = {}
    for budget in budgets:
        first_with_pool.setdefault(pools.get(budget, budget), budget)
    runs = []
    for budget, extra in budgets.items():
        for seed in seeds:
            for method, own in methods.items():
                runs.append(
                    RunSpec(method, budget, seed, [*extra, f"method.name={method}", *own, f"train.seed={seed}"])
                )
            if oracle:
                first = first_with_pool[pools.get(budget, budget)]
                m = ["method.name=supervised", "data.oracle=true", f"train.seed={seed}"]
                runs.append(RunSpec(ORACLE, budget, seed, [*extra, *m], same_as=None if first == budget else first))
    return runs


def also_on(spec: RunSpec, ckpt: Path, folder: Path, sets: list[str]) -> dict[str, float]:
    """Metrics of the cell's final checkpoint on each of `sets` (as `semiland test --on`), keyed "SET:mIoU" and
    "SET:IoU/<class>". The oracle is skipped on split sets: its split labels them all (it trained on them)."""
    row: dict[str, float] = {}
    for on in filter(lambda on: _scored(spec, on), sets):
        m = test_run(ckpt, folder / evaluation_folder(on), on=on)[0]
        row.update(_scores(m, f"{on}:"))
        row.update(head_scores(m, f"{on}:"))
    return row


def _scores(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """mIoU and per-class IoU of one evaluation, keyed "<prefix>mIoU" and "<prefix>IoU/<class>"."""
    return {f"{prefix}mIoU": metrics["mIoU"], **{f"{prefix}IoU/{k}": v["IoU"] for k, v in metrics["per_class"].items()}}


def head_scores(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """A method's heads scored alone (`Method.heads`; DLLR: each modality's branch), keyed
    "[SET:]alone/<head>/mIoU" and "[SET:]alone/<head>/IoU/<class>" (never read as a set's or the method's own)."""
    row: dict[str, float] = {}
    for head, m in metrics.get("heads", {}).items():
        row.update(_scores(m, f"{prefix}alone/{head}/"))
    return row


def _scored(spec: RunSpec, on: str) -> bool:
    """Whether a cell is scored on `on`: not the oracle on a split set (it trained on all of them)."""
    from semiland.data.splits import SETS

    return not (spec.method == ORACLE and on in SETS)


def _missing(row: dict[str, Any], spec: RunSpec, sets: list[str]) -> list[str]:
    return [on for on in sets if f"{on}:mIoU" not in row and _scored(spec, on)]


def run_one(
    config: Path,
    spec: RunSpec,
    common: list[str],
    out: Path,
    keep_ckpt: bool = False,
    sets: list[str] | None = None,
    keep_model: bool = True,
) -> dict[str, Any]:
    """Train and test one cell (or read its result.json); `keep_ckpt` keeps best.ckpt whole (a later cell's
    teacher), else `keep_model` keeps it without its optimizer state (`slim_checkpoint`);
    `sets`: also evaluated on these (`also_on`). A finished cell is never trained again: one still holding its
    checkpoint gets the sets it lacks; one without it keeps what it has (the summary counts seeds per column)."""
    sets = sets or []
    folder = spec.folder(out)
    done = folder / "result.json"
    kept = RunFolder(folder).best
    if done.is_file():
        row = json.loads(done.read_text())
        if kept.is_file() and (todo := _missing(row, spec, sets)):
            row.update(also_on(spec, kept, folder, todo))
            atomic_write_json(done, row)
        return finished_row(folder, row)
    self_training = spec.registered == "self_training"
    if self_training:
        _teacher(spec, out)  # before anything of the cell's folder is removed
    cfg, from_step = (None, 0) if self_training else _resumable(folder)
    if cfg is None:
        cfg = load_config(config, [*common, *spec.overrides])
        if folder.exists():  # interrupted before its first checkpoint: start it again from scratch
            shutil.rmtree(folder)
    ensure_writable_dir(folder)
    started, cpu_started = time.time(), time.process_time()
    if self_training:
        metrics, steps, ckpt = _self_training(config, spec, common, out, folder)
    else:
        result = fit(cfg, folder, resume=from_step > 0)
        metrics, steps, ckpt = test_run(result.best_ckpt, folder / "test")[0], cfg.train.steps, result.best_ckpt
    # training + the test set (extra sets are not counted); a resumed cell's time is scaled up from the steps
    # it ran here (an estimate: the earlier part ran in another process). Wall time counts whatever else the
    # machine ran and any pause; the process's CPU time does not (a sweep's processes run one thread each)
    share = steps / max(steps - from_step, 1)
    tested = time.time()
    fit_seconds = (tested - started) * share
    fit_cpu_seconds = (time.process_time() - cpu_started) * share
    extra = also_on(spec, ckpt, folder, sets)
    cell_seconds = fit_seconds + time.time() - tested  # + the --also-on sets (run here in full: not scaled)
    gc.collect()  # a finished run's trainer, data module and image cache sit in reference cycles: free them now
    labeled, unlabeled = _split_sizes(folder)
    row = {
        "method": spec.method,
        "budget": spec.budget,
        "seed": spec.seed,
        "mIoU": metrics["mIoU"],
        "OA": metrics["OA"],
        "kappa": metrics["kappa"],
        "val_mIoU": best_val(folder),  # what any choice between methods or settings must be made on
        **{f"IoU/{k}": v["IoU"] for k, v in metrics["per_class"].items()},
        **head_scores(metrics),
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "cell_seconds": cell_seconds,  # wall, as fit_seconds, with the extra sets: what --finish-by plans with
        "device": device_name(cfg.train.accelerator),  # cost means compare CPU cells only (cost_seconds)
        "steps": steps,
        "labeled_images": labeled,
        "unlabeled_images": unlabeled,
        **({"resumed_from_step": from_step} if from_step else {}),
        **extra,
    }
    atomic_write_json(done, row)
    for path in folder.rglob("*.ckpt"):  # a sweep keeps metrics and models, not hundreds of MB per run
        if path == ckpt and keep_ckpt:
            continue  # whole: supervised's (a later self_training cell's teacher)
        if path == ckpt and keep_model:
            slim_checkpoint(path)  # the model without its optimizer state: `test`, `predict`, a later --also-on
        else:
            path.unlink()  # last.ckpt, self-training's earlier rounds
    return row


def _last_checkpoint(folder: Path) -> tuple[Config, int] | None:
    """An interrupted cell's own config and the step of its last checkpoint; None without both files. Raises
    SemilandError (or KeyError) for a checkpoint that cannot be read."""
    run = RunFolder(folder)
    if not (run.last.is_file() and run.is_run()):
        return None
    return load_config(run.config, saved=True), read_checkpoint(run.last)["semiland"]["train_step"]


def _resumable(folder: Path) -> tuple[Config | None, int]:
    """An interrupted cell's own config and the step of its last checkpoint, when `fit --resume` can continue
    it (the fault checks of docs/reliability.md: the same final weights as an uninterrupted run); else
    (None, 0) and the cell starts again."""
    try:
        found = _last_checkpoint(folder)
    except (SemilandError, KeyError) as err:
        print(f"cannot resume {folder} ({err}): training it again from step 0", flush=True)
        return None, 0
    if found is None:
        return None, 0
    print(f"resuming {folder} from step {found[1]}", flush=True)
    return found


def finished_row(folder: Path, row: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finished cell's row: its result.json (or `row`, already read) with its best validation mIoU and the
    per-class IoU of its last validation (`val_last:IoU/<class>`)."""
    return {"val_mIoU": best_val(folder), **last_val_classes(folder),
            **(row or json.loads((folder / "result.json").read_text()))}  # fmt: skip


def best_val(folder: Path) -> float | None:
    """The best validation mIoU of a run (its best checkpoint's), from its log; self-training: the last round."""
    log = cell_run(folder) / "logs" / "metrics.csv"
    points = read_log(log).get("val/mIoU", []) if log.is_file() else []
    return max((v for _, v in points), default=None)


def _split_sizes(folder: Path) -> tuple[int, int]:
    path = next(iter(sorted(folder.rglob("split.json"))), None)  # self-training: round1/student/split.json
    split = json.loads(path.read_text()) if path else {}
    return len(split.get("labeled", [])), len(split.get("unlabeled", []))


def _teacher(spec: RunSpec, out: Path) -> Path:
    """The supervised cell (same budget and seed) whose best.ckpt is a self_training cell's round-0 teacher;
    it must be finished (its model may be missing: `_teacher_model`)."""
    teacher_dir = RunSpec("supervised", spec.budget, spec.seed, []).folder(out)
    if not (teacher_dir / "result.json").is_file():
        raise SemilandError(f"self_training needs the supervised run {teacher_dir} finished first: run supervised")
    return teacher_dir


def _teacher_model(spec: RunSpec, common: list[str], out: Path, config: Path, folder: Path) -> Path:
    """The teacher's run folder with its best.ckpt: the supervised cell's, or — where that cell was restored
    from a --mirror without its model — the same supervised run trained again inside this cell (`teacher/`;
    the same config and seed: on one machine the same weights)."""
    teacher_dir = _teacher(spec, out)
    if RunFolder(teacher_dir).best.is_file():
        return teacher_dir
    own = [o for o in spec.overrides if not o.startswith("method.")]
    print(
        f"{teacher_dir} has no model (restored from a mirror, or deleted): training the teacher again in "
        f"{folder / 'teacher'}"
    )
    fit(load_config(config, [*common, *own, "method.name=supervised"]), folder / "teacher")
    return folder / "teacher"


def _self_training(config: Path, spec: RunSpec, common: list[str], out: Path, folder: Path) -> tuple[dict, int, Path]:
    """Self-training rounds with the same budget and seed's supervised run as the round-0 teacher; returns the
    last student's test metrics, steps and checkpoint.

    Time and steps count the students only (the teacher is the supervised cell, already paid for).
    """
    from semiland.data.prepare import prepare_data
    from semiland.selftrain import self_train

    teacher_dir = _teacher_model(spec, common, out, config, folder)
    ckpt = RunFolder(teacher_dir).best
    own = [o for o in spec.overrides if not o.startswith("method.name=")]
    # The teacher run's resolved config carries its band statistics: its data is prepared without re-reading
    # every image for them.
    teacher_cfg = load_config(RunFolder(teacher_dir).config, saved=True)
    rows, metrics = self_train(config, [*common, *own], folder, teacher=(ckpt, prepare_data(teacher_cfg)))
    atomic_write_json(folder / "self_training.json", rows)
    last = RunFolder(folder / f"round{len(rows) - 1}" / "student").best
    return metrics, teacher_cfg.train.steps * (len(rows) - 1), last


def _finished_costs(out: Path, cost: Callable[[dict], float | None]) -> dict[str, list[float]]:
    """`cost` of every finished cell in the folder (any budget or seed, whichever process or call made it),
    by label; cells it gives None (a GPU cell, a paused process) left out."""
    secs: dict[str, list[float]] = {}
    for path in out.glob("*/*/seed*/result.json"):
        if (c := cost(json.loads(path.read_text()))) is not None:
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


def _wall_seconds(row: dict[str, Any]) -> float | None:
    """A finished CPU cell's wall time (`cost_seconds`' cells): what a cell takes on this kind of machine under
    its usual load (more than its CPU time when processes share the cores). Rows written before `cell_seconds`
    (with the --also-on sets) was recorded give their fit and test only."""
    return None if cost_seconds(row) is None else row.get("cell_seconds") or row["fit_seconds"]


# --finish-by starts a cell when MARGIN × its estimate fits: room for the spread of one method's cell times
# (±20 % on Dubai's CPU cells) and the older rows' untimed --also-on sets
MARGIN = 1.25


def _done_share(folder: Path) -> float:
    """The share of its steps an interrupted cell's last checkpoint holds (0 for none, or one `fit --resume`
    could not read: the cell starts again)."""
    try:
        found = _last_checkpoint(folder)
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


def snapshot_config(config: Path, out: Path) -> Path:
    """The sweep reads its config once: the first call writes it, resolved, to OUT/sweep_config.yaml, and every
    run reads that copy, so editing the original mid-sweep cannot mix protocols (a later call with another
    config is refused). Keys added to semiland since then take their defaults on both sides of the check."""
    resolved = load_config(config).to_dict()
    snap = out / "sweep_config.yaml"
    if snap.is_file():
        if load_config(snap).to_dict() != resolved:
            raise SemilandError(f"{out} holds a sweep made with another config ({snap}); use a new -o, or that config")
    else:
        atomic_write_text(snap, f"# resolved from {config} when this sweep started\n" + dump_yaml(resolved))
    return snap


def train_cells(specs: list[RunSpec], config: Path, args: argparse.Namespace, out: Path) -> None:
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
            if (folder / "result.json").is_file() and not _needs_sets(folder, spec, args.also_on):
                continue
            if args.stop_at is not None and time.time() >= args.stop_at:
                print(f"--stop-at {args.stop_at:.0f} reached: no new cell started; run again to continue", flush=True)
                return
            with claim(folder.parent / f"{folder.name}.lock") as mine:
                teacher = RunSpec("supervised", spec.budget, spec.seed, []).folder(out) / "result.json"
                blocked = spec.registered == "self_training" and not teacher.is_file()
                if not mine or blocked:
                    waiting.append(spec)
                    continue
                if (folder / "result.json").is_file() and not _needs_sets(folder, spec, args.also_on):
                    continue  # finished by another process between the first look and the claim
                if (kept := finished_in_mirror(folder, out, args.mirror)) is not None:
                    # finished on another machine since this sweep started; the claim is ours: no process is
                    # training the unfinished run this folder may hold
                    shutil.rmtree(folder, ignore_errors=True)
                    restore_cell(kept, folder)
                    print(
                        f"{spec.method} / {spec.budget} / seed {spec.seed}: finished in {args.mirror}, taken from there"
                    )
                    continue
                if args.finish_by is not None and not (fit := fits_before(spec, out, args.finish_by, specs))[0]:
                    # free, but expected to end too late: a later, shorter cell may still fit (claim released)
                    print(f"{spec.method} / {spec.budget} / seed {spec.seed}: not started, --finish-by: {fit[1]}", flush=True)  # fmt: skip
                    continue
                i = specs.index(spec) + 1
                left = "" if (folder / "result.json").is_file() else f" — {remaining(specs, out, i - 1)}"
                print(f"[{i}/{len(specs)}] {spec.method} / {spec.budget} / seed {spec.seed}{left}", flush=True)
                # supervised keeps its best.ckpt whole: the round-0 teacher of self_training cells (perhaps of a
                # later call), the baseline for `test --on`, `bench targets` or `analyze --ckpt`
                run_one(config, spec, args.overrides, out, spec.method == "supervised", args.also_on, args.keep_models)
                if args.mirror is not None:  # trained, or given an --also-on set: its files changed
                    mirror_cell(folder, out, args.mirror)
        if len(waiting) == len(todo):
            names = ", ".join(f"{s.method}/{s.budget}/seed{s.seed}" for s in waiting)
            print(f"{len(waiting)} cells left to the other processes of this sweep: {names}", flush=True)
            return
        todo = waiting


def _needs_sets(folder: Path, spec: RunSpec, sets: list[str]) -> bool:
    """A finished cell that kept its model but lacks an --also-on set (run_one adds it)."""
    row = json.loads((folder / "result.json").read_text())
    return RunFolder(folder).best.is_file() and bool(_missing(row, spec, sets))


def finished_rows(specs: list[RunSpec], out: Path) -> list[dict[str, Any]]:
    """The finished cells' rows in the plan's order; a shared oracle's under each budget that shares it.
    Reads files only: safe beside the processes still training the sweep."""
    rows: list[dict[str, Any]] = []
    for spec in specs:
        if spec.same_as is not None:  # the same oracle run as an earlier budget's (one training pool)
            first = [
                r for r in rows if r["method"] == ORACLE and r["budget"] == spec.same_as and r["seed"] == spec.seed
            ]
            rows += [{**r, "budget": spec.budget, "same_as": spec.same_as} for r in first]  # none: not finished yet
        elif (spec.folder(out) / "result.json").is_file():
            rows.append(finished_row(spec.folder(out)))
    return rows


def run_sweep(args: argparse.Namespace) -> int:
    if args.summary_only and args.no_summary:
        raise SemilandError("--summary-only and --no-summary together would do nothing: give one of them")
    out = ensure_writable_dir(Path(args.out).resolve())
    args.mirror = ensure_writable_dir(Path(args.mirror).resolve()) if args.mirror else None
    if args.mirror is not None:
        restored, added = sync_mirror(out, args.mirror)
        print(f"mirror {args.mirror}: {len(restored)} finished cells restored into {out}, {len(added)} added to it")
    methods = parse_methods(args.methods)  # supervised first: every comparison is against the baseline
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
        train_cells(specs, config, args, out)
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
