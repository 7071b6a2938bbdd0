"""DDP on CPU: two processes (gloo) through the real command line. Data shards across ranks and the
validation confusion matrix is reduced across them: every validation pixel is counted exactly once."""

import json
import subprocess
import sys

import yaml

from .conftest import tiny_config


def test_two_process_ddp_reduces_metrics(synth_root, tmp_path):
    cfg = tiny_config(
        synth_root, train={"steps": 2, "val_every": 2, "devices": 2, "strategy": "ddp", "accelerator": "cpu"}
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    run = tmp_path / "run"
    # 3 validation images over 2 ranks: an unequal shard, where padding samplers would double-count one
    cfg.data.val = ["region_1", "region_2"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "semiland",
            "fit",
            "--config",
            str(path),
            "-o",
            str(run),
            "data.val=[region_2]",
            "data.unlabeled=[region_1]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    val = json.loads((run / "val_metrics.json").read_text())
    assert val["pixels"] == 2 * 64 * 64  # region_2: 2 images of 64 × 64, counted once across both ranks
    test = json.loads((run / "test" / "metrics.json").read_text())
    assert test["pixels"] == 2 * 64 * 64
    assert (run / "checkpoints" / "last.ckpt").is_file()
