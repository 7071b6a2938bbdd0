"""Model registry: an explicit table name → (builder, description); `build_model` is the only entry point.

Every model maps (B, in_channels, H, W) → logits (B, num_classes, H, W) for H, W divisible by 32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor, nn

from semiland.config import ModelConfig
from semiland.errors import SemilandError
from semiland.models import factory, s4net_unet, segnet, tiny, unet_original


class ModelEntry(NamedTuple):
    build: Callable[[ModelConfig, int, int], nn.Module]
    description: str
    min_size: int = 32  # smallest input side the architecture accepts (tiles are never smaller)


MODELS: dict[str, ModelEntry] = {
    **{
        name: ModelEntry(factory.smp_builder(name), f"segmentation-models-pytorch {cls}", 128 if name == "pan" else 32)
        for name, cls in factory.SMP_ARCHS.items()
    },
    "s4net_unet": ModelEntry(s4net_unet.build, "S4Net U-Net: ResNet-50 encoder + the decoder of its Table 1"),
    "segnet": ModelEntry(segnet.build, "SegNet (Badrinarayanan et al.), VGG-16-style; model.width=64 is the original"),
    "unet_original": ModelEntry(
        unet_original.build,
        "the original U-Net (Ronneberger et al.), no pretrained encoder; model.width=64 is the paper's",
    ),
    "tiny_unet": ModelEntry(tiny.build, "a two-level U-Net of a few thousand parameters (tests, smoke runs)"),
}


def uses(arch: str) -> set[str]:
    """The model.* keys an architecture reads (weights_path: any encoder, loaded by name and shape)."""
    if arch in factory.SMP_ARCHS:
        return {"encoder", "encoder_weights", "weights_path", *(["width"] if arch in factory.WIDTH_ARCHS else [])}
    return {"s4net_unet": {"encoder", "encoder_weights", "weights_path"}}.get(arch, {"width", "weights_path"})


def check_model_keys(cfg: ModelConfig) -> None:
    """A key set away from its default that the architecture never reads is refused, not silently ignored."""
    defaults = ModelConfig()
    ignored = [
        f"model.{k}={getattr(cfg, k)}"
        for k in ("encoder", "encoder_weights", "width")
        if k not in uses(cfg.arch) and getattr(cfg, k) != getattr(defaults, k)
    ]
    if ignored:
        raise SemilandError(
            f"{', '.join(ignored)} has no effect on model.arch={cfg.arch} (it reads model."
            f"{', model.'.join(sorted(uses(cfg.arch) - {'weights_path'}))}); remove {'it' if len(ignored) == 1 else 'them'} "
            "or choose an architecture that uses it"
        )


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    if cfg.arch not in MODELS:
        raise SemilandError(f"unknown model.arch '{cfg.arch}'; available: {', '.join(MODELS)}")
    model = MODELS[cfg.arch].build(cfg, in_channels, num_classes)
    if cfg.weights_path:
        factory.load_encoder_weights(model, cfg.weights_path)
    for module in (model, _head_of(model)):
        if isinstance(module, nn.Module):  # the head too: UniMatch decodes features without model.forward
            module.register_forward_hook(_float_outputs)
    return model


def _head_of(model: nn.Module) -> nn.Module | None:
    """The final layer that maps decoder features to logits (smp names it `segmentation_head`)."""
    return getattr(model, "segmentation_head", None) or getattr(model, "head", None)


def _float_outputs(_module: nn.Module, _inputs: object, output: object) -> object:
    """Logits leave the network as float32 under bf16 / fp16 autocast (train.precision=bf16-mixed).

    On CPU, autocast runs softmax in its input's dtype; confidence thresholds and consistency MSE on bf16
    probabilities (8 mantissa bits) would be coarse. A no-op (the same tensors) in float32.
    """
    if isinstance(output, Tensor):
        return output.float()
    if isinstance(output, tuple | list):
        return type(output)(o.float() if isinstance(o, Tensor) else o for o in output)
    return output


class Parts(NamedTuple):
    """A segmentation network as three modules: logits = head(decoder(encoder(x)))."""

    encoder: nn.Module
    decoder: nn.Module
    head: nn.Module


def model_parts(model: nn.Module) -> Parts:
    """The (encoder, decoder, head) of any registered architecture (smp names its head `segmentation_head`)."""
    head = _head_of(model)
    if isinstance(getattr(model, "encoder", None), nn.Module) and isinstance(model.decoder, nn.Module) and head:
        return Parts(model.encoder, model.decoder, head)
    raise SemilandError(f"{type(model).__name__} has no encoder / decoder / head split")


def split_model(model: nn.Module) -> tuple[Callable[[Tensor], list[Tensor]], Callable[[list[Tensor]], Tensor]]:
    """(encode, decode) of an encoder–decoder model, for methods that perturb features (UniMatch)."""
    encoder, decoder, head = model_parts(model)
    if not getattr(encoder, "feature_maps", True):
        raise SemilandError(
            f"{type(model).__name__} passes pooling indices, not feature maps, from its encoder to its decoder: "
            "a method that perturbs features (unimatch) needs model.arch=unet (or another smp architecture), "
            "s4net_unet, unet_original or tiny_unet"
        )
    return encoder, lambda features: head(decoder(features))
