"""Checkpoints: written atomically, read without executing pickled code (`weights_only=True`).

A semiland checkpoint is a Lightning checkpoint with a "semiland" entry: the resolved config, the class
table, the band statistics and the method name, so `test` and `predict` need nothing else.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from semiland.errors import SemilandError
from semiland.io import atomic_save

FORMAT = 1


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save, but to a temporary name renamed on success: a crash never leaves a
    truncated file under the checkpoint's name, and the previous good checkpoint survives."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        def save(tmp: Path) -> None:
            # Serialised in memory, then written: torch.save straight to a full disk fails with a RuntimeError
            # ("unexpected pos"), a plain write with OSError ENOSPC, which atomic_save turns into one clear line.
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            tmp.write_bytes(buffer.getbuffer())

        atomic_save(path, save)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a semiland checkpoint safely; every failure is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SemilandError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle, forbidden global: all unusable
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise SemilandError(f"checkpoint {path} is corrupt or truncated ({reason}); use another checkpoint") from None
    if not isinstance(ckpt, dict) or "semiland" not in ckpt or "state_dict" not in ckpt:
        raise SemilandError(f"{path} is not a semiland checkpoint (no 'semiland' entry)")
    meta = ckpt["semiland"]
    if isinstance(meta, dict) and meta.get("format") != FORMAT:
        raise SemilandError(f"{path} has checkpoint format {meta.get('format')}, this semiland reads {FORMAT}")
    bad = [k for k, kind in META_TYPES.items() if not isinstance(meta, dict) or not isinstance(meta.get(k), kind)]
    if bad or not isinstance(ckpt["state_dict"], dict):
        raise SemilandError(
            f"{path} is not a whole semiland checkpoint (missing or of the wrong type: "
            f"{', '.join(bad or ['state_dict'])}); use a checkpoint that semiland fit wrote"
        )
    return ckpt


# What `test`, `predict` and `--resume` read from a checkpoint's "semiland" entry, and its types
META_TYPES: dict[str, type | tuple[type, ...]] = {
    "format": int, "config": dict, "classes": dict, "method": str, "in_channels": int
}  # fmt: skip


# What `test`, `predict` and `load_task` read; the rest (optimizer moments, loop and callback states) only resumes
SLIM_KEYS = ("semiland", "state_dict", "global_step", "epoch", "pytorch-lightning_version")


def slim_checkpoint(path: str | Path) -> None:
    """Rewrite a finished run's checkpoint (atomically) without what only resuming needs: AdamW's two moments
    make a full checkpoint ~3× its weights. It still serves `test`, `predict` and `analyze --ckpt`, not
    `fit --resume`."""
    ckpt = read_checkpoint(path)
    slim = {k: v for k, v in ckpt.items() if k in SLIM_KEYS}
    atomic_save(path, lambda tmp: torch.save(slim, tmp))
