"""Appearance features of image sub-tiles, for the MiniFrance representativeness analysis (§4).

Two extractors, chosen by name:
- `timm:<model>` (e.g. `timm:resnet50`): the global-pooled features of a *pretrained* timm encoder, the
  paper's choice (ImageNet-style CNN features). Weights come from `weights` (a local state-dict file) or
  timm's download / cache. Without pretrained weights this extractor refuses: a random network's features
  say nothing about appearance.
- `stats`: the documented fallback, band-agnostic colour and texture statistics per band: mean, std,
  5 / 50 / 95 % quantiles, gradient-magnitude mean and std, and an 8-bin gradient-orientation histogram
  of the band mean (weighted by magnitude). Works for any band count, offline, fast.
`auto` (the default) uses `timm:tf_efficientnet_lite0` with the ImageNet weights a pip package ships
(models/pretrained.py: offline, the dependency semiland installs), else from local files only (the weights
file, or timm's cache), and falls back to `stats` with the reason recorded (never silently). The report says
which features were used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semiland.errors import SemilandError
from semiland.models.pretrained import OFFLINE_IMAGENET, load_offline_imagenet, offline_weights

AUTO_TIMM = "tf_efficientnet_lite0"  # ImageNet weights offline (models/pretrained.py)


@dataclass
class Extractor:
    name: str  # "stats" or "timm:<model>"
    note: str  # how it was obtained (shown in the report)
    model: object | None = None  # the timm network (eval mode) for "timm:"

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """tiles (N, C, S, S) float32 scaled to about [0, 1] per band, valid (N, S, S) → (N, D) float32."""
        if self.model is None:
            return np.stack([stats_features(t, v) for t, v in zip(tiles, valid, strict=True)])
        return _timm_features(self.model, tiles, valid)


def make_extractor(name: str, in_channels: int, weights: str = "") -> Extractor:
    if name == "stats":
        return Extractor("stats", "colour / texture statistics per band (no network)")
    if name == "auto":
        try:
            with _hub_offline():  # auto only looks in the local cache: no minute of download retries offline
                return _timm_extractor(AUTO_TIMM, in_channels, weights)
        except SemilandError as err:
            return Extractor("stats", f"colour / texture statistics per band: {err}")
    if name.startswith("timm:"):
        return _timm_extractor(name.removeprefix("timm:"), in_channels, weights)
    raise SemilandError(f"unknown feature extractor '{name}': use auto, stats or timm:<model name>")


@contextmanager
def _hub_offline() -> Iterator[None]:
    import huggingface_hub.constants as hub

    before = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before


def _timm_extractor(model_name: str, in_channels: int, weights: str) -> Extractor:
    import timm
    import torch

    try:
        if weights:
            path = Path(weights)
            if not path.is_file():
                raise SemilandError(f"feature weights file {path} not found (--weights)")
            model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_channels)
            state = torch.load(path, map_location="cpu", weights_only=True)
            own = model.state_dict()  # heads and a first conv made for other bands are left out
            state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            missing = model.load_state_dict(state, strict=False).missing_keys
            if len(missing) > len(state):
                raise SemilandError(f"{path} does not fit timm model '{model_name}' ({len(missing)} tensors missing)")
            note = f"timm {model_name}, weights from {path}"
        elif packaged := offline_weights(model_name):  # shipped by a pip package: no download, no cache
            model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_channels)
            load_offline_imagenet(model, model_name)  # every backbone tensor, checked by name and shape
            note = f"timm {model_name}, ImageNet weights from the {OFFLINE_IMAGENET[model_name][0]} package ({packaged.name})"
        else:
            model = timm.create_model(model_name, pretrained=True, num_classes=0, in_chans=in_channels)
            note = f"timm {model_name}, pretrained weights"
    except SemilandError:
        raise
    except RuntimeError as err:  # timm: unknown model
        raise SemilandError(f"timm model '{model_name}': {str(err).splitlines()[0]}") from None
    except Exception as err:  # noqa: BLE001 - offline download failures come in many types
        raise SemilandError(
            f"no pretrained weights for timm '{model_name}' ({type(err).__name__}: offline?); "
            "pass --weights FILE or --features stats"
        ) from None
    return Extractor(f"timm:{model_name}", note, model.eval())


def _timm_features(model: object, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(tiles * valid[:, None])  # invalid pixels 0
    # ImageNet statistics on [0, 1] inputs; bands beyond three reuse them cyclically
    mean = torch.tensor([0.485, 0.456, 0.406])[torch.arange(x.shape[1]) % 3]
    std = torch.tensor([0.229, 0.224, 0.225])[torch.arange(x.shape[1]) % 3]
    with torch.inference_mode():
        return model((x - mean[:, None, None]) / std[:, None, None]).float().numpy()  # type: ignore[operator]


def stats_features(tile: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """tile (C, S, S) in about [0, 1], valid (S, S) → (8 C + 8,) colour / texture statistics."""
    px = tile[:, valid] if valid.any() else tile.reshape(tile.shape[0], -1)
    q = np.quantile(px, [0.05, 0.5, 0.95], axis=1).T  # (C, 3)
    gy, gx = np.gradient(tile, axis=(1, 2))  # (C, S, S) each
    mag = np.hypot(gx, gy)
    # squared gradients keep a texture-contrast cue that the mean magnitude averages away
    band = [px.mean(1), px.std(1), *q.T, mag.mean((1, 2)), mag.std((1, 2)), (mag**2).mean((1, 2))]
    # texture direction: orientation histogram of the band-mean gradient, magnitude-weighted, normalised
    gym, gxm = gy.mean(0), gx.mean(0)
    angle = np.mod(np.arctan2(gym, gxm), np.pi)
    hist, _ = np.histogram(angle, bins=8, range=(0, np.pi), weights=np.hypot(gxm, gym))
    hist = hist / max(hist.sum(), 1e-8)
    return np.concatenate([*band, hist]).astype(np.float32)
