"""Atomic file output and output-folder safety.

Every file semiland writes goes to a temporary name in the same folder and is renamed when complete,
so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semiland.errors import SemilandError

# A temporary file's name carries its writer (host and process id), so a later run can tell a leftover of a
# killed process (removed) from a file another live process is writing (kept): `.map.tif.<host>-<pid>.<rand>.tmp`.
HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _owner_tag() -> str:
    return f"{HOST}-{os.getpid()}"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp", dir=path.parent)
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


def _writer_is_dead(tag: str) -> bool:
    """True when `tag` (host-pid) names a process of this host that no longer runs."""
    host, _, pid = tag.rpartition("-")
    if host != HOST or not pid.isdigit():
        return False  # another machine's (a shared disk) or not ours: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


STALE_TMP = re.compile(r"^\..+\.(?P<tag>[^.]+-\d+)\.[^.]+\.tmp(\.\w+)?$")  # + predict's .gtiff scratch


def remove_stale_temporaries(folder: str | Path, recursive: bool = False) -> int:
    """Remove the temporary files that killed semiland processes left in `folder` (and below it when
    `recursive`; not those of live processes, nor anything semiland did not name); returns how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.rglob(".*.tmp*") if recursive else folder.iterdir():
        m = STALE_TMP.match(p.name)
        if m and p.is_file() and not p.is_symlink() and _writer_is_dead(m["tag"]):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks (a checkpoint's identity in provenance tags and exports)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_text_file(path: Path, what: str) -> str:
    """A text file the user gave, as UTF-8; one line naming the file when it is not UTF-8 (e.g. Latin-1)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SemilandError(
            f"{what} {path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at position {err.start}); "
            "save it as UTF-8"
        ) from None
    except OSError as err:
        raise SemilandError(f"cannot read {what} {path}: {err.strerror}") from None


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


# Every folder semiland writes holds this manifest: what semiland wrote there (`files`), or that the whole folder
# is one semiland output (`whole`: a run, a demo, a subset). `--overwrite` replaces only what it names.
MANIFEST = ".semiland.json"


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def owns_folder(folder: str | Path) -> bool:
    """True when `folder` (not a link) is a whole semiland output (a run, demo, test, analysis or subset folder),
    or lies inside one (a run's test/ or checkpoints/)."""
    folder = Path(folder).absolute()
    return not folder.is_symlink() and any(_manifest(d).get("whole") is True for d in [folder, *folder.parents])


def recorded_files(folder: str | Path) -> set[str]:
    """The names of the files `record_outputs` listed in `folder`'s manifest (maps `predict` finished there)."""
    files = _manifest(Path(folder)).get("files")
    return set(files) if isinstance(files, list) else set()


def owns_file(path: str | Path) -> bool:
    """True when semiland wrote `path`: its folder's manifest names it, or it lies inside a semiland output folder."""
    path = Path(path).absolute()
    if path.is_symlink():
        return False
    files = _manifest(path.parent).get("files")
    return (isinstance(files, list) and path.name in files) or owns_folder(path.parent)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise manifest updates of processes writing into one folder (predict --workers, torchrun ranks)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one process per folder
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def record_outputs(folder: str | Path, paths: list[Path]) -> None:
    """Add finished files to `folder`'s manifest (after they are under their final names)."""
    folder = Path(folder)
    with _folder_lock(folder):
        manifest = _manifest(folder)
        files = manifest.get("files") if isinstance(manifest.get("files"), list) else []
        manifest["files"] = sorted({*files, *(Path(p).name for p in paths)})
        atomic_write_json(folder / MANIFEST, manifest)


def _mark_whole(folder: Path, what: str) -> None:
    atomic_write_json(folder / MANIFEST, {"whole": True, "what": what, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refuse_over_inputs(target: Path, inputs: list[str | Path], what: str) -> None:
    """One line if replacing `target` would touch the working directory or an input (or a folder holding one)."""
    real = target.resolve()
    if _inside(Path.cwd().resolve(), real):
        raise SemilandError(f"{what} {target} holds the working directory; choose another path")
    for item in inputs:
        if item and _inside(Path(item).resolve(), real):
            raise SemilandError(f"{what} {target} holds the input {item}; choose another path")


@dataclass
class OutputFolder:
    """A folder one command will write whole (`plan_output_folder` checked it; `write_output_folder` writes it)."""

    path: Path  # the final folder
    what: str  # "run folder", "subsample folder", … (for messages)
    replace: bool  # an earlier semiland output is there: replaced when the new one has succeeded


def plan_output_folder(
    folder: str | Path, overwrite: bool, what: str = "output folder", inputs: list[str | Path] = ()
) -> OutputFolder:
    """Check, writing nothing, that `folder` may receive a new output: new or empty, or (with `overwrite`) an
    earlier output of semiland's own that holds neither the working directory nor any input."""
    folder = Path(folder).absolute()
    if folder.is_symlink() and overwrite:
        raise SemilandError(f"{what} {folder} is a symbolic link; --overwrite replaces only real folders semiland "
                            "wrote: give the folder itself or another path")  # fmt: skip
    if folder.exists() and not folder.is_dir():
        raise SemilandError(f"{what} {folder} exists and is a file; choose another path")
    if not folder.is_dir() or not any(p.name != MANIFEST for p in folder.iterdir()):
        return OutputFolder(folder, what, False)
    if not overwrite:
        raise SemilandError(f"{what} {folder} already exists; pass --overwrite to replace it or choose another path")
    refuse_over_inputs(folder, list(inputs), what)
    if not owns_folder(folder):
        raise SemilandError(
            f"{what} {folder} was not written by semiland (no {MANIFEST} of a run in it): --overwrite replaces "
            "only semiland's own outputs; choose another path, or empty the folder yourself"
        )
    return OutputFolder(folder, what, True)


def _holds_checkpoint(folder: Path) -> bool:
    return any(folder.rglob("*.ckpt"))


@contextmanager
def write_output_folder(plan: OutputFolder, carry: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield the folder to write `plan`'s output into.

    A new folder is written in place and marked as semiland's; if the block fails, what it wrote is removed
    again unless it holds a checkpoint (work to resume). An earlier output is replaced by writing the new one
    aside (`.<name>.new-<host>-<pid>`) and swapping it in when the block succeeds: a failed or interrupted run
    leaves the earlier one as it was. `carry` names sub-folders of the earlier output (caches) that the new one
    starts from: hard-linked, which is safe because semiland replaces files by renaming, never in place."""
    final = plan.path
    if not plan.replace:
        created = not final.exists()
        ensure_writable_dir(final)
        _mark_whole(final, plan.what)
        try:
            yield final
        except BaseException:
            if created and not _holds_checkpoint(final):
                shutil.rmtree(final)
            elif not _holds_checkpoint(final):  # it was there, empty: empty it again
                for p in final.iterdir():
                    _remove(p)
            raise
        return
    parent = final.parent
    for stale in parent.glob(f".{glob.escape(final.name)}.new-*"):  # a replacement killed before its swap
        if stale.is_dir() and _writer_is_dead(stale.name.rpartition(".new-")[2]):
            shutil.rmtree(stale, ignore_errors=True)
    stage = parent / f".{final.name}.new-{_owner_tag()}"
    ensure_writable_dir(stage)
    _mark_whole(stage, plan.what)
    for name in carry:
        if (final / name).is_dir() and not (final / name).is_symlink():
            shutil.copytree(final / name, stage / name, copy_function=_link_or_copy)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = parent / f".{final.name}.old-{_owner_tag()}"
    os.rename(final, old)
    os.rename(stage, final)
    shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)


@contextmanager
def output_folder(folder: str | Path) -> Iterator[Path]:
    """`ensure_writable_dir` for one command's output files; if the command fails, the folders it created are
    removed again while still empty, so a refused input leaves no empty output folder behind. Stale temporary
    files of killed runs in it are removed first."""
    folder = Path(folder)
    created, p = [], folder.absolute()
    while not p.exists():
        created.append(p)  # deepest first
        p = p.parent
    out = ensure_writable_dir(folder)
    remove_stale_temporaries(out)
    try:
        yield out
    except BaseException:
        for d in created:
            try:
                if [c.name for c in d.iterdir()] == [MANIFEST]:
                    (d / MANIFEST).unlink()
                d.rmdir()
            except OSError:  # something was written there: keep it
                break
        raise


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Before a command writes these files: refuse any that exists unless `overwrite`, and never replace one
    that semiland did not write."""
    for path in paths:
        if not (path.exists() or path.is_symlink()):
            continue
        if not overwrite:
            raise SemilandError(f"{path} already exists; pass --overwrite to replace it or choose another -o")
        if path.is_dir() or not owns_file(path):
            raise SemilandError(f"{path} was not written by semiland: --overwrite replaces only semiland's own "
                                "outputs; choose another -o")  # fmt: skip


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
