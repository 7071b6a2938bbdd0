"""The Method contract, parametrized over every registered method (a new method inherits these tests)."""

import pytest
import torch

from semiland.config import ModelConfig
from semiland.methods import METHODS, build_method
from semiland.methods.base import MethodContext, sigmoid_rampup
from semiland.models import build_model

K = 4


def make(name: str, bands: int):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny_unet", width=8), bands, K)
    return build_method({"name": name}, model, MethodContext(K, bands, 255, max_steps=10))


def batches(bands: int, seed: int = 0, all_ignore: bool = False):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, K, (2, 32, 32), generator=g)
    if all_ignore:
        mask[:] = 255
    labeled = {
        "image": torch.randn(2, bands, 32, 32, generator=g),
        "mask": mask,
        "valid": torch.ones(2, 32, 32, dtype=torch.bool),
    }
    unlabeled = {"image": torch.randn(2, bands, 32, 32, generator=g), "valid": torch.ones(2, 32, 32, dtype=torch.bool)}
    return labeled, unlabeled


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("bands", [1, 4, 13])
def test_finite_loss_and_gradients_reach_the_network(name, bands):
    method = make(name, bands)
    labeled, unlabeled = batches(bands)
    out = method.training_step(labeled, unlabeled if method.uses_unlabeled else None, step=3)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.parameters())
    assert method.predict(labeled["image"]).shape == (2, K, 32, 32)
    method.after_step(3)


@pytest.mark.parametrize("name", list(METHODS))
def test_all_ignore_masks_give_no_nan(name):
    method = make(name, 3)
    labeled, unlabeled = batches(3, all_ignore=True)
    out = method.training_step(labeled, unlabeled if method.uses_unlabeled else None, step=0)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list(METHODS))
def test_state_dict_round_trip(name):
    a, b = make(name, 3), make(name, 3)
    for p in b.parameters():
        p.data.add_(1.0)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(a.predict(x), b.predict(x))


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if m.uses_unlabeled])
def test_unsupervised_loss_depends_on_the_unlabeled_batch(name):
    method = make(name, 3)
    labeled, unlabeled = batches(3)
    _, other = batches(3, seed=1)
    torch.manual_seed(0)
    a = method.training_step(labeled, unlabeled, step=9)["loss"]
    torch.manual_seed(0)
    b = method.training_step(labeled, other, step=9)["loss"]
    assert not torch.isclose(a, b)


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 100) == pytest.approx(torch.exp(torch.tensor(-5.0)).item())
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(5, 0) == 1.0
    assert sigmoid_rampup(40, 100) < sigmoid_rampup(60, 100) < 1.0
