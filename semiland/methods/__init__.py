"""Method registry: an explicit list turned into a dict; an unknown name lists the valid ones."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from torch import nn

from semiland.config import build_dataclass
from semiland.errors import SemilandError
from semiland.methods.adversarial import Adversarial
from semiland.methods.base import Method, MethodConfig, MethodContext
from semiland.methods.cps import CPS, CPSPaper
from semiland.methods.dllr import DLLR
from semiland.methods.fixmatch import FixMatch, FixMatchPaper
from semiland.methods.gan import GAN
from semiland.methods.mean_teacher import MeanTeacher
from semiland.methods.multitask import MultiTask
from semiland.methods.network_modes import use_labeled_statistics
from semiland.methods.pseudo_label import PseudoLabel, PseudoLabelPaper
from semiland.methods.s4net import S4Net
from semiland.methods.self_training import SelfTraining
from semiland.methods.supervised import Supervised
from semiland.methods.unimatch import UniMatch, UniMatchPaper
from semiland.methods.vae import VAE

METHODS: dict[str, type[Method]] = {
    m.name: m
    for m in [
        Supervised,
        S4Net,
        MeanTeacher,
        PseudoLabel,
        PseudoLabelPaper,
        SelfTraining,
        FixMatch,
        FixMatchPaper,
        UniMatch,
        UniMatchPaper,
        CPS,
        CPSPaper,
        MultiTask,
        Adversarial,
        GAN,
        VAE,
        DLLR,
    ]  # fmt: skip
}


def method_class(name: str) -> type[Method]:
    if not isinstance(name, str) or name not in METHODS:
        raise SemilandError(f"unknown method '{name}'; available: {', '.join(METHODS)}")
    return METHODS[name]


def method_config(raw: dict[str, Any], saved: bool = False) -> MethodConfig:
    """Check a `method:` section against the method's Config dataclass. `saved`: the section is a trained run's
    record, so a setting it does not name is one the run predates: it takes the Config's `BEFORE` value (what
    the code did then) rather than today's default, and the run's saved network still fits."""
    raw = dict(raw)
    name = raw.get("name", "supervised")
    raw["name"] = name
    config = method_class(name).Config
    if saved:
        raw = {**getattr(config, "BEFORE", {}), **raw}
    return build_dataclass(config, raw, "method")


def build_method(cfg: MethodConfig | dict[str, Any], model: nn.Module, ctx: MethodContext) -> Method:
    """The method `cfg` names (a checked Config, as `Config.method` holds it, or a raw `method:` mapping)."""
    if isinstance(cfg, dict):
        cfg = method_config(cfg)
    method = method_class(cfg.name)(model, cfg, ctx)
    if getattr(cfg, "unlabeled_bn", "batch") == "labeled":  # after __init__: second networks exist by then
        use_labeled_statistics(method)
    return method


def describe(cls: type[Method]) -> str:
    doc = (cls.__doc__ or "").strip() or (sys.modules[cls.__module__].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def describe_config(cls: type[Method]) -> str:
    """A method's documentation (its module's and class's docstrings: the paper, the symbols, the defaults that
    depart from it) and its `method.*` keys with their defaults and the values they accept."""
    parts = [f"{cls.name}: {describe(cls)}", ""]
    module_doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    if module_doc:
        parts += [module_doc, ""]
    parts.append(f"method.* keys (method.name={cls.name}):")
    for f in dataclasses.fields(cls.Config):
        if f.name == "name":
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        low, high, above, below, _ = f.metadata.get("limits", (None, None, False, False, None))
        bounds = ""
        if low is not None:
            bounds = f"  [{low} {'<' if above else '≤'} x {'<' if below else '≤'} {high}]".replace(" inf]", " ∞]")
        parts.append(f"  {f.name} = {default!r}{bounds}")
    return "\n".join(parts)
