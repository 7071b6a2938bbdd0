"""Perturbations for semi-supervised methods, on normalised tensors of any band count.

Nothing here is RGB-specific: photometric changes act per band (gain, bias, noise, blur), so optical,
multispectral and SAR input are treated alike. Geometric warps come with their exact inverse (S4Net).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d


def _uniform(shape: tuple[int, ...], low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(shape, device=like.device, dtype=like.dtype).uniform_(low, high)


# The four flips of a (…, H, W) tensor as the dims to flip: identity, left-right, up-down, both (a half turn).
# Aerial and satellite images have no "up", so each is as natural a view as the image itself.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def random_flip(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weak view: the same random horizontal flip per sample of image (B, C, H, W) and valid (B, H, W)."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x), torch.where(
        flip[:, None, None], valid.flip(-1), valid
    )


def strong_photometric(
    x: torch.Tensor, blur_p: float = 0.5, strength: float = 1.0, per_band: bool = True
) -> torch.Tensor:
    """Per-sample, per-band contrast / brightness, Gaussian noise and blur on normalised data.

    x: (B, C, H, W), roughly zero-mean unit-variance per band. The changes are the band-agnostic
    counterparts of colour jitter: gain ∈ [1 − 0.4s, 1 + 0.4s], bias ∈ [−0.4s, 0.4s] (in band std units),
    noise σ ∈ [0, 0.15s] for strength s (1 by default), blur σ ∈ [0.1, 2] px with probability `blur_p`.
    Per-band gain and bias change band ratios: where classes differ mainly by their spectra, a lower
    strength keeps them apart (s = 0 and blur_p = 0: the identity); `per_band=False` draws one gain and one bias
    for all bands of a sample (brightness and contrast only: the spectrum's shape is kept).
    """
    b, c = x.shape[:2]
    c = c if per_band else 1
    gain = _uniform((b, c, 1, 1), 1 - 0.4 * strength, 1 + 0.4 * strength, x)
    bias = _uniform((b, c, 1, 1), -0.4 * strength, 0.4 * strength, x)
    out = x * gain + bias
    out = out + torch.randn_like(out) * _uniform((b, 1, 1, 1), 0.0, 0.15 * strength, x)
    blur = torch.rand(b, device=x.device) < blur_p
    if blur.any():
        sigma = _uniform((int(blur.sum()), 2), 0.1, 2.0, x)
        out[blur] = gaussian_blur2d(out[blur], (7, 7), sigma).to(out.dtype)  # bf16 under autocast (a convolution)
    return out


def cutmix_box(b: int, h: int, w: int, device: torch.device, p: float = 0.5) -> torch.Tensor:
    """(B, H, W) bool: a random box per sample (area 2–40 % of the image) with probability p, else empty."""
    boxes = torch.zeros(b, h, w, dtype=torch.bool, device=device)
    for i in range(b):
        if torch.rand(()) >= p:
            continue
        area = float(torch.empty(()).uniform_(0.02, 0.4)) * h * w
        ratio = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3))))
        bh, bw = min(h, int(math.sqrt(area / ratio))), min(w, int(math.sqrt(area * ratio)))
        top, left = int(torch.randint(0, h - bh + 1, ())), int(torch.randint(0, w - bw + 1, ()))
        boxes[i, top : top + bh, left : left + bw] = True
    return boxes


def mix(a: torch.Tensor, b: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Paste `b` into `a` inside `box` ((B, H, W) bool); works for images (B, C, H, W) and maps (B, H, W)."""
    m = box if a.dim() == box.dim() else box[:, None]
    return torch.where(m, b, a)


def random_affine(
    b: int,
    device: torch.device,
    translate: float = 0.2,
    scale: tuple[float, float] = (0.75, 1.25),
    rotate: float = 15.0,
) -> torch.Tensor:
    """(B, 2, 3) affine matrices in normalised coordinates (as `F.affine_grid` takes them).

    translate: fraction of height / width (S4Net: ±0.2); scale range (S4Net: 0.75–1.25); rotate: degrees (±15).
    """
    angle = torch.empty(b, device=device).uniform_(-rotate, rotate) * math.pi / 180
    s = torch.empty(b, device=device).uniform_(*scale)
    # normalised coordinates span [-1, 1], so a shift of `translate` of the size is 2 * translate
    t = torch.empty(b, 2, device=device).uniform_(-translate, translate) * 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    return torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)


def invert_affine(theta: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) → the inverse transforms (B, 2, 3)."""
    last = torch.tensor([0.0, 0.0, 1.0], device=theta.device, dtype=theta.dtype).expand(theta.shape[0], 1, 3)
    return torch.linalg.inv(torch.cat([theta, last], 1))[:, :2]


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear", padding: str = "zeros") -> torch.Tensor:
    """Resample (B, C, H, W) with `theta`: out(p) = x(θ p); outside the image is 0 (`padding="zeros"`) or
    the image mirrored (`"reflection"`, for network inputs: no blank borders to skew batch-norm statistics)."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def warp_valid(theta: torch.Tensor, inverse: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H, W) bool: pixels that survive warp then inverse warp (inside the image both ways)."""
    ones = torch.ones(theta.shape[0], 1, h, w, device=theta.device)
    return warp(warp(ones, theta), inverse)[:, 0] > 1 - 1e-4  # untouched by the zero padding
