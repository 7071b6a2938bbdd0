import pytest
import torch

from semiland.config import ModelConfig
from semiland.methods import build_method
from semiland.methods.base import MethodContext
from semiland.methods.perturb import (
    cutmix_box,
    invert_affine,
    mix,
    random_affine,
    strong_photometric,
    warp,
    warp_valid,
)
from semiland.methods.selection import masked_mse
from semiland.models import build_model


def test_warp_then_inverse_is_identity_on_the_valid_region():
    torch.manual_seed(0)
    h = w = 48
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    # bilinear resampling is exact for functions linear in the coordinates
    image = torch.stack([xx, yy, 0.3 * xx - 0.7 * yy + 0.2])[None].repeat(4, 1, 1, 1)
    theta = random_affine(4, image.device)
    inverse = invert_affine(theta)
    back = warp(warp(image, theta), inverse)
    valid = warp_valid(theta, inverse, h, w)
    assert valid.float().mean() > 0.2  # S4Net's ranges keep a good part of the image
    assert torch.allclose(back.permute(0, 2, 3, 1)[valid], image.permute(0, 2, 3, 1)[valid], atol=3e-4)


def test_affine_ranges_follow_the_paper():
    theta = random_affine(2000, torch.device("cpu"), translate=0.2, scale=(0.75, 1.25), rotate=15.0)
    linear = theta[:, :, :2]
    scale = 1 / torch.linalg.det(linear).sqrt()  # uniform scale s: det = 1 / s²
    assert scale.min() >= 0.75 - 1e-4 and scale.max() <= 1.25 + 1e-4
    assert theta[:, :, 2].abs().max() <= 0.4 + 1e-6  # ±0.2 of the size = ±0.4 in [-1, 1] coordinates
    angle = torch.atan2(linear[:, 1, 0], linear[:, 0, 0]) * 180 / torch.pi
    assert angle.abs().max() <= 15.0 + 1e-3


def test_s4net_identical_predictions_give_zero_consistency():
    model = build_model(ModelConfig(arch="tiny_unet", width=8), 3, 4)
    torch.nn.init.zeros_(model.head.weight)  # constant output: every view predicts the same distribution
    method = build_method({"name": "s4net"}, model, MethodContext(4, 3, 255, max_steps=10))
    labeled = {
        "image": torch.randn(2, 3, 32, 32),
        "mask": torch.zeros(2, 32, 32, dtype=torch.long),
        "valid": torch.ones(2, 32, 32, dtype=torch.bool),
    }
    unlabeled = {"image": torch.randn(2, 3, 32, 32), "valid": torch.ones(2, 32, 32, dtype=torch.bool)}
    out = method.training_step(labeled, unlabeled, step=5)
    assert out["loss_unsup"].item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("bands", [1, 4, 13])
def test_strong_photometric_is_band_agnostic(bands):
    x = torch.randn(3, bands, 16, 16)
    y = strong_photometric(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(x, y)


def test_strong_photometric_can_keep_the_spectrum():
    # one gain and bias for all bands: the bands of a sample move together (only the per-pixel noise parts them)
    torch.manual_seed(0)
    zero = torch.zeros(64, 3, 1, 1)
    spread = lambda v: (v - v.mean(1, keepdim=True)).abs().mean()  # noqa: E731 - band-to-band spread
    assert spread(strong_photometric(zero, blur_p=0.0, per_band=False)) < 0.5 * spread(strong_photometric(zero, 0.0))


def test_cutmix_boxes_and_mixing():
    torch.manual_seed(0)
    box = cutmix_box(64, 32, 32, torch.device("cpu"), p=1.0)
    area = box.float().mean((1, 2))
    assert (area > 0).all() and (area <= 0.45).all()
    a, b = torch.zeros(64, 2, 32, 32), torch.ones(64, 2, 32, 32)
    mixed = mix(a, b, box)
    assert torch.equal(mixed[:, 0].bool(), box) and torch.equal(mix(a[:, 0], b[:, 0], box).bool(), box)
    assert not cutmix_box(8, 32, 32, torch.device("cpu"), p=0.0).any()


def test_affine_views_map_a_pixelwise_model_back_onto_the_crop():
    """`bench targets --affine`: for a model whose class probabilities are a function of each pixel alone,
    S4Net's view mapped back is the plain prediction on the round trip's valid pixels (exact here: the
    probabilities are linear in the coordinates, which bilinear resampling preserves), so two views agree."""
    from semiland.bench.targets import affine_views

    class LogOf(torch.nn.Module):  # softmax(log p) = p: the "prediction" is the input itself
        def forward(self, x):
            return x.log()

    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 40), torch.linspace(-1, 1, 40), indexing="ij")
    a, b = 0.4 + 0.1 * xx, 0.3 - 0.1 * yy  # and 1 - a - b ≥ 0.1
    probs = torch.stack([a, b, 1 - a - b])[None].repeat(3, 1, 1, 1)  # (3, K=3, 40, 40), each pixel sums to 1
    back, valid = affine_views(LogOf(), probs)
    back_2, valid_2 = affine_views(LogOf(), probs)
    assert valid.float().mean() > 0.2 and not torch.equal(valid, valid_2)  # two different draws
    keep = valid[:, None].expand_as(probs)
    assert torch.allclose(back[keep], probs[keep], atol=3e-4)
    assert masked_mse(back, back_2, valid & valid_2) < 1e-6
