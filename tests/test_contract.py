"""The contract of methods and models: every registered method with every model family trains a step, or is
refused in one line before training; never a traceback deep in a training step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semiland.engine.checkpoint import read_checkpoint
from semiland.engine.runner import plan_fit, run_fit
from semiland.errors import SemilandError
from semiland.methods import METHODS

from .conftest import tiny_config
from .test_optical_sar import floods_fixture

pytestmark = pytest.mark.filterwarnings("ignore")

FAMILIES = {
    "smp_unet": {"arch": "unet", "encoder": "resnet18", "encoder_weights": None},
    "smp_deeplabv3plus": {"arch": "deeplabv3plus", "encoder": "resnet18", "encoder_weights": None, "width": 16},
    "segnet": {"arch": "segnet", "width": 8},
    "unet_original": {"arch": "unet_original", "width": 4},
    "s4net_unet": {"arch": "s4net_unet", "width": 16},
    "tiny_unet": {"arch": "tiny_unet", "width": 8},
}
# The pairs that are refused, and why: a change to this set is a change to the contract.
UNSUPPORTED = {(m, "segnet"): "pooling indices, not feature maps" for m in ("unimatch", "unimatch_paper")}


@pytest.fixture(scope="module")
def floods(tmp_path_factory) -> Path:
    return floods_fixture(tmp_path_factory.mktemp("floods") / "s", chips=("Spain_1",))


def _config(method: str, family: str, synth_root: Path, floods: Path, tmp: Path):
    common = {"model": FAMILIES[family], "method": {"name": method}, "train": {"steps": 1, "val_every": 1}}
    if method == "dllr":  # optical + SAR pairs
        cfg = tiny_config(floods, data={"tile_grid": 4, "split_mode": "count", "labeled": 4, "val": 2, "test": 4,
                                        "unlabeled": 4}, **common)  # fmt: skip
        cfg.data.preset = "sen1floods11"
        return cfg
    data: dict = {"unlabeled": ["region_1"]}
    if method == "self_training":  # a student trains on saved pseudo-labels (index masks per unlabeled image)
        for image in sorted((synth_root / "region_1" / "images").iterdir()):
            path = tmp / "pseudo" / "region_1" / f"{image.stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.random.default_rng(0).integers(0, 5, (64, 64), dtype=np.uint8)).save(path)
        data["pseudo_labels"] = str(tmp / "pseudo")
    return tiny_config(synth_root, data=data, **common)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_with_every_model_family_or_says_why_not(method, family, synth_root, floods, tmp_path):
    cfg = _config(method, family, synth_root, floods, tmp_path)
    if (method, family) in UNSUPPORTED:
        with pytest.raises(SemilandError, match=UNSUPPORTED[method, family]) as err:
            plan_fit(cfg, tmp_path / "run")  # refused before anything is written
        assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
        return
    result = run_fit(plan_fit(cfg, tmp_path / "run"), tmp_path / "run")
    assert read_checkpoint(result.last_ckpt)["global_step"] >= 1


@pytest.mark.parametrize("method", METHODS)
def test_resume_is_exact_for_every_method(method, synth_root, floods, tmp_path, monkeypatch):
    """A run that crashed and resumed ends with the weights of the uninterrupted run, bit for bit: every random
    draw of a step (views, CutMix boxes, noise) comes from generators seeded by (seed, rank, step)."""
    from semiland.engine.task import SegTask

    def config(split_from: Path | None = None):
        cfg = _config(method, "tiny_unet", synth_root, floods, tmp_path)
        cfg.train.steps, cfg.train.val_every = 4, 2
        if split_from is not None:
            cfg.data.split_mode, cfg.data.split_file = "file", str(split_from / "split.json")
        return cfg

    straight = run_fit(plan_fit(config(), tmp_path / "straight"), tmp_path / "straight")
    original = SegTask.training_step

    def crash_at_step_3(self, batch, batch_idx):
        if self.train_step == 3:
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SegTask, "training_step", crash_at_step_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_fit(plan_fit(config(), tmp_path / "crashed"), tmp_path / "crashed")
    monkeypatch.setattr(SegTask, "training_step", original)
    torch.manual_seed(12345)  # whatever the process drew before: the resumed steps draw their own numbers
    crashed = tmp_path / "crashed"
    resumed = run_fit(plan_fit(config(crashed), crashed, resume=True), crashed)
    a, b = read_checkpoint(straight.last_ckpt)["state_dict"], read_checkpoint(resumed.last_ckpt)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
