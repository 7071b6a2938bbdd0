"""Training and testing one cell (`run_one`), resuming an interrupted one, the self-training cell that
reuses supervised's model as its round-0 teacher, and the extra sets a cell is scored on (`--also-on`).
"""

from __future__ import annotations

import gc
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from semiland.bench.sweep.layout import (
    ORACLE,
    VAL,
    CellRow,
    Score,
    best_val,
    finished_row,
    read_row,
    split_sizes,
)
from semiland.bench.sweep.plan import RunSpec
from semiland.config import Config
from semiland.data.prepare import prepare_data
from semiland.engine.checkpoint import read_checkpoint, slim_checkpoint
from semiland.engine.precision import device_name
from semiland.engine.run_config import load_config
from semiland.engine.run_folder import RunFolder, evaluation_folder
from semiland.engine.runner import fit
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, ensure_writable_dir
from semiland.report.run_report import test_run


def also_on(spec: RunSpec, ckpt: Path, folder: Path, sets: list[str]) -> dict[Score, float]:
    """Scores of the cell's final checkpoint on each of `sets` (as `semiland test --on`): mIoU and per class, of
    the method and of each head. The oracle is skipped on split sets: its split labels them all (it trained
    on them)."""
    scores: dict[Score, float] = {}
    for on in filter(lambda on: _scored(spec, on), sets):
        m = test_run(ckpt, folder / evaluation_folder(on), on=on)[0]
        scores |= _scores(m, on) | head_scores(m, on)
    return scores


def _scores(metrics: dict[str, Any], on: str, head: str = "") -> dict[Score, float]:
    """mIoU and per-class IoU of one evaluation (`metrics.json`'s) on `on`, of the method or one `head`."""
    per_class = {Score.iou(k, on, head): v["IoU"] for k, v in metrics["per_class"].items()}
    return {Score(on, head=head): metrics["mIoU"], **per_class}


def head_scores(metrics: dict[str, Any], on: str = "test") -> dict[Score, float]:
    """A method's heads scored alone (`Method.heads`; DLLR: each modality's branch): never read as a set's or
    the method's own scores."""
    scores: dict[Score, float] = {}
    for head, m in metrics.get("heads", {}).items():
        scores |= _scores(m, on, head)
    return scores


def _scored(spec: RunSpec, on: str) -> bool:
    """Whether a cell is scored on `on`: not the oracle on a split set (it trained on all of them)."""
    from semiland.data.splits import SETS

    return not (spec.method == ORACLE and on in SETS)


def _missing(row: CellRow, spec: RunSpec, sets: list[str]) -> list[str]:
    return [on for on in sets if Score(on) not in row.scores and _scored(spec, on)]


def run_one(
    config: Path,
    spec: RunSpec,
    common: list[str],
    out: Path,
    keep_ckpt: bool = False,
    sets: list[str] | None = None,
    keep_model: bool = True,
) -> CellRow:
    """Train and test one cell (or read its result.json); `keep_ckpt` keeps best.ckpt whole (a later cell's
    teacher), else `keep_model` keeps it without its optimizer state (`slim_checkpoint`);
    `sets`: also evaluated on these (`also_on`). A finished cell is never trained again: one still holding its
    checkpoint gets the sets it lacks; one without it keeps what it has (the summary counts seeds per column)."""
    sets = sets or []
    folder = spec.folder(out)
    done = folder / "result.json"
    kept = RunFolder(folder).best
    if done.is_file():
        row = read_row(done)
        if kept.is_file() and (todo := _missing(row, spec, sets)):
            row = row.with_scores(also_on(spec, kept, folder, todo))
            atomic_write_json(done, row.to_json())
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
    labeled, unlabeled = split_sizes(folder)
    scores = _scores(metrics, "test") | {Score(metric="OA"): metrics["OA"], Score(metric="kappa"): metrics["kappa"]}
    if (val := best_val(folder)) is not None:  # what any choice between methods or settings must be made on
        scores[VAL] = val
    row = CellRow(
        method=spec.method,
        budget=spec.budget,
        seed=spec.seed,
        scores=scores | head_scores(metrics) | extra,
        fit_seconds=fit_seconds,
        fit_cpu_seconds=fit_cpu_seconds,
        cell_seconds=cell_seconds,  # wall, as fit_seconds, with the extra sets: what --finish-by plans with
        device=device_name(cfg.train.accelerator),  # cost means compare CPU cells only (cost_seconds)
        steps=steps,
        labeled_images=labeled,
        unlabeled_images=unlabeled,
        resumed_from_step=from_step or None,
        # stopped after its last checkpoint, before its test: only the test ran here, its training time is unknown
        time_unreliable="resumed at its last step: only its test ran in this process" if from_step >= steps else None,
    )
    atomic_write_json(done, row.to_json())
    for path in folder.rglob("*.ckpt"):  # a sweep keeps metrics and models, not hundreds of MB per run
        if path == ckpt and keep_ckpt:
            continue  # whole: supervised's (a later self_training cell's teacher)
        if path == ckpt and keep_model:
            slim_checkpoint(path)  # the model without its optimizer state: `test`, `predict`, a later --also-on
        else:
            path.unlink()  # last.ckpt, self-training's earlier rounds
    return row


def last_checkpoint(folder: Path) -> tuple[Config, int] | None:
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
        found = last_checkpoint(folder)
    except (SemilandError, KeyError) as err:
        print(f"cannot resume {folder} ({err}): training it again from step 0", flush=True)
        return None, 0
    if found is None:
        return None, 0
    print(f"resuming {folder} from step {found[1]}", flush=True)
    return found


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


def needs_sets(folder: Path, spec: RunSpec, sets: list[str]) -> bool:
    """A finished cell that kept its model but lacks an --also-on set (run_one adds it)."""
    return RunFolder(folder).best.is_file() and bool(_missing(read_row(folder / "result.json"), spec, sets))


def finished_rows(specs: list[RunSpec], out: Path) -> list[CellRow]:
    """The finished cells' rows in the plan's order; a shared oracle's under each budget that shares it.
    Reads files only: safe beside the processes still training the sweep."""
    rows: list[CellRow] = []
    for spec in specs:
        if spec.same_as is not None:  # the same oracle run as an earlier budget's (one training pool)
            first = [r for r in rows if r.method == ORACLE and r.budget == spec.same_as and r.seed == spec.seed]
            rows += [replace(r, budget=spec.budget, same_as=spec.same_as) for r in first]  # none: not finished yet
        elif (spec.folder(out) / "result.json").is_file():
            rows.append(finished_row(spec.folder(out)))
    return rows
