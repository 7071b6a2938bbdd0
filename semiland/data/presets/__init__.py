"""Dataset layouts. An explicit registry: name → (builder, one-line description).

A builder takes the `DataConfig` and returns a `DatasetSpec` (samples, classes, default split).
Add a layout: one module here, one line in `PRESETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from semiland.config import DataConfig
from semiland.data.presets import casd, deepglobe, dubai, folder, isprs, minifrance, synthetic
from semiland.data.sources import DatasetSpec
from semiland.errors import SemilandError


class Preset(NamedTuple):
    build: Callable[[DataConfig], DatasetSpec]
    description: str


PRESETS: dict[str, Preset] = {
    "dubai": Preset(dubai.build, dubai.DESCRIPTION),
    "deepglobe": Preset(deepglobe.build, deepglobe.DESCRIPTION),
    "minifrance": Preset(minifrance.build, minifrance.DESCRIPTION),
    "casd": Preset(casd.build, casd.DESCRIPTION),
    "vaihingen": Preset(isprs.build_vaihingen, "ISPRS Vaihingen 2-D labeling (TorchGeo layout), IRRG, 6 classes"),
    "potsdam": Preset(isprs.build_potsdam, "ISPRS Potsdam 2-D labeling (TorchGeo layout), RGBIR, 6 classes"),
    "folder": Preset(folder.build, folder.DESCRIPTION),
    "synthetic": Preset(synthetic.build, synthetic.DESCRIPTION),
}


def build_dataset(cfg: DataConfig) -> DatasetSpec:
    if cfg.preset not in PRESETS:
        raise SemilandError(f"unknown dataset preset '{cfg.preset}'; available: {', '.join(PRESETS)}")
    return PRESETS[cfg.preset].build(cfg)
