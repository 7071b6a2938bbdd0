"""Loading a whole run config: a YAML file plus `section.key=value` overrides, every section checked — the
method section against that method's `Config` (semiland.methods), which is why this module stands above the
methods while `semiland.config` (the sections' dataclasses, YAML and override parsing) stands below them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from semiland.config import SECTIONS, Config, build_dataclass, merge, parse_overrides, safe_yaml, suggest_key
from semiland.errors import SemilandError
from semiland.io import read_text_file
from semiland.methods import METHODS, method_config
from semiland.paths import CONFIGS


def config_from_dict(raw: dict[str, Any], saved: bool = False) -> Config:
    """Check a raw mapping (from YAML + overrides) and build a `Config`; the method section is checked too.
    `saved`: the mapping is a run's own record (its config.yaml, a checkpoint): a method setting added after the
    run was trained takes the value the code had then, not today's default (`methods.method_config`)."""
    if not isinstance(raw, dict):
        raise SemilandError("a config file must be a YAML mapping with sections data, model, method, optim, train")
    valid_sections = [*SECTIONS, "method"]
    for section in raw:
        if section not in valid_sections:
            raise SemilandError(f"unknown config section '{section}'{suggest_key(section, valid_sections)}")
    kwargs: dict[str, Any] = {
        name: build_dataclass(cls, {} if raw.get(name) is None else raw[name], name) for name, cls in SECTIONS.items()
    }  # an empty section (None in YAML) means every default; anything else must be a mapping
    method = {"name": "supervised"} if raw.get("method") is None else raw["method"]
    if not isinstance(method, dict):
        raise SemilandError(f"config section 'method' must be a mapping of key: value, got {method!r}")
    kwargs["method"] = method_config(method, saved)
    return Config(**kwargs)


def config_path(path: str | Path) -> Path:
    """A config file, or the name of a shipped one: `dubai/region` is configs/dubai/region.yaml from any
    folder. Not found: one line naming the shipped configs of that dataset (or the datasets), and where the
    name is a method's (a shipped config is a protocol, not a method), how to choose the method instead."""
    path = Path(path)
    if path.is_file():
        return path
    shipped = CONFIGS / path.with_suffix(".yaml") if path.suffix in ("", ".yaml") else None
    if shipped is not None and shipped.is_file():
        return shipped
    folder = CONFIGS / path.parent if path.parent != Path(".") else None
    hint = ""
    if folder is not None and folder.is_dir():
        names = ", ".join(f"{path.parent}/{p.stem}" for p in sorted(folder.glob("*.yaml")))
        if path.stem in METHODS:  # a shipped config is a protocol; the method is one of its keys
            hint = (
                f"; a method is chosen with method.name=, e.g. --config {path.parent}/<config> method.name={path.stem}"
            )
    else:
        names = ", ".join(p.name for p in sorted(CONFIGS.iterdir()) if p.is_dir())
        names = f"the datasets of {CONFIGS}: {names}"
    raise SemilandError(f"config file {path} not found; give a YAML file or a shipped config ({names}){hint}")


def load_config(path: str | Path | None, overrides: list[str] | None = None, saved: bool = False) -> Config:
    """A config file plus `key=value` overrides; `saved`: the file is a run's config.yaml (`config_from_dict`)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = config_path(path)
        try:
            raw = safe_yaml(read_text_file(path, "config file")) or {}
        except yaml.YAMLError as err:
            raise SemilandError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise SemilandError(
                f"config file {path} holds a YAML {type(raw).__name__}, not a mapping of sections (data:, model:, "
                "method:, optim:, train:); see configs/ for examples"
            )
    extra = parse_overrides(overrides or [])
    new_method = (extra.get("method") or {}).get("name") if isinstance(extra.get("method"), dict) else None
    old_method = raw.get("method") if isinstance(raw, dict) else None
    if new_method and isinstance(old_method, dict) and old_method.get("name") != new_method:
        # `method.name=X` switches method: the file's settings of its own method do not carry over (they
        # would be unknown keys of X); X starts from its defaults plus the method.* overrides given
        raw = {**raw, "method": {}}
    return config_from_dict(merge(raw, extra), saved)
