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
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "tile_3/image_part_001" in html and "land (unpaved area)" in html


def test_the_dubai_demo_is_the_method_sweeps_protocol_cut_short_with_a_pretrained_encoder():
    import yaml

    from semiland.paths import CONFIGS

    demo, sweep = (yaml.safe_load((CONFIGS / "dubai" / f"{n}.yaml").read_text()) for n in ("demo", "sweep"))
    assert demo["train"].pop("progress") and not sweep["train"].pop("progress")
    # fewer steps (15 minutes on a 2-core CPU without bf16) and precision auto; split, model, crops the same
    assert demo["train"].pop("precision") == "auto" and sweep["train"].pop("precision") == "32-true"
    assert demo["train"].pop("steps") < sweep["train"].pop("steps")
    demo["train"].pop("val_every"), sweep["train"].pop("val_every")
    # the demo's encoder is pretrained (the fold protocol's, issue #40); the sweep's stays from scratch
    assert (demo["model"].pop("encoder"), demo["model"].pop("encoder_weights")) == (
        "tu-tf_efficientnet_lite0",
        "imagenet",
    )
    sweep["model"].pop("encoder"), sweep["model"].pop("encoder_weights")
    assert demo == sweep
