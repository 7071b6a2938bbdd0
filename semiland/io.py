"""Atomic file output and output-folder safety.

Every file semiland writes goes to a temporary name in the same folder and is renamed when complete,
so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from semiland.errors import SemilandError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs follow the user's umask
        os.replace(tmp_path, path)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):  # the previous file under `path`, if any, is untouched
            raise disk_full(path) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def disk_full(path: str | Path) -> SemilandError:
    """The one line for a write that ran out of space (the caller has removed its temporary file)."""
    return SemilandError(f"no space left on the device while writing {path}; free some space and re-run "
                         "(earlier outputs are intact)")  # fmt: skip


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON (RFC 8259, which has no NaN or Infinity): a non-finite number is written as null, so any
    JSON reader takes the file, not only Python's."""
    atomic_write_text(path, json.dumps(finite_or_none(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN / ±inf float (in dicts, lists, tuples, at any depth) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def atomic_save(path: str | Path, save: Callable[[Path], None]) -> None:
    """Call `save(tmp_path)` and move the result onto `path` when it returns."""
    with atomic_path(path) as tmp:
        save(tmp)


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create `folder` if needed and check we can write into it; raise one clear line otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SemilandError(f"cannot create output folder {folder}: {err.strerror}; choose another path") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SemilandError(f"output folder {folder} is not writable; choose another path or fix its permissions")
    return folder


@contextmanager
def output_folder(folder: str | Path) -> Iterator[Path]:
    """`ensure_writable_dir` for one command's outputs; if the command fails, the folders it created are
    removed again while still empty, so a refused input leaves no empty output folder behind."""
    folder = Path(folder)
    created, p = [], folder.absolute()
    while not p.exists():
        created.append(p)  # deepest first
        p = p.parent
    out = ensure_writable_dir(folder)
    try:
        yield out
    except BaseException:
        for d in created:
            try:
                d.rmdir()
            except OSError:  # something was written there: keep it
                break
        raise


def prepare_output_dir(folder: str | Path, overwrite: bool, what: str = "output folder") -> Path:
    """Refuse an existing non-empty folder unless `overwrite`; then create it (and check it is writable)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SemilandError(f"{what} {folder} exists and is a file; choose another path")
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise SemilandError(
                f"{what} {folder} already exists; pass --overwrite to replace it or choose another path"
            )
        shutil.rmtree(folder)
    return ensure_writable_dir(folder)


@contextmanager
def claim(path: str | Path) -> Iterator[bool]:
    """An exclusive claim on `path` (a lock file) for as long as the block runs: yields True when this process
    holds it, False when another live process does. The operating system releases the lock when its holder
    exits, however it exits (a killed sweep process leaves no stale claim). Where file locks do not exist
    (Windows), every claim succeeds: run one process per folder there."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)  # before the release: a later claimant opens a fresh file
            fcntl.flock(handle, fcntl.LOCK_UN)
