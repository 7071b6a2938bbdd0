"""The sweep folder's layout and a finished cell's row. A cell is an ordinary run folder at
`OUT/<method label>/<budget>/seed<k>` (a self-training cell: its last round's student run); its row
(`result.json`, read as a `CellRow`) is what every table, curve and mirror reads.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from semiland.engine.run_config import load_config
from semiland.engine.run_folder import RunFolder, best_validation
from semiland.errors import SemilandError

ORACLE = "oracle"

# a score's name in result.json: [SET:][alone/HEAD/](mIoU | OA | kappa | IoU/CLASS); "val_mIoU" the best validation
_SCORE_KEY = re.compile(
    r"^(?:(?P<on>[^:/]+):)?(?:alone/(?P<head>[^/]+)/)?(?:(?P<metric>mIoU|OA|kappa)|IoU/(?P<cls>.+))$"
)


@dataclass(frozen=True)
class Score:
    """Which number of a cell: the mIoU, OA, kappa or one class's IoU, on one evaluation set, of the method's
    prediction or of one of its heads alone (`Method.heads`: DLLR's branches).

    Sets: "test"; "val" (the best validation mIoU: the checkpoint's choice, mIoU only); "val_last" (the last
    validation, per class: which classes the validation tiles show at all); any `--also-on` set ("unlabeled").
    """

    on: str = "test"
    metric: str = "mIoU"  # "mIoU", "OA", "kappa", or "IoU" of `cls`
    cls: str = ""
    head: str = ""  # "": the method's own prediction

    @classmethod
    def iou(cls, name: str, on: str = "test", head: str = "") -> Score:
        return cls(on, "IoU", name, head)

    @classmethod
    def parse(cls, key: str) -> Score | None:
        """The score a result.json key names, None for a key that names none (a row's field or a note)."""
        if key == "val_mIoU":
            return VAL
        m = _SCORE_KEY.match(key)
        if m is None:
            return None
        return cls(m["on"] or "test", m["metric"] or "IoU", m["cls"] or "", m["head"] or "")

    @property
    def key(self) -> str:
        """Its name in result.json and results.csv (flat keys, as every row since the first sweep)."""
        if self == VAL:
            return "val_mIoU"
        name = f"IoU/{self.cls}" if self.metric == "IoU" else self.metric
        name = f"alone/{self.head}/{name}" if self.head else name
        return name if self.on == "test" else f"{self.on}:{name}"


@dataclass(frozen=True)
class Recipe:
    """How a cell trained apart from its label, budget, seed, step count and machine: two labels of one recipe
    (`dllr` and `dllr_rerun`, `sup_long` and `sup_long_xeon`) are the same run trained again."""

    method: str  # the registered method
    oracle: bool  # every training image labeled (data.oracle)
    settings: str  # the resolved config's sections as sorted JSON, less what `_NOT_RECIPE` names


TEST = Score()  # the test set's mIoU of the best validation checkpoint: a sweep's headline number
VAL = Score("val")  # the best validation mIoU: what any choice between methods or settings is made on


@dataclass
class CellRow:
    """A finished cell's row: what the tables, curves, folds and mirror read. On disk (`result.json`) one flat
    JSON object: these fields and every score under its `Score.key`."""

    method: str  # the label in --methods (`fmqa_long`), not necessarily a registered method's name
    budget: str
    seed: int
    scores: dict[Score, float]  # test mIoU / OA / kappa / per class, VAL, val_last per class, heads, --also-on sets
    fit_seconds: float = math.nan  # wall time of training + testing (a resumed cell: scaled up from the steps run here)
    fit_cpu_seconds: float | None = None  # this process's CPU time of the same (one thread per process: the cost)
    cell_seconds: float | None = None  # fit_seconds + the --also-on sets: what --finish-by plans with
    device: str | None = None  # CPU model (and native bf16) or GPU: a pairing by seed pairs cells of one device
    steps: int = 0
    labeled_images: int = 0
    unlabeled_images: int = 0
    resumed_from_step: int | None = None
    same_as: str | None = None  # an oracle row shared from an earlier budget of the same training pool
    time_unreliable: str | None = None  # why its times measure no cost (e.g. a process paused mid-cell), by hand
    notes: dict[str, Any] = field(default_factory=dict)  # any other key written by hand, kept as written
    recipe: Recipe | None = None  # read from the cell's config.yaml (`finished_row`), not kept in result.json

    def get(self, score: Score) -> float | None:
        return self.scores.get(score)

    @property
    def mIoU(self) -> float | None:  # noqa: N802 (the metric's name)
        return self.scores.get(TEST)

    def score_names(self, on: str = "test", head: str = "") -> list[Score]:
        """This row's per-class IoU scores on `on` (of `head` alone), in their order."""
        return [s for s in self.scores if s.metric == "IoU" and s.on == on and s.head == head]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRow:
        named = {f.name for f in fields(cls)} - {"scores", "notes", "recipe"}
        scores, notes, values = {}, {}, {}
        for key, value in data.items():
            if key in named:
                values[key] = value
            elif (score := Score.parse(key)) is not None:
                if value is not None:
                    scores[score] = value
            else:
                notes[key] = value
        return cls(scores=scores, notes=notes, **values)

    def to_json(self) -> dict[str, Any]:
        """The flat `result.json` object: the row's identity, its scores (the best validation's as `val_mIoU`,
        null where none ran), its costs and sizes, then its notes."""
        data: dict[str, Any] = {"method": self.method, "budget": self.budget, "seed": self.seed}
        data |= {s.key: v for s, v in self.scores.items() if s.on == "test"}
        data["val_mIoU"] = self.scores.get(VAL)
        data |= {s.key: v for s, v in self.scores.items() if s.on not in ("test", "val")}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("method", "budget", "seed", "scores", "notes", "recipe") and value is not None:
                data[f.name] = value
        return data | self.notes

    def with_scores(self, scores: dict[Score, float]) -> CellRow:
        """A copy with `scores` added (a later `--also-on` set, the last validation's classes)."""
        return replace(self, scores=self.scores | scores)


def read_row(path: Path) -> CellRow:
    return CellRow.from_json(json.loads(path.read_text()))


def cell_folder(out: Path, method: str, budget: str, seed: int) -> Path:
    """Where a sweep keeps one cell's run: OUT/<method>/<budget>/seed<k>."""
    return out / method / budget / f"seed{seed}"


def row_folder(out: Path, row: CellRow) -> Path:
    """A row's cell folder (a shared oracle row's: the budget it was trained in)."""
    return cell_folder(out, row.method, row.same_as or row.budget, row.seed)


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
    if row.time_unreliable or str(row.device or "cpu").startswith("cuda"):
        return None
    return row.fit_cpu_seconds or row.fit_seconds


def last_val_classes(folder: Path) -> dict[Score, float]:
    """Per-class IoU of a run's last validation (val_metrics.json; self-training: the last round's student), as
    `val_last` scores: which classes the validation set can see at all. Empty where no validation ran."""
    path = cell_run(folder) / "val_metrics.json"
    per_class = json.loads(path.read_text()).get("per_class", {}) if path.is_file() else {}
    return {Score.iou(name, "val_last"): c["IoU"] for name, c in per_class.items() if c.get("IoU") is not None}


def best_val(folder: Path) -> float | None:
    """The best validation mIoU of a run (its best checkpoint's), from its log; self-training: the last round."""
    return best_validation(cell_run(folder) / "logs" / "metrics.csv")


def finished_row(folder: Path, row: CellRow | None = None) -> CellRow:
    """A finished cell's row: its result.json (or `row`, already read) with its best validation mIoU and the
    per-class IoU of its last validation (`val_last`), where the row does not hold them."""
    row = row or read_row(folder / "result.json")
    found = {VAL: v} if (v := best_val(folder)) is not None else {}
    row = replace(row, scores=found | last_val_classes(folder) | row.scores)
    return replace(row, recipe=cell_recipe(cell_run(folder)))


# what a recipe leaves out: where a run is (paths, the machine's loaders and precision), how long it trains and its
# seed (ranked or paired apart), and what follows from its data (band statistics)
_NOT_RECIPE = {
    "data": {"root", "split_file", "pseudo_labels", "num_workers", "cache", "channels", "mean", "std"},
    "train": {"steps", "seed", "accelerator", "devices", "num_nodes", "strategy", "precision", "loggers",
              "log_every", "progress", "deterministic"},
}  # fmt: skip


def cell_recipe(run: Path) -> Recipe | None:
    """A run's `Recipe` from its resolved config.yaml, read as a trained run's record (a setting added since
    takes the value the code had then: `load_config(saved=True)`), so a cell and its re-run under newer code
    still match; None where the config is missing or no longer reads."""
    try:
        cfg = load_config(RunFolder(run).config, saved=True)
    except (OSError, SemilandError, yaml.YAMLError):
        return None
    sections = {name: {k: v for k, v in asdict(getattr(cfg, name)).items() if k not in _NOT_RECIPE.get(name, ())}
                for name in ("data", "model", "method", "optim", "train")}  # fmt: skip
    return Recipe(cfg.method.name, cfg.data.oracle, json.dumps(sections, sort_keys=True, default=str))


def split_sizes(folder: Path) -> tuple[int, int]:
    path = next(iter(sorted(folder.rglob("split.json"))), None)  # self-training: round1/student/split.json
    split = json.loads(path.read_text()) if path else {}
    return len(split.get("labeled", [])), len(split.get("unlabeled", []))
