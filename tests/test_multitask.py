"""MiniFrance multi-task networks: every network × auxiliary loss trains, unlabeled images never reach the
segmentation-only layers, and prediction runs the segmentation path alone."""

import pytest
import torch

from semiland.losses import AUX_LOSSES
from semiland.methods.multitask import NETWORKS

from .test_methods import K, batches, make


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("loss", list(AUX_LOSSES))
def test_every_network_and_loss_trains(network, loss):
    method = make("multitask", 4, network=network, aux_loss=loss)
    labeled, unlabeled = batches(4)
    out = method.training_step(labeled, unlabeled, step=1)
    assert torch.isfinite(out["loss"]) and out["loss_unsup"] > 0
    out["loss"].backward()
    aux = method.auxiliary(unlabeled["image"])
    assert aux.shape == ((2, 4, 32, 32) if loss in ("l1", "l2") else (2, 32, 32))  # reconstruction or clusters
    assert method.predict(labeled["image"]).shape == (2, K, 32, 32)


SEG_ONLY = {"berunda_early": ("decoder.", "head."), "berunda_late": ("head.",)}


@pytest.mark.parametrize("network", NETWORKS)
def test_unlabeled_images_reach_only_the_auxiliary_and_shared_layers(network):
    method = make("multitask", 3, network=network, aux_loss="kmeans")
    _, unlabeled = batches(3)
    x, valid = unlabeled["image"], unlabeled["valid"]
    _, aux = method.model.multitask(x)
    assert torch.equal(method.model.auxiliary(x), aux)  # the unlabeled pass's shortcut gives the same output
    method.loss(x, aux, valid).backward()  # the loss of an unlabeled batch
    grads = {n: p.grad for n, p in method.model.named_parameters()}
    moved = {n for n, g in grads.items() if g is not None and g.abs().sum() > 0}
    seg_only = [n for n in grads if n.startswith(SEG_ONLY.get(network, ()))] if network in SEG_ONLY else []
    assert all(grads[n] is None for n in seg_only)  # segmentation-only layers: no gradient at all
    if network == "wnet":  # eq. 4: φ_u(φ_s(x)), the first network is shared entirely
        assert any(n.startswith("seg_net.") for n in moved) and any(n.startswith("aux_net.") for n in moved)
    else:
        assert seg_only and any(n.startswith("encoder.") for n in moved) and any(n.startswith("aux_") for n in moved)


@pytest.mark.parametrize("network", NETWORKS)
def test_prediction_runs_the_segmentation_path_alone(network):
    method = make("multitask", 3, network=network)
    aux_module = method.model.aux_net if network == "wnet" else method.model.aux_head
    calls = []
    aux_module.register_forward_hook(lambda *_: calls.append(1))
    method.eval()
    method.predict(torch.randn(1, 3, 32, 32))
    assert calls == []


def test_paper_defaults_for_lambda():
    assert make("multitask", 3, aux_loss="l1").weight == 2.0
    assert make("multitask", 3, aux_loss="mumford_shah").weight == 5.0
    assert make("multitask", 3, aux_loss="kmeans", lambda_u=1.5).weight == 1.5


@pytest.mark.parametrize(
    ("arch", "encoder"), [("segnet", ""), ("unet_original", ""), ("unet", "tu-test_resnet"), ("fpn", "tu-test_resnet")]
)
@pytest.mark.parametrize("network", NETWORKS)
def test_backbones_of_the_paper_and_smp(arch, encoder, network):
    from semiland.config import ModelConfig
    from semiland.methods import build_method
    from semiland.methods.base import MethodContext
    from semiland.models import build_model

    cfg = ModelConfig(arch=arch, encoder=encoder or "resnet18", width=4)
    ctx = MethodContext(K, 3, 255, 10, lambda in_channels=3, num_classes=K: build_model(cfg, in_channels, num_classes))
    method = build_method({"name": "multitask", "network": network}, build_model(cfg, 3, K), ctx)
    labeled, unlabeled = batches(3)
    method.training_step(labeled, unlabeled, step=1)["loss"].backward()
    assert method.predict(labeled["image"]).shape == (2, K, 32, 32)


@pytest.mark.parametrize(("loss", "panel"), [("l1", "reconstruction"), ("kmeans", "clusters")])
def test_report_shows_the_auxiliary_outputs(synth_root, tmp_path, loss, panel):
    from semiland.engine.runner import fit
    from semiland.report.run_report import build_run_report, evaluate_run, panel_rows

    from .conftest import tiny_config

    cfg = tiny_config(synth_root, method={"name": "multitask", "network": "wnet", "aux_loss": loss})
    result = fit(cfg, tmp_path / "run")
    outcome = evaluate_run(result, "multitask", 1.0)
    rows = panel_rows([outcome], result.data)
    assert rows and set(rows[0]["preds"]) == {"multitask", f"multitask: {panel}"}
    assert rows[0]["preds"][f"multitask: {panel}"].shape == (*rows[0]["truth"].shape[:2], 3)
    assert build_run_report(tmp_path, "t", [outcome], result.data, [], "cmd").is_file()
