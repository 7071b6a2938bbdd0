"""Slow tier (off by default; `make test-slow`): a short supervised run on synthetic scenes must learn."""

import json

import pytest
import yaml

from semiland.cli import main

from .conftest import tiny_config

pytestmark = pytest.mark.slow


def test_supervised_learns_synthetic_scenes(tmp_path):
    from semiland.data.synthetic import generate

    root = generate(tmp_path / "d", regions=6, images=4, size=128, bands=3)
    cfg = tiny_config(
        root,
        data={
            "synthetic_regions": 6,
            "synthetic_images": 4,
            "synthetic_size": 128,
            "labeled": ["region_0", "region_1"],
            "val": ["region_4"],
            "test": ["region_5"],
            "crop_size": 64,
            "batch_size": 8,
            "eval_tile": 128,
        },
        model={"arch": "tiny_unet", "width": 16},
        optim={"lr": 0.005},
        train={"steps": 300, "val_every": 100},
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["fit", "--config", str(path), "-o", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "test" / "metrics.json").read_text())
    # Stated threshold (docs/benchmarks.md): > 0.85 mIoU after 300 steps (measured 0.958); chance ≈ 0.2.
    assert metrics["mIoU"] > 0.85, metrics["mIoU"]
