"""What semiland says while it works, at the verbosity `-q` / `-v` choose.

- Progress goes to stderr: a bar on a terminal; in a log (stderr not a terminal: nohup, CI, a scheduler's
  output file) a plain line at the start, every tenth of the way and at the end, instead of a bar's
  carriage-return redraws that pile up into one unreadable line.
- `info` lines (what data and model a run uses, resumptions) go to stdout.
- Results (metric tables, where the run folder and report are) and errors are always printed.
Levels: QUIET (`-q`: no progress, no info lines), NORMAL, VERBOSE (`-v`: also Lightning's and the libraries'
own messages, which semiland otherwise keeps out of the way of its tables).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

QUIET, NORMAL, VERBOSE = 0, 1, 2
_level = NORMAL


def set_verbosity(level: int) -> None:
    global _level
    _level = level


def verbosity() -> int:
    return _level


def info(message: str) -> None:
    """A line about the work (not its result): left out with -q."""
    if _level >= NORMAL:
        print(message, flush=True)


class LogLines(tqdm):
    """tqdm for a log: one plain line at the start, at each tenth of the total and at the end (with no
    total, at the start and the end); never a carriage return."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._shown: int | None = None  # the last tenth written
        kwargs.update(mininterval=0, dynamic_ncols=False, ascii=True)
        kwargs.setdefault("bar_format", "{desc}: {percentage:3.0f} % ({n_fmt}/{total_fmt}), {elapsed} elapsed, "
                                        "~{remaining} left, {rate_fmt}")  # fmt: skip
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # tqdm clearing its line: nothing to clear in a log
            return True
        tenth = int(10 * self.n / self.total) if self.total else 0
        if tenth != self._shown:
            self._shown = tenth
            self._write()
        return True

    def _write(self) -> None:
        if self.total:
            text = str(self)
        else:
            elapsed = self.format_interval(max(0.0, self._time() - getattr(self, "start_t", self._time())))
            text = f"{self.desc}: {self.n} {self.unit}, {elapsed} elapsed"
        self.fp.write(text + "\n")
        self.fp.flush()

    def close(self) -> None:
        if self.disable:
            return
        if self._shown != 10:  # the end, unless the last tenth already said it
            self._shown = 10
            self._write()
        self.disable = True
        self._decr_instances(self)


def progress_bar(iterable: Iterable[Any] | None = None, *, disable: bool = False, **kwargs: Any) -> tqdm:
    """A progress bar (tqdm's arguments) that follows the verbosity and writes plain lines in a log."""
    if sys.stderr.isatty():
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, disable=disable or _level == QUIET, file=sys.stderr, **kwargs)
    return LogLines(iterable, disable=disable or _level == QUIET, file=sys.stderr, **kwargs)
