"""Self-supervised pretraining of the encoder (`train.pretrain_steps`, engine/pretrain.py)."""

import pytest
import torch
import yaml

from semiland.engine.pretrain import d4, d4_inverse
from semiland.errors import SemilandError
from semiland.losses.contrastive import dense_info_nce

from .conftest import write_config


def test_d4_inverse_undoes_each_of_the_eight():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    turned = {d4(x, k, f).flatten().tolist().__repr__() for k in range(4) for f in (False, True)}
    assert len(turned) == 8  # eight different views
    for k in range(4):
        for flip in (False, True):
            assert torch.equal(d4_inverse(d4(x, k, flip), k, flip), x)


def test_dense_info_nce_rewards_matching_positions():
    torch.manual_seed(0)
    z = torch.randn(2, 16, 4, 4)
    keep = torch.ones(2, 4, 4, dtype=torch.bool)
    matched = dense_info_nce(z, z + 0.05 * torch.randn_like(z), keep, 0.2)
    shuffled = dense_info_nce(z, z.roll(1, dims=2), keep, 0.2)  # each position meets another one
    assert matched < 0.5 < shuffled
    # positions without data take no part: only the kept ones are scored, and none kept is 0 with a graph
    z1 = torch.randn(1, 8, 2, 2, requires_grad=True)
    assert dense_info_nce(z1, z1, torch.zeros(1, 2, 2, dtype=torch.bool), 0.2).item() == 0.0
    part = torch.tensor([[[True, True], [False, False]]])
    noisy = z1.detach().clone()
    noisy[..., 1, :] = torch.randn(1, 8, 2)  # the dropped row differs, the kept row matches
    assert dense_info_nce(z1, noisy, part, 0.2).item() == pytest.approx(
        dense_info_nce(z1, z1.detach(), part, 0.2).item()
    )


def test_fit_pretrains_the_encoder_and_the_run_starts_from_it(tmp_path, synth_root):
    from semiland.cli import main

    cfg = write_config(
        tmp_path,
        synth_root,
        model={"arch": "unet", "encoder": "resnet18", "width": 4},
        optim={"lr": 1e-12},  # the run's own steps leave the weights where they started
        train={"pretrain_steps": 3, "steps": 2, "val_every": 2},
    )
    run = tmp_path / "run"
    assert main(["fit", "--config", str(cfg), "-o", str(run)]) == 0
    encoder = run / "pretrain" / "encoder.pt"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["weights_path"] == str(encoder.resolve())  # where the run lies, not a staging folder
    state = torch.load(encoder, weights_only=True)
    # batch norm learnt the images' statistics while pretraining (a fresh encoder's are all 0)
    assert state["bn1.running_mean"].abs().sum() > 0
    # the run's network started from that file (a random start would differ everywhere)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.allclose(ckpt["method.model.encoder.conv1.weight"], state["conv1.weight"], atol=1e-8)


def test_pretraining_needs_an_encoder(tmp_path, synth_root):
    from semiland.cli import main

    cfg = write_config(tmp_path, synth_root, train={"pretrain_steps": 3})  # tiny_unet: no encoder
    with pytest.raises(SemilandError, match="has no encoder to pretrain"):
        from semiland.api import fit

        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "run")]) == 2
