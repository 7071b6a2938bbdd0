"""Training progress counted in training steps (`train.steps`), not in Lightning's "epochs" (here one
validation interval each): on a terminal one bar over the whole run; in a log (stderr not a terminal: nohup,
CI, a sweep's process) a plain line every tenth of the run instead of a bar's carriage-return redraws (a bar
wrote ~180 KB into the log of a 2000-step run).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from tqdm import tqdm

from semiland import console


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    """The latest training loss and validation mIoU Lightning holds (absent ones left out)."""
    found = {}
    for key, short in (("train/loss", "loss"), ("val/mIoU", "val mIoU")):
        value = trainer.callback_metrics.get(key)
        if value is not None:
            found[short] = float(value)
    return found


class StepProgress(L.Callback):
    """A bar (terminal) or a line every `line_every` steps (log) over the run's training steps; the bar
    refreshes every `refresh` steps. `terminal`: None = whether stderr is one. `stage` names the work (the bar's
    label, the lines' first word)."""

    def __init__(
        self,
        total: int,
        refresh: int = 5,
        line_every: int | None = None,
        terminal: bool | None = None,
        stage: str = "training",
    ):
        self.total, self.refresh, self.stage = total, max(1, refresh), stage
        self.line_every = line_every or max(1, total // 10)
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar: tqdm | None = None
        self.started, self.first = 0.0, 0
        self.silent = False

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.started, self.first = time.time(), pl_module.train_step  # a resumed run starts past 0
        self.silent = console.verbosity() == console.QUIET  # -q
        if self.terminal and not self.silent:
            self.bar = tqdm(total=self.total, initial=self.first, unit="step", desc=self.stage, file=sys.stderr,
                            dynamic_ncols=True)  # fmt: skip

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = pl_module.train_step
        if self.bar is not None:
            if step % self.refresh == 0 or step >= self.total:
                self.bar.update(step - self.bar.n)
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in _metrics(trainer).items()}, refresh=False)
        elif not self.silent and (step % self.line_every == 0 or step >= self.total):
            self._line(trainer, step)

    def _line(self, trainer: L.Trainer, step: int) -> None:
        elapsed = time.time() - self.started
        rate = (step - self.first) / elapsed if elapsed > 0 else 0.0
        left = f", ~{(self.total - step) / rate / 60:.1f} min left" if rate > 0 and step < self.total else ""
        shown = "".join(f", {k} {v:.3f}" for k, v in _metrics(trainer).items())
        print(f"{self.stage} step {step}/{self.total} ({100 * step / self.total:.0f} %), {rate:.2f} steps/s{left}{shown}",
              file=sys.stderr, flush=True)  # fmt: skip

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
