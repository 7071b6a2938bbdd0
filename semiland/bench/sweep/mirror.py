"""`bench sweep --mirror DIR`: a sweep's results kept where the machine's disk is not (a folder under version
control), and a sweep continued from them on another machine.

A sweep on a 2-core CPU takes tens of hours, across sessions and sometimes machines; its folder (`OUT`)
lives on one disk. The mirror holds every finished cell's small files — its row (`result.json`), resolved
config, split, training log, metrics, pseudo-label statistics — and no model or image, a few tens of kB a
cell. A sweep given `--mirror` copies each cell there as it finishes, and first copies into `OUT` every cell
the mirror has finished that `OUT` lacks: those count as finished (without their models: maps and
`--also-on` sets added later skip them, and a self-training cell retrains its teacher; `schedule.py`, `cells.py`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from semiland.bench.sweep.layout import ORACLE, CellRow, finished_row, row_folder
from semiland.bench.sweep.report import write_summary
from semiland.io import atomic_path

KEPT_SUFFIXES = (".json", ".csv", ".yaml", ".md")  # rows, metrics, logs, configs, splits, notes
MAX_KEPT_BYTES = 2_000_000  # a file above it is no summary (e.g. a prediction dump): left on the machine


def kept_files(folder: Path) -> list[Path]:
    """The small files of one cell folder worth keeping, relative to it."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in KEPT_SUFFIXES and p.stat().st_size <= MAX_KEPT_BYTES and ".tmp" not in p.name
    )


def mirror_cell(folder: Path, out: Path, mirror: Path) -> None:
    """Copy a finished cell's kept files to the same place under `mirror`, each whole or not at all. Its row
    is written last, so the mirror never holds a row without the files beside it."""
    dest = mirror / folder.relative_to(out)
    files = [f for f in kept_files(folder) if f != Path("result.json")] + [Path("result.json")]
    for rel in files:
        with atomic_path(dest / rel) as tmp:
            shutil.copyfile(folder / rel, tmp)


def mirror_rows(rows: list[CellRow], mirror: Path) -> list[CellRow]:
    """This call's `rows` with the rows of earlier calls that the mirror's summary holds, a call's row winning
    over an older one of the same cell (method, budget, seed). A sweep script makes several calls into one
    mirror (supervised first, then the methods, then another budget): the mirror's summary is of them all,
    not of the last call's plan. An earlier row whose cell is no longer finished there (removed to be trained
    again, say) is dropped; a shared oracle's row stands while the budget it was trained in has its cell."""
    path = mirror / "results.json"
    earlier = [CellRow.from_json(r) for r in json.loads(path.read_text())["runs"]] if path.is_file() else []
    mine = {(r.method, r.budget, r.seed): r for r in rows}
    merged = {}
    for r in earlier:  # in the summary's order; one this call read again is not read twice
        if (row_folder(mirror, r) / "result.json").is_file():
            key = (r.method, r.budget, r.seed)
            # an earlier row as its cell now reads: scores added since (last_val_classes), its recipe
            merged[key] = mine[key] if key in mine else finished_row(row_folder(mirror, r), r)
    merged.update(mine)
    return list(merged.values())


def mirror_summary(out: Path, mirror: Path, rows: list[CellRow], command: str) -> None:
    """The mirror's summary files: every cell its summaries have seen, with this call's rows (`mirror_rows`);
    its figures and HTML page are left out of version control (.gitignore)."""
    mirror.mkdir(parents=True, exist_ok=True)
    everything = mirror_rows(rows, mirror)
    methods = list(dict.fromkeys(["supervised", *(r.method for r in everything if r.method != ORACLE)]))
    write_summary(
        everything, methods, mirror, f"{command} (with the cells of earlier calls into this mirror)", quiet=True
    )
    shutil.copyfile(out / "sweep_config.yaml", mirror / "sweep_config.yaml")


def finished_in_mirror(folder: Path, out: Path, mirror: Path | None) -> Path | None:
    """The mirror's copy of the cell `folder` of `out` when the mirror holds it finished and `out` does not:
    another machine (a GPU lent for one call, say) finished it while this sweep ran."""
    if mirror is None or (folder / "result.json").is_file():
        return None
    kept = mirror / folder.relative_to(out)
    return kept if (kept / "result.json").is_file() else None


def restore_cell(kept: Path, folder: Path) -> bool:
    """A finished cell from the mirror at `folder` (absent), copied under a temporary name and renamed:
    processes of one sweep that start together may restore the same cell, and only one rename wins (False for
    the others); none removes what another put in place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.restoring-{os.getpid()}")
    shutil.copytree(kept, tmp, dirs_exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process restored it first
        shutil.rmtree(tmp)
        return False
    return True


def sync_mirror(out: Path, mirror: Path) -> tuple[list[Path], list[Path]]:
    """Before a sweep starts: copy into `out` every cell finished in `mirror` that `out` does not hold at all
    (one `out` holds unfinished may be training in a process beside this one: `train_cells` replaces it once it
    holds the cell's claim), with the mirror's `sweep_config.yaml` if `out` has
    none (so a changed protocol is still refused); copy to `mirror` every cell finished in `out` it lacks.
    Returns (cells restored into out, cells added to the mirror)."""
    restored, added = [], []
    if (mirror / "sweep_config.yaml").is_file() and not (out / "sweep_config.yaml").is_file():
        with atomic_path(out / "sweep_config.yaml") as tmp:  # never read half-written by a process beside this one
            shutil.copyfile(mirror / "sweep_config.yaml", tmp)
    for row in sorted(mirror.glob("*/*/seed*/result.json")):
        target = out / row.parent.relative_to(mirror)
        if not target.exists() and restore_cell(row.parent, target):
            restored.append(target)
    for row in sorted(out.glob("*/*/seed*/result.json")):
        if not (mirror / row.parent.relative_to(out) / "result.json").is_file():
            mirror_cell(row.parent, out, mirror)
            added.append(row.parent)
    return restored, added
