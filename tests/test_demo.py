"""`semiland demo`, the main job: the offline (synthetic) path and the real Dubai path, a few steps each."""

import pytest

from semiland.cli import main

from .conftest import DUBAI


def test_demo_falls_back_to_synthetic_scenes_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEMILAND_DATA", str(tmp_path / "no-data-here"))
    assert main(["demo", "--steps", "2", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "running on built-in synthetic scenes instead" in out and "supervised" in out
    from semiland.demo import DEMO_SSL

    assert f"== {DEMO_SSL}:" in out and (tmp_path / "demo" / DEMO_SSL / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "demo" / "report.html").is_file() and (tmp_path / "demo" / "figures" / "panels.png").is_file()
    assert main(["demo", "--steps", "2", "-o", str(tmp_path / "demo")]) == 2  # never overwrites unasked


def test_demo_refuses_a_data_path_that_is_not_dubai(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path), "-o", str(tmp_path / "d")]) == 2
    assert "is not a Dubai dataset folder" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.skipif(not DUBAI.is_dir(), reason=f"real data not found at {DUBAI}")
def test_demo_on_dubai(tmp_path, capsys):
    assert main(["demo", "--data", str(DUBAI), "--steps", "2", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "Dubai aerial imagery" in out and "labeled 2, unlabeled 52, val 9, test 9" in out
    # the closing table shows the validation score that chose each checkpoint beside the test tile's, and says
    # which cell of the fold protocol this split is
    closing = out.split("split:")[-1]
    assert "val mIoU" in closing and "nan" not in closing
    assert "region2-on-tile_3" in closing
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "tile_3/image_part_001" in html and "land (unpaved area)" in html


def test_the_dubai_demo_is_a_cell_of_the_fold_protocol():
    """The demo's two runs are the benchmark's region2-on-tile_3 seed-0 cells (sup_long / fmqa_long): the fold
    sweep's snapshot, that fold's split and the protocol's command-line overrides give the demo config."""
    from pathlib import Path

    from semiland.bench.folds import fold_budgets
    from semiland.engine.run_config import load_config
    from semiland.paths import CONFIGS

    snapshot = Path(__file__).parents[1] / "benchmarks" / "dubai-folds" / "sweep_config.yaml"
    tiles = [f"tile_{i}" for i in range(1, 9)]
    (fold,) = fold_budgets(tiles, [("region", 2)], ["tile_3"]).values()
    protocol = ["model.encoder=tu-tf_efficientnet_lite0", "model.encoder_weights=imagenet", "train.steps=1400"]
    cell = load_config(snapshot, [*fold, *protocol, "train.seed=0"]).to_dict()
    assert load_config(CONFIGS / "dubai" / "demo.yaml").to_dict() == cell
