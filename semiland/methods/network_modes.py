"""How networks run inside a training step: batch norm whose running statistics stay untouched by
unlabeled or perturbed passes (`bn_stats_frozen`), or that normalises those passes with the labeled pass's
statistics (`use_labeled_statistics`, `method.unlabeled_bn=labeled`); eval mode for teachers and targets
(`eval_mode`, `target_mode`, `method.target_bn`); parameters frozen for a loss through another network
(`params_frozen`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from semiland.errors import SemilandError


@contextmanager
def bn_stats_frozen(*models: nn.Module) -> Iterator[None]:
    """Forward passes inside still normalise with their own batch statistics (train mode) — or, after
    `use_labeled_statistics`, with the labeled pass's — but leave the batch-norm running statistics
    untouched, so those used at evaluation describe the inputs the supervised loss is trained on, not
    perturbed or warped unlabeled views."""
    norms = [m for model in models for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    # use_labeled_statistics: normalise with the labeled pass's statistics instead (not again when nested)
    relinked = [m for m in norms if hasattr(m, "labeled_stats") and "forward" not in m.__dict__]
    for m in norms:
        m.momentum = 0.0  # running = (1 − 0) · running + 0 · batch
    for m in relinked:
        m.forward = _labeled_forward(m)
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        for m in relinked:
            del m.forward  # back to the class's forward


def use_labeled_statistics(method: nn.Module) -> None:
    """`unlabeled_bn="labeled"`: every batch norm of `method` records the mean and variance of its input in
    each pass that updates its running statistics (train mode outside `bn_stats_frozen`: the labeled pass),
    and normalises the passes inside `bn_stats_frozen` (unlabeled views, targets) with them. Batch norm makes
    the supervised loss blind to the scale of the features; these passes share that invariance, since the
    statistics follow the features (gradients flow through them), where running statistics (eval mode) do
    not — an S4Net run with its unlabeled pass in eval mode collapsed to one class there."""
    for m in method.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not hasattr(m, "labeled_stats"):
            m.labeled_stats = None
            m.labeled_hook = m.register_forward_pre_hook(_record_labeled_stats)


def drop_labeled_statistics(module: nn.Module) -> None:
    """Undo `use_labeled_statistics` (a loaded run's network, when a diagnostic wants each batch's own)."""
    for m in module.modules():
        if hasattr(m, "labeled_stats"):
            m.labeled_hook.remove()
            del m.labeled_stats, m.labeled_hook


def _record_labeled_stats(m: nn.modules.batchnorm._BatchNorm, inputs: tuple[torch.Tensor, ...]) -> None:
    if m.training and m.momentum != 0:  # not inside bn_stats_frozen
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]  # per channel, over the batch and the pixels
        m.labeled_stats = (x.mean(dims), x.var(dims, unbiased=False))


def _labeled_forward(m: nn.modules.batchnorm._BatchNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        if not m.training:  # a teacher or an eval-mode target pass: running statistics, as ever
            return type(m).forward(m, x)
        if m.labeled_stats is None:
            raise SemilandError("method.unlabeled_bn=labeled: an unlabeled pass ran before any labeled one")
        mean, var = m.labeled_stats
        shape = (1, -1) + (1,) * (x.dim() - 2)  # (1, C, 1, 1) for images
        y = (x.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + m.eps)
        if m.affine:
            y = y * m.weight.view(shape) + m.bias.view(shape)
        return y.to(x.dtype)

    return forward


@contextmanager
def params_frozen(*modules: nn.Module) -> Iterator[None]:
    """Forward passes inside reach the modules' inputs but not their parameters: one network's loss through
    another (a segmenter fooling its discriminator) then trains only the first, in a single backward."""
    params = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in params:
            p.requires_grad_(flag)


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """The networks in eval mode inside (batch norm with its running statistics), their own mode restored
    after: a teacher's predictions (mean teacher, S4Net's EMA teacher) and `target_bn="running"`."""
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, training in zip(models, was_training):
            m.train(training)


@contextmanager
def target_mode(target_bn: str, *models: nn.Module) -> Iterator[None]:
    """Batch norm while the networks predict targets (`TargetConfig.target_bn`): eval mode, or train mode with
    the running statistics untouched."""
    with eval_mode(*models) if target_bn == "running" else bn_stats_frozen(*models):
        yield
