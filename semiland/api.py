"""The public Python API: what the command line does, callable from a notebook.

    import semiland
    run = semiland.fit("configs/dubai/demo.yaml", "runs/fm", method={"name": "fixmatch"}, train={"steps": 200})
    run.metrics["mIoU"], run.report                       # the same run folder and report as `semiland fit`
    model = semiland.load(run.checkpoint)
    classes = model.predict("scene.tif")                  # (H, W) uint8 class indices, 255 where no data
    probs = model.predict(array, probabilities=True)      # (K, H, W) float32 from a (C, H, W) array
    model.predict_file("scene.tif", "maps/")              # a georeferenced GeoTIFF, as `semiland predict`

`fit` and `test` are the functions the CLI's `fit` and `test` call; `predict_file` runs what `predict` runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semiland.config import Config
from semiland.data.raster import as_float_valid, read_image
from semiland.data.stats import normalise
from semiland.engine.run_config import load_config
from semiland.engine.runner import FitResult, RunInterrupted, is_rank_zero, load_task, plan_fit, run_fit
from semiland.errors import SemilandError
from semiland.inference.export import export_onnx
from semiland.inference.predict import PredictOptions, predict_files
from semiland.io import plan_output_folder, refuse_over_inputs, write_output_folder
from semiland.report.run_report import RunOutcome, build_run_report, evaluate_run, test_run

NO_CLASS = 255  # the class map's value where the input has no valid data (the GeoTIFFs' nodata too)


@dataclass
class Run:
    """A finished training run: its folder, best checkpoint, test metrics and report (as `semiland fit`)."""

    run_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    report: Path
    result: FitResult = field(repr=False)


def section_overrides(sections: dict[str, dict[str, Any]]) -> list[str]:
    """`train={"steps": 200}` → ["train.steps=200"]: keyword sections as `section.key=value` overrides (JSON
    values are YAML, so strings, numbers, lists and None keep their types)."""
    out = []
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise SemilandError(f"{section}= must be a dict of keys, e.g. {section}={{'key': value}}; got {values!r}")
        out += [f"{section}.{key}={json.dumps(value)}" for key, value in values.items()]
    return out


def run_inputs(cfg: Config, config: str | Path | None) -> list[str | Path]:
    """What a run reads: an `overwrite` must never replace a folder holding any of it."""
    d = cfg.data
    items: list[str | Path] = [config or "", d.root, d.split_file, d.pseudo_labels, cfg.model.weights_path]
    return [*items, *d.unlabeled_dirs]


def report_run(result: FitResult, started: float, command: str) -> tuple[RunOutcome, Path] | None:
    """After training: the best checkpoint tested, its table printed and the run's report written (rank 0;
    None in the other processes of a multi-device run)."""
    import torch.distributed as dist

    from semiland.engine.metrics import format_table

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # evaluation below runs in one process
    if not is_rank_zero():
        return None
    outcome = evaluate_run(result, result.task.method.name, time.time() - started)
    print(f"\n{outcome.label} — test images: {len(result.data.split.test)}")
    print(format_table(outcome.metrics))
    report = build_run_report(result.run_dir, f"semiland run — {outcome.label}", [outcome], result.data, [], command)
    return outcome, report


def fit(
    config: str | Path,
    out: str | Path,
    overrides: list[str] | None = None,
    *,
    overwrite: bool = False,
    command: str = "",
    write_dir_env: str | None = None,
    **sections: dict[str, Any],
) -> Run:
    """Train `config` (plus `overrides` and keyword sections, e.g. `train={"steps": 200}`) into the run folder
    `out`, test it and write its report. Every check runs before the folder is touched; an existing folder is
    refused unless `overwrite` (and then replaced only once the new run is whole)."""
    import os

    started = time.time()
    cfg = load_config(config, [*(overrides or []), *section_overrides(sections)])
    run_dir = Path(out).absolute()
    target = plan_output_folder(run_dir, overwrite, "run folder", run_inputs(cfg, config))
    plan = plan_fit(cfg, run_dir)  # every check before the folder is touched: a refused run leaves nothing
    if target.replace:
        refuse_over_inputs(run_dir, plan.data.spec.input_folders(), "run folder")
    try:
        with write_output_folder(target) as write_dir:
            if write_dir_env:  # multi-device runs: the workers write where rank 0 does
                os.environ[write_dir_env] = str(write_dir)
            result = run_fit(plan, write_dir)
            done = report_run(result, started, command or f"semiland.fit({str(config)!r})")
            assert done is not None  # one process here
            outcome, report = done
    except RunInterrupted:
        if target.replace:  # the replacement was written aside and is gone; the earlier run is as it was
            raise RunInterrupted(f"{run_dir} still holds the earlier run (the replacement was discarded)") from None
        raise
    final = lambda p: run_dir / Path(p).relative_to(write_dir)  # noqa: E731 - paths once renamed into place
    return Run(run_dir, final(result.best_ckpt), outcome.metrics, final(report), result)


def test(
    checkpoint: str | Path,
    out: str | Path,
    on: str = "test",
    overrides: list[str] | None = None,
    *,
    overwrite: bool = False,
) -> dict:
    """Evaluate a checkpoint on its run's test images (or `on`: val, unlabeled, REGION[,REGION…]); writes
    metrics.json and confusion_matrix.png into `out` (refused if it exists, unless `overwrite`: then replaced
    once the new results are whole) and returns the metrics."""
    target = plan_output_folder(Path(out), overwrite, "test folder", [checkpoint])
    with write_output_folder(target) as write_dir:
        return test_run(checkpoint, write_dir, overrides, on)[0]


class Model:
    """A trained model (from `load`): predicts class maps of arrays or image files, applying the run's band
    selection, normalisation and sliding window, and writes GeoTIFFs as `semiland predict`."""

    def __init__(self, checkpoint: str | Path):
        self.checkpoint = Path(checkpoint)
        self.task, self.cfg = load_task(self.checkpoint)
        d = self.cfg.data
        self.paired = len(d.channels or []) == 2 or d.simulate_sar
        self.mean = np.asarray(d.mean, np.float32)[:, None, None]
        self.std = np.asarray(d.std, np.float32)[:, None, None]

    @property
    def classes(self) -> list[str]:
        return list(self.task.classes.names)

    @property
    def bands(self) -> int:
        """The input's band count the model takes (after the run's `data.bands` selection)."""
        return len(self.cfg.data.mean)

    @property
    def method(self) -> str:
        return self.task.method.name

    def __repr__(self) -> str:
        return f"semiland.Model({self.method}, {self.bands} bands → {', '.join(self.classes)}; {self.checkpoint})"

    def predict(
        self,
        image: np.ndarray | str | Path,
        *,
        nodata: float | None = None,
        probabilities: bool = False,
        head: str | None = None,
    ) -> np.ndarray:
        """`image`: a (C, H, W) array of raw values (as the files hold them; NaN = no data, and `nodata` where
        every band equals it) or an image file (its nodata and the run's `data.bands` applied). Returns the
        class map (H, W) uint8 (255 where there is no valid input), or with `probabilities` (K, H, W) float32
        (NaN there). `head`: one of the method's parts alone (a DLLR branch)."""
        if self.paired:
            raise SemilandError(
                "this model takes optical + SAR pairs: use model.predict_file(optical, out_dir, sar=SAR_FILE), which "
                "reads and scales the SAR as in training"
            )
        if isinstance(image, (str, Path)):
            raster = read_image(image, self.cfg.data.bands)
            data, valid = raster.data, raster.valid
        else:
            arr = np.asarray(image)
            if arr.ndim != 3 or arr.shape[0] != self.bands:
                raise SemilandError(
                    f"the image must be a (bands, height, width) array with {self.bands} bands, got shape {arr.shape}"
                )
            data, valid = as_float_valid(arr, nodata)
        x = torch.from_numpy(normalise(data, valid, self.mean, self.std))[None]
        with torch.inference_mode():
            logits = self.task.predict_logits(x.to(self.task.device), head)[0].float().cpu()
        if probabilities:
            probs = logits.softmax(0).numpy()
            probs[:, ~valid] = np.nan
            return probs
        classes = logits.argmax(0).numpy().astype(np.uint8)
        classes[~valid] = NO_CLASS
        return classes

    def predict_file(
        self, image: str | Path, out_dir: str | Path, sar: str | Path | None = None, **options: Any
    ) -> dict[str, Any]:
        """`semiland predict` on one file (or folder): GeoTIFFs in `out_dir` with the input's georeferencing;
        `options` are `PredictOptions` fields (confidence maps: `extras={"confidence"}`, `cog=True`, …)."""
        opts = PredictOptions(**options, **({"sar": [str(sar)]} if sar is not None else {}))
        return predict_files(self.checkpoint, [str(image)], out_dir, opts)

    def export(self, path: str | Path, *, head: str | None = None, overwrite: bool = False) -> Path:
        """`semiland export`: this model as one ONNX file (raw bands in, probabilities and classes out; see
        `inference/export.py`), checked against PyTorch with ONNX Runtime before it is kept."""
        return export_onnx(self.checkpoint, path, head=head, overwrite=overwrite)["path"]


def load(checkpoint: str | Path) -> Model:
    """A trained model from its checkpoint (`<run>/checkpoints/best.ckpt`), read without executing pickled code."""
    return Model(checkpoint)
