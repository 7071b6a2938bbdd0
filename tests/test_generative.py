"""Generative methods (adversarial, GAN, VAE): who trains whom, generated images, the KL term, and the
instability alarms the engine raises."""

import pytest
import torch

from semiland.methods.vae import kl_to_standard_normal

from .test_methods import K, batches, make


def grads_of(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()]


@pytest.mark.parametrize(("name", "other", "own_key", "other_key"), [
    ("adversarial", "discriminator", "loss_segmenter", "loss_d"),
    ("gan", "generator", "loss_segmenter", "loss_g"),
])  # fmt: skip
def test_each_network_is_trained_by_its_own_loss_only(name, other, own_key, other_key):
    labeled, unlabeled = batches(3)
    for key, moved, still in ((own_key, "model", other), (other_key, other, "model")):
        method = make(name, 3)
        method.training_step(labeled, unlabeled, step=9)[key].backward()
        assert any(grads_of(getattr(method, moved))), f"{key} must train the {moved}"
        assert not any(grads_of(getattr(method, still))), f"{key} must not reach the {still}"


def test_discriminator_and_generator_have_their_own_optimizers():
    adv, gan = make("adversarial", 3), make("gan", 3)
    assert [g.name for g in adv.param_groups()] == ["main", "discriminator"] and adv.param_groups()[1].lr == 1e-4
    assert [g.name for g in gan.param_groups()] == ["main", "generator"]
    assert gan.predict(torch.randn(1, 3, 32, 32)).shape == (1, K, 32, 32)  # the fake class is dropped


@pytest.mark.parametrize("bands", [1, 4, 13])
def test_generated_images_have_the_input_bands_and_value_range(bands):
    method = make("gan", bands)
    low, high = torch.linspace(-2, 0, bands), torch.linspace(1, 3, bands)
    fake = method.generate(2, 64, 48, low, high)
    assert fake.shape == (2, bands, 64, 48)
    per_band = fake.transpose(0, 1).flatten(1)
    assert (per_band.min(1).values >= low - 1e-5).all() and (per_band.max(1).values <= high + 1e-5).all()


def test_vae_kl_is_zero_when_the_posterior_is_the_prior():
    zeros = torch.zeros(2, 8, 4, 4)
    assert kl_to_standard_normal(zeros, zeros) == 0
    assert kl_to_standard_normal(zeros + 1, zeros) == pytest.approx(0.5)  # ½ μ² with σ = 1
    assert kl_to_standard_normal(zeros, zeros + 1) == pytest.approx(0.5 * (torch.e - 2))  # ½ (σ² − log σ² − 1)


def test_vae_reconstructs_the_input_bands():
    method = make("vae", 4)
    labeled, unlabeled = batches(4)
    out = method.training_step(labeled, unlabeled, step=1)
    assert out["kl"] >= 0 and out["loss_rec"] > 0
    assert method.auxiliary(unlabeled["image"]).shape == (2, 4, 32, 32)


def test_engine_warns_once_when_the_discriminator_wins(capsys):
    from semiland.data.classes import ClassTable
    from semiland.engine.run_config import config_from_dict
    from semiland.engine.task import SegTask

    method = make("adversarial", 3)
    classes = ClassTable(names=tuple("abcd"), colors=tuple((k, k, k) for k in range(4)))
    task = SegTask(method, config_from_dict({"method": {"name": "adversarial"}}), classes, [0.0] * 3, [1.0] * 3)
    for step in range(120):
        task._watch({"d_accuracy": torch.tensor(1.0 if step >= 30 else 0.7), "loss_adv": torch.tensor(0.5)}, step)
    assert [w["step"] for w in task.warnings] == [79]  # 50 steps in a row above 99 %, reported once
    assert "discriminator wins completely" in capsys.readouterr().err


def test_report_plots_the_instability_signals_and_lists_warnings(synth_root, tmp_path):
    import json

    from semiland.engine.runner import fit
    from semiland.report.run_report import build_run_report, evaluate_run

    from .conftest import tiny_config

    result = fit(tiny_config(synth_root, method={"name": "adversarial"}), tmp_path / "run")
    (result.run_dir / "warnings.json").write_text(json.dumps([{"step": 3, "key": "d_accuracy", "message": "D won"}]))
    report = build_run_report(tmp_path, "t", [evaluate_run(result, "adv", 1.0)], result.data, [], "cmd")
    html = report.read_text()
    assert "training_health.png" in html and (tmp_path / "figures" / "training_health.png").is_file()
    assert "adv, step 3: D won" in html
