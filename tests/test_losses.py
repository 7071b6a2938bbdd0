"""MiniFrance's auxiliary losses (§5.2, eqs. 6–12) against values worked out by hand."""

import pytest
import torch

from semiland.losses import kmeans_loss, l1_loss, l2_loss, mumford_shah_loss
from semiland.losses.clustering import soft_centroids

H, W = 4, 8


def two_halves(a: float = 0.2, b: float = 0.9) -> torch.Tensor:
    """(1, 1, H, W) image: value a on the left half, b on the right half."""
    x = torch.full((1, 1, H, W), a)
    x[..., W // 2 :] = b
    return x


def hard_logits(assign: torch.Tensor, k: int = 2, scale: float = 60.0) -> torch.Tensor:
    """(1, H, W) cluster indices → (1, k, H, W) logits whose softmax is one-hot to float precision."""
    return torch.nn.functional.one_hot(assign, k).permute(0, 3, 1, 2).float() * scale


def halves_assignment() -> torch.Tensor:
    assign = torch.zeros(1, H, W, dtype=torch.long)
    assign[..., W // 2 :] = 1
    return assign


ALL = torch.ones(1, H, W, dtype=torch.bool)


def test_reconstruction_losses():
    x = torch.randn(2, 3, H, W)
    assert l1_loss(x, x, ALL.expand(2, -1, -1)) == 0 and l2_loss(x, x, ALL.expand(2, -1, -1)) == 0
    assert l1_loss(x, x + 0.5, ALL.expand(2, -1, -1)) == pytest.approx(0.5)  # eq. 6
    assert l2_loss(x, x + 0.5, ALL.expand(2, -1, -1)) == pytest.approx(0.25)  # eq. 7
    valid = ALL.expand(2, -1, -1).clone()
    valid[:, 0] = False
    far = x.clone()
    far[:, :, 0] += 1000  # a nodata row reconstructed badly counts for nothing
    assert l1_loss(x, far, valid) == 0


def test_kmeans_is_zero_on_a_piecewise_constant_image_with_matching_memberships():
    assert kmeans_loss(two_halves(), hard_logits(halves_assignment()), ALL) < 1e-6


def test_kmeans_with_uniform_memberships():
    # ŷ = 0.5 everywhere: both centroids are the image mean, x_c = (a + b) / 2, so L_rec = |a − b| / 2 (eq. 10);
    # L_reg = Σ_k 0.5 · 0.5 = 0.5 (eq. 11).
    a, b = 0.2, 0.9
    loss = kmeans_loss(two_halves(a, b), torch.zeros(1, 2, H, W), ALL, alpha_rec=1.0, alpha_reg=1.0)
    assert loss == pytest.approx(abs(a - b) / 2 + 0.5, abs=1e-6)
    assert kmeans_loss(two_halves(a, b), torch.zeros(1, 2, H, W), ALL, alpha_reg=0.0) == pytest.approx(0.35)


def test_soft_centroids_ignore_nodata():
    x = two_halves(0.2, 0.9)
    y = hard_logits(halves_assignment()).softmax(1)
    valid = ALL.clone()
    x[..., 0, 0] = 1e6  # a nodata pixel with a wild value in cluster 0
    valid[..., 0, 0] = False
    c = soft_centroids(x, y, valid)  # (B, K, C)
    assert torch.allclose(c[0, :, 0], torch.tensor([0.2, 0.9]), atol=1e-5)


def test_mumford_shah_zero_on_constant_regions_with_hard_memberships():
    x = torch.full((1, 3, H, W), 0.7)
    assert mumford_shah_loss(x, hard_logits(torch.zeros(1, H, W, dtype=torch.long)), ALL) < 1e-6


def test_mumford_shah_on_two_regions():
    # Matching hard memberships: the data term is 0; total variation counts, in each of the H rows, one
    # jump of 1 in each of the 2 memberships: 2H over N = HW pixels = 2 / W (eq. 12 averaged over pixels).
    x, logits = two_halves(), hard_logits(halves_assignment())
    assert mumford_shah_loss(x, logits, ALL, alpha_reg=0.0) < 1e-6
    assert mumford_shah_loss(x, logits, ALL, alpha_rec=0.0, alpha_reg=1.0) == pytest.approx(2 / W, abs=1e-5)
    # one cluster for the whole image: no boundary, but the data term is the variance around the mean
    one = hard_logits(torch.zeros(1, H, W, dtype=torch.long))
    assert mumford_shah_loss(x, one, ALL, alpha_reg=1.0) == pytest.approx(((0.9 - 0.2) / 2) ** 2, abs=1e-5)


def test_losses_are_differentiable_in_the_memberships():
    logits = torch.zeros(1, 3, H, W, requires_grad=True)
    for loss in (kmeans_loss, mumford_shah_loss):
        logits.grad = None
        loss(two_halves(), logits + torch.randn_like(logits), ALL).backward()
        assert logits.grad.abs().sum() > 0
