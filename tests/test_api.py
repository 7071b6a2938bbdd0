"""The public Python API (semiland.fit / test / load → Model.predict): the same run folder as the CLI, maps of
arrays and files that agree with `semiland predict`, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

import semiland
from semiland.errors import SemilandError

from .conftest import write_config


def test_fit_from_python_writes_the_cli_run_folder_and_refuses_an_existing_one(synth_root, tmp_path, capsys):
    cfg = write_config(tmp_path, synth_root)
    run = semiland.fit(cfg, tmp_path / "run", ["train.steps=2"], train={"val_every": 2}, method={"name": "fixmatch"})
    for rel in ("config.yaml", "split.json", "checkpoints/best.ckpt", "test/metrics.json", "report.html"):
        assert (run.run_dir / rel).is_file(), rel
    assert (
        run.checkpoint == tmp_path / "run" / "checkpoints" / "best.ckpt"
        and run.report == tmp_path / "run" / "report.html"
    )
    assert 0 <= run.metrics["mIoU"] <= 1 and run.result.task.method.name == "fixmatch"
    assert "test images" in capsys.readouterr().out  # the CLI's table, printed by the same function
    with pytest.raises(SemilandError, match="already exists"):
        semiland.fit(cfg, tmp_path / "run")
    with pytest.raises(SemilandError, match="must be a dict"):
        semiland.fit(cfg, tmp_path / "other", train=200)
    metrics = semiland.test(run.checkpoint, tmp_path / "t", on="val")
    assert (tmp_path / "t" / "metrics.json").is_file() and metrics["evaluated_on"] == "val"


def test_a_loaded_model_maps_arrays_and_files_as_predict_does(trained, synth_root, tmp_path):
    model = semiland.load(trained / "checkpoints" / "best.ckpt")
    assert model.classes[0] == "building" and model.bands == 3 and "supervised" in repr(model)
    src = synth_root / "region_3" / "images" / "scene_000.tif"
    from_file = model.predict(src)
    with rasterio.open(src) as f:
        array = f.read()
    assert from_file.dtype == np.uint8 and from_file.shape == array.shape[1:]
    np.testing.assert_array_equal(model.predict(array), from_file)
    probs = model.predict(array, probabilities=True)
    assert probs.shape == (5, *array.shape[1:]) and np.allclose(probs.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), from_file)
    model.predict_file(src, tmp_path / "maps")
    with rasterio.open(tmp_path / "maps" / "scene_000_classes.tif") as out:
        agree = (out.read(1) == from_file).mean()
    assert agree > 0.99  # the streaming path blends strips; the same model and normalisation
    holes = array.astype(np.float32)
    holes[:, :5, :5] = np.nan  # no data
    assert (model.predict(holes)[:5, :5] == 255).all() and np.isnan(
        model.predict(holes, probabilities=True)[:, 0, 0]
    ).all()
    with pytest.raises(SemilandError, match="3 bands"):
        model.predict(array[:2])
