"""The sweep folder's layout and a finished cell's row. A cell is an ordinary run folder at
`OUT/<method label>/<budget>/seed<k>` (a self-training cell: its last round's student run); its row
(`result.json`, `CellRow`) is what every table, curve and mirror reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import yaml

from semiland.engine.run_folder import RunFolder, read_log

ORACLE = "oracle"


class _CellRowOptional(TypedDict, total=False):
    resumed_from_step: int
    same_as: str  # an oracle row shared from an earlier budget of the same training pool
    time_unreliable: str  # why its times measure no cost (e.g. a process paused mid-cell), set by hand


class CellRow(_CellRowOptional):
    """A finished cell's row, its `result.json`: what the tables, curves, folds and mirror read. Beside these
    keys it carries per-class and per-set scores that a TypedDict cannot name: `IoU/<class>` (test),
    `val_last:IoU/<class>` (the last validation, added when read back: `finished_row`), `alone/<head>/mIoU`
    (a multi-head model's heads), and for each `--also-on SET` `<SET>:mIoU`, `<SET>:OA`, `<SET>:IoU/<class>`."""

    method: str  # the label in --methods (`fmqa_long`), not necessarily a registered method's name
    budget: str
    seed: int
    mIoU: float  # test, of the best validation checkpoint
    OA: float
    kappa: float
    val_mIoU: float | None  # the best validation mIoU (a self-training cell: its last round's)
    fit_seconds: float  # wall time of training + testing (a resumed cell: scaled up from the steps run here)
    fit_cpu_seconds: float  # this process's CPU time of the same (one thread per process: the cost measure)
    cell_seconds: float  # fit_seconds + the --also-on sets: what --finish-by plans with
    device: str  # CPU model (and native bf16) or GPU: a pairing by seed pairs cells of one device
    steps: int
    labeled_images: int
    unlabeled_images: int


def cell_folder(out: Path, method: str, budget: str, seed: int) -> Path:
    """Where a sweep keeps one cell's run: OUT/<method>/<budget>/seed<k>."""
    return out / method / budget / f"seed{seed}"


def cell_run(cell: Path) -> Path:
    """The run folder of a cell's final model: the cell itself, or a self-training cell's last round's student
    (round<k>/student) — never the `teacher/` such a cell holds when it trained its teacher again."""
    students = sorted(cell.glob("round*/student"), key=lambda p: int(p.parent.name.removeprefix("round")))
    return students[-1] if students else cell


def cell_method(run: Path) -> dict[str, Any]:
    """The `method:` section a cell's run trained with (its resolved config.yaml), {} where unreadable: a label
    such as `fixmatch_flex` names a configuration, this names the registered method and its settings."""
    try:
        method = yaml.safe_load(RunFolder(run).config.read_text())["method"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    return method if isinstance(method, dict) else {}


def cost_seconds(row: CellRow) -> float | None:
    """A cell's cost: its process's CPU time (immune to other load and to pauses; one-thread sweep processes),
    or its wall time for cells from before that was recorded; None where the row says its time is not a
    measure of cost (`"time_unreliable": "why"`, e.g. a process paused mid-cell) and for a cell trained on a
    GPU (its CPU time is not its cost, and several cells share one GPU): left out of every mean."""
    if row.get("time_unreliable") or str(row.get("device", "cpu")).startswith("cuda"):
        return None
    return row.get("fit_cpu_seconds") or row["fit_seconds"]


def last_val_classes(folder: Path) -> dict[str, float]:
    """Per-class IoU of a run's last validation (val_metrics.json; self-training: the last round's student), as
    `val_last:IoU/<class>`: which classes the validation set can see at all. Empty where no validation ran."""
    path = cell_run(folder) / "val_metrics.json"
    per_class = json.loads(path.read_text()).get("per_class", {}) if path.is_file() else {}
    return {f"val_last:IoU/{name}": c["IoU"] for name, c in per_class.items() if c.get("IoU") is not None}


def best_val(folder: Path) -> float | None:
    """The best validation mIoU of a run (its best checkpoint's), from its log; self-training: the last round."""
    log = cell_run(folder) / "logs" / "metrics.csv"
    points = read_log(log).get("val/mIoU", []) if log.is_file() else []
    return max((v for _, v in points), default=None)


def finished_row(folder: Path, row: CellRow | None = None) -> CellRow:
    """A finished cell's row: its result.json (or `row`, already read) with its best validation mIoU and the
    per-class IoU of its last validation (`val_last:IoU/<class>`)."""
    return {"val_mIoU": best_val(folder), **last_val_classes(folder),
            **(row or json.loads((folder / "result.json").read_text()))}  # fmt: skip


def split_sizes(folder: Path) -> tuple[int, int]:
    path = next(iter(sorted(folder.rglob("split.json"))), None)  # self-training: round1/student/split.json
    split = json.loads(path.read_text()) if path else {}
    return len(split.get("labeled", [])), len(split.get("unlabeled", []))
