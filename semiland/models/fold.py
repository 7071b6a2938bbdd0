"""Inference-time folding of BatchNorm into the convolution that feeds it, in place.

In eval mode y = γ (W x + b − μ) / √(σ² + ε) + β is one convolution with W' = W γ/√(σ²+ε) and
b' = (b − μ) γ/√(σ²+ε) + β: folding removes one full read and write of every feature map per BatchNorm.
The pairs are found on a `torch.fx` trace of the module (which convolution's output goes only to which
BatchNorm); the module keeps its own structure (attributes, hooks, `model_parts`), only each folded
BatchNorm becomes an `nn.Identity`. Where fx cannot trace a module (data-dependent control flow), its
children are tried one by one.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode Conv2d → BatchNorm2d pair of `model` in place; returns how many were folded.

    Only for inference: the folded model is numerically the same function (up to float rounding) in eval mode,
    and no longer trainable as the original.
    """
    if model.training:
        raise ValueError("fold_batchnorm is for eval-mode models (call model.eval() first)")
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 — fx refuses data-dependent control flow (DeepLab's ASPP pooling, …)
        return sum(fold_batchnorm(child) for child in model.children())  # its parts may trace
    modules = dict(model.named_modules())
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")  # a module called twice is shared
    folded = 0
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        src = node.args[0] if node.args else None
        if not isinstance(bn, nn.BatchNorm2d) or not isinstance(src, fx.Node) or src.op != "call_module":
            continue
        conv = modules.get(src.target)
        usable = isinstance(conv, nn.Conv2d) and len(src.users) == 1 and calls[src.target] == calls[node.target] == 1
        if not usable or bn.running_mean is None or not bn.track_running_stats:
            continue
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        with torch.no_grad():
            conv.weight = weight
            conv.bias = bias
        parent, _, name = str(node.target).rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, nn.Identity())
        folded += 1
    return folded
