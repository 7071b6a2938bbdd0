"""DDP on CPU: two processes (gloo) through the real command line. Data shards across ranks and the
validation confusion matrix is reduced across them: every validation pixel is counted exactly once."""

import json
import subprocess
import sys

import yaml

from .conftest import tiny_config, write_config


def fit_args(config, run) -> list[str]:
    """`semiland fit` as a module run, after the interpreter or the launcher."""
    return ["-m", "semiland", "fit", "--config", str(config), "-o", str(run)]


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
        [sys.executable, *fit_args(path, run), "data.val=[region_2]", "data.unlabeled=[region_1]"],
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


def test_two_nodes_started_by_torchrun_train_one_run(synth_root, tmp_path):
    """Multi-node as a cluster runs it: `torchrun` started once per node (here two "nodes" on this machine,
    gloo), each running the same command; only the first rank writes the run."""
    import os
    import socket
    from pathlib import Path

    train = {"steps": 2, "val_every": 2, "devices": 1, "num_nodes": 2, "strategy": "ddp", "accelerator": "cpu"}
    path = write_config(tmp_path, synth_root, train=train)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "run"
    torchrun = Path(sys.executable).parent / "torchrun"
    nodes = [
        subprocess.Popen(
            [
                str(torchrun),
                "--nnodes=2",
                "--nproc_per_node=1",
                f"--node_rank={n}",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                *fit_args(path, run),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        for n in (0, 1)
    ]
    try:
        outs = [node.communicate(timeout=300) for node in nodes]
    finally:  # a hung rendezvous must not outlive the test
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert f"run folder: {run}" in outs[0][0] and "run folder" not in outs[1][0]  # the second node only trained
    val = json.loads((run / "val_metrics.json").read_text())
    assert val["pixels"] == 2 * 64 * 64  # region_2's two images, each counted once across the two nodes
    assert (run / "checkpoints" / "best.ckpt").is_file()
