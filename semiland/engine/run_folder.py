"""A run folder's layout, named once: what `semiland fit` writes and every other command reads.

<run>/config.yaml           the resolved config (band statistics, the split file's path)
<run>/split.json            the images of each part of the split
<run>/checkpoints/best.ckpt best by validation mIoU;  last.ckpt at every validation (resume)
<run>/pretrain/encoder.pt   the encoder self-supervised pretraining wrote (train.pretrain_steps > 0)
<run>/test/ (test-on-SET/)  metrics.json, confusion_matrix.png of `semiland test`
<run>/report.html           the run's report
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path


def evaluation_folder(on: str) -> str:
    """The run subfolder metrics on `on` go to: test/, or test-on-<on> (never over the test results)."""
    return "test" if on == "test" else "test-on-" + re.sub(r"[^\w.-]+", "+", on)


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def pretrained_encoder(self) -> Path:
        """The encoder `train.pretrain_steps` pretrained (a plain state dict: model.weights_path reads it)."""
        return self.path / "pretrain" / "encoder.pt"

    def evaluation(self, on: str = "test") -> Path:
        """Where `semiland test --on ON` writes (`evaluation_folder`)."""
        return self.path / evaluation_folder(on)

    def is_run(self) -> bool:
        return self.config.is_file()

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunFolder | None:
        """The run a checkpoint belongs to (`<run>/checkpoints/x.ckpt`), None when it lies elsewhere."""
        ckpt = Path(ckpt).resolve()
        run = cls(ckpt.parent.parent)
        return run if ckpt.parent.name == "checkpoints" and run.is_run() else None


def read_log(csv_path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Lightning's metrics.csv → {column: [(step, value), …]} for every non-empty numeric cell."""
    series: dict[str, list[tuple[float, float]]] = {}
    path = Path(csv_path)
    if not path.is_file():
        return series
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step = float(row.get("step") or 0)
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                try:
                    series.setdefault(key, []).append((step, float(value)))
                except ValueError:
                    continue
    return series


def best_validation(csv_path: str | Path) -> float | None:
    """The best validation mIoU in a run's metrics.csv (its best checkpoint's score); None where none ran."""
    return max((v for _, v in read_log(csv_path).get("val/mIoU", [])), default=None)
