"""Class amounts of images without masks, estimated by a trained model (`--ckpt RUN/best.ckpt`).

The advisor's class terms (new classes, class amount) need to know what a candidate tile holds. A user
choosing which of many unlabeled tiles to annotate next has no masks for them, only a model trained on the
few labeled ones: its predicted classes stand in for the masks. Every image is predicted whole (sliding
window, as `semiland test` does), and each sub-tile of the inventory gets the predicted pixel count of
every class; a class under `MIN_SHARE` of a sub-tile's pixels counts as absent there (prediction noise would
otherwise make every class "present" everywhere). Cached in `OUT/cache/` beside the inventory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from semiland.analysis.inventory import Inventory
from semiland.console import progress_bar
from semiland.data.sources import DatasetSpec, SampleRef
from semiland.data.stats import normalise
from semiland.errors import SemilandError
from semiland.io import atomic_save

MIN_SHARE = 0.005  # of a sub-tile's valid pixels: predicted classes below this are noise


def estimated_counts(
    inv: Inventory, spec: DatasetSpec, refs: list[SampleRef], ckpt: str | Path, out: Path, progress: bool = True
) -> np.ndarray:
    """(N, K) predicted class pixel counts for every sub-tile of `inv` (all of them, masks or not)."""
    from semiland.engine.runner import load_task

    path = Path(ckpt)
    if not path.is_file():
        raise SemilandError(f"--ckpt {path} not found; give a checkpoint of a run on this dataset's classes")
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    key.update(np.ascontiguousarray(inv.boxes).tobytes() + "|".join(inv.ids).encode())
    cache = out / "cache" / f"estimated-{key.hexdigest()[:16]}.npy"
    if cache.is_file():
        return np.load(cache, allow_pickle=False)
    task, cfg = load_task(path)
    if list(task.classes.names) != list(spec.classes.names):
        raise SemilandError(
            f"--ckpt {path} predicts the classes {list(task.classes.names)}, the dataset has "
            f"{list(spec.classes.names)}; give a checkpoint trained on this dataset"
        )
    k = spec.classes.num_classes
    mean = np.asarray(cfg.data.mean, np.float32)[:, None, None]
    std = np.asarray(cfg.data.std, np.float32)[:, None, None]
    by_id = {r.id: r for r in refs}
    counts = np.zeros((len(inv.ids), k), np.int64)
    rows_of: dict[str, list[int]] = {}
    for i, image_id in enumerate(inv.ids):
        rows_of.setdefault(image_id, []).append(i)
    for image_id, rows in progress_bar(rows_of.items(), desc="estimate classes", unit="image", disable=not progress):
        s = spec.load(by_id[image_id], cfg.data.bands)
        if s.image.shape[0] != len(mean):
            raise SemilandError(
                f"{by_id[image_id].image} has {s.image.shape[0]} bands, the --ckpt model takes {len(mean)}"
            )
        x = torch.from_numpy(normalise(s.image, s.valid, mean, std))[None]
        with torch.no_grad():
            classes = task.predict_logits(x).argmax(1)[0]  # as `semiland test` evaluates: sliding, at data.scale
        classes = classes.numpy()
        for i in rows:
            r, c, h, w = inv.boxes[i]
            box, valid = classes[r : r + h, c : c + w], s.valid[r : r + h, c : c + w]
            n = np.bincount(box[valid].ravel(), minlength=k)[:k]
            counts[i] = np.where(n >= MIN_SHARE * max(valid.sum(), 1), n, 0)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, counts)

    atomic_save(cache, save)
    return counts
