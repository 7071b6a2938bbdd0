"""`semiland export`: a trained model as one ONNX file for deployment, the run's normalisation folded in.

The exported graph takes raw band values as the files hold them and needs nothing of semiland:

    image          (B, C, H, W) float32, the run's bands in its order (`data.bands`), NaN = no data;
                   H and W multiples of `tile_multiple` (metadata), e.g. tiles of `eval_tile` px
    probabilities  (B, K, H, W) float32, softmax over the K classes
    classes        (B, H, W) uint8, the most probable class; 255 where any band is NaN

What it maps is one tile: the sliding window, overlap blending and nodata values other than NaN stay with
the caller (`semiland predict` does all three). The file's metadata names the classes, their colours, the
bands, the band statistics that were folded in, the checkpoint and its SHA-256. The export is checked before
it is kept: ONNX Runtime must reproduce PyTorch's probabilities on a tile of band-typical values (max
difference below `TOLERANCE`), else nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semiland.engine.sliding import at_scale
from semiland.errors import SemilandError
from semiland.io import atomic_path, file_sha256, record_outputs, refuse_existing

NO_CLASS = 255
TOLERANCE = 1e-3  # probabilities, ONNX Runtime vs PyTorch (float32 kernels differ in the last bits)
OPSET = 18  # Resize with antialias (a model trained at data.scale ≠ 1)


class Deployable(nn.Module):
    """Raw bands → (probabilities, classes) for one tile: z-scores with the run's statistics (no data → 0, as
    in training), the method's prediction (at the run's `data.scale`), softmax and argmax."""

    def __init__(self, task: Any, head: str | None = None):
        super().__init__()
        d = task.cfg.data
        self.method, self.head = task.method, head
        self.register_buffer("mean", torch.tensor(d.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(d.std, dtype=torch.float32).view(1, -1, 1, 1))
        self.scale, self.multiple = d.scale, max(32, task.min_size)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = torch.isfinite(image).all(1, keepdim=True)  # (B, 1, H, W)
        z = torch.where(valid, (image - self.mean) / self.std, torch.zeros_like(image))
        logits = at_scale(self.method.predict_fn(self.head), self.scale, self.multiple)(z)  # (B, K, H, W)
        probs = logits.float().softmax(1)
        classes = torch.where(valid[:, 0], probs.argmax(1), torch.full_like(valid[:, 0], NO_CLASS, dtype=torch.long))
        return probs, classes.to(torch.uint8)


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's ONNX exporter translates with it)
    except ImportError as err:
        raise SemilandError(
            f"exporting to ONNX needs {err.name}: pip install 'semiland[export]' (onnx, onnxscript, onnxruntime)"
        ) from None
    return onnx, onnxruntime


def export_onnx(checkpoint: str | Path, out: str | Path, head: str | None = None, overwrite: bool = False) -> dict:
    """Write `out` (.onnx) from `checkpoint`; returns what was written (path, classes, bands, tile, max diff)."""
    from semiland.engine.runner import load_task

    out, checkpoint = Path(out), Path(checkpoint)
    if out.suffix.lower() != ".onnx":
        raise SemilandError(f"-o {out}: an ONNX file's name ends in .onnx")
    onnx, ort = _onnx_modules()
    refuse_existing([out], overwrite)
    task, cfg = load_task(checkpoint)
    d = cfg.data
    if len(d.channels or []) == 2 or d.simulate_sar:
        raise SemilandError(
            f"{checkpoint}: the model takes optical + SAR pairs, which `semiland export` does not cover yet; "
            "map pairs with `semiland predict --sar`"
        )
    if head is not None and head not in task.method.heads:
        raise SemilandError(f"--head {head}: the method {task.method.name} has no such part ({task.method.heads})")
    model = Deployable(task, head).eval()
    # two tiles of at least two blocks a side: torch.export would fix a size of 1 as a constant
    tile = max(2 * model.multiple, min(256, d.eval_tile) // model.multiple * model.multiple)
    rng = np.random.default_rng(0)
    mean, std = np.asarray(d.mean, np.float32), np.asarray(d.std, np.float32)
    noise = rng.standard_normal((2, len(mean), tile, tile)).astype(np.float32)
    sample = torch.from_numpy(mean[:, None, None] + std[:, None, None] * noise)  # band-typical raw values
    blocks = {2: torch.export.Dim("rows", min=1, max=4096), 3: torch.export.Dim("cols", min=1, max=4096)}
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024), **{a: model.multiple * b for a, b in blocks.items()}},)
    with torch.no_grad():
        want = model(sample)[0].numpy()
    with atomic_path(out) as tmp:
        try:
            program = torch.onnx.export(
                model, (sample,), dynamo=True, input_names=["image"], output_names=["probabilities", "classes"],
                dynamic_shapes=shapes, opset_version=OPSET, verbose=False,
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001  (the exporter raises many types; the user gets one line)
            raise SemilandError(f"ONNX export of {task.method.name} failed: {str(err).splitlines()[0][:300]}") from None
        proto = program.model_proto  # the metadata goes in before the one write
        meta = {
            "semiland_checkpoint": str(checkpoint.resolve()),
            "semiland_checkpoint_sha256": file_sha256(checkpoint),
            "method": task.method.name + (f" ({head})" if head else ""),
            "classes": json.dumps(list(task.classes.names)),
            "colors": json.dumps([list(c) for c in task.classes.colors]),
            "bands": json.dumps(d.bands) if d.bands else "all, in file order",
            "band_mean": json.dumps(list(d.mean)),
            "band_std": json.dumps(list(d.std)),
            "tile_multiple": str(model.multiple),
            "eval_tile": str(d.eval_tile),
            "no_data": "NaN in any band; classes 255 there",
        }
        onnx.helper.set_model_props(proto, meta)
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(["probabilities"], {"image": sample.numpy()})[0]
        diff = float(np.abs(got - want).max())
        if not diff < TOLERANCE:
            raise SemilandError(
                f"the exported model differs from PyTorch's by {diff:.2g} in probability (> {TOLERANCE}); "
                "nothing was written — please report this with the checkpoint's method and model"
            )
    record_outputs(out.parent, [out])
    return {"path": out, "classes": list(task.classes.names), "bands": len(d.mean), "multiple": model.multiple,
            "max_difference": diff}  # fmt: skip
