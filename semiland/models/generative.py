"""Networks of the generative semi-supervised methods (the review's §2; METHODS.md):

- `FCDiscriminator` (Hung et al. 2018): a class-probability map (B, K, H, W) → per-pixel confidence logits
  (B, 1, H, W): four 4×4 stride-2 convolutions with leaky ReLU, a 1-channel classifier, bilinear upsampling.
- `Generator` (Souly et al. 2017, DCGAN-like): a noise map (B, z, H/16, W/16) → an image (B, C, H, W), four
  ×2 up-convolutions; the output is tanh-bounded and mapped per band into a given [low, high] range, so
  generated images have the real images' band count and value range.
- `VariationalBranch` (the review's eq. 3): the shared encoder's deepest features → μ, log σ² (1×1 convs),
  a reparameterised sample z = μ + σ·ε, and a decoder (×2 upsampling + conv per stage) reconstructing the
  input bands at full resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FCDiscriminator(nn.Module):
    def __init__(self, num_classes: int, width: int = 64):
        super().__init__()
        chans = [num_classes, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(chans[-1], 1, 4, stride=2, padding=1)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        h, w = probs.shape[-2:]
        logits = self.classifier(self.features(probs))  # (B, 1, H/32, W/32)
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)  # (B, 1, H, W)


class Generator(nn.Module):
    def __init__(self, out_channels: int, z_channels: int = 64, width: int = 32):
        super().__init__()
        self.z_channels = z_channels
        chans = [z_channels, 8 * width, 4 * width, 2 * width, width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.body = nn.Sequential(*layers)
        self.to_image = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """z (B, z, h, w) → (B, C, 16h, 16w) with band c in [low[c], high[c]] (low / high: (C,))."""
        unit = torch.tanh(self.to_image(self.body(z)))  # (B, C, H, W) in (−1, 1)
        return low[None, :, None, None] + (unit + 1) / 2 * (high - low)[None, :, None, None]

    def noise(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        return torch.randn(batch, self.z_channels, max(1, height // 16), max(1, width // 16), device=device)


class VariationalBranch(nn.Module):
    def __init__(self, feature_channels: int, out_channels: int, latent: int = 32, stages: int = 5):
        super().__init__()
        self.mu = nn.Conv2d(feature_channels, latent, 1)
        self.logvar = nn.Conv2d(feature_channels, latent, 1)
        chans = [latent] + [max(16, latent // 2**i) for i in range(stages)]
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True))
            for cin, cout in zip(chans[:-1], chans[1:])
        )
        self.to_image = nn.Conv2d(chans[-1], out_channels, 3, padding=1)

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """Deepest features (B, F, h, w) → (reconstruction (B, C, H, W), μ, log σ²)."""
        mu, logvar = self.mu(features), self.logvar(features).clamp(-20, 20)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu  # reparameterisation
        for stage in self.up:
            z = stage(F.interpolate(z, scale_factor=2.0, mode="nearest"))
        return self.to_image(F.interpolate(z, size=size, mode="bilinear", align_corners=False)), mu, logvar
