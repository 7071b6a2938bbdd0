"""Dataset layouts. An explicit registry: name → (builder, one-line description).

A builder takes the `DataConfig` and returns a `DatasetSpec` (samples, classes, default split).
Add a layout: one module here, one line in `PRESETS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from semiland.config import DataConfig
from semiland.data.paired import SarOptions
from semiland.data.presets import casd, deepglobe, dubai, folder, isprs, minifrance, optical_sar, synthetic
from semiland.data.raster import image_size
from semiland.data.sources import DatasetSpec, SampleRef
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
    "sen1floods11": Preset(
        optical_sar.build_sen1floods11, "Sen1Floods11: S2 (13 bands) + S1 (VV, VH dB), water / not water"
    ),
    "whu_opt_sar": Preset(optical_sar.build_whu_opt_sar, "WHU-OPT-SAR: GF-1 optical (4 bands) + GF-3 SAR, 8 classes"),
    "paired": Preset(optical_sar.build_paired, "any <root>/<region>/{optical,sar,masks} + classes.csv"),
    "folder": Preset(folder.build, folder.DESCRIPTION),
    "synthetic": Preset(synthetic.build, synthetic.DESCRIPTION),
}


def build_dataset(cfg: DataConfig) -> DatasetSpec:
    if cfg.preset not in PRESETS:
        raise SemilandError(f"unknown dataset preset '{cfg.preset}'; available: {', '.join(PRESETS)}")
    spec = dataclasses.replace(PRESETS[cfg.preset].build(cfg), label_field=cfg.label_field)
    if cfg.ignore_values:  # index-mask values that mean "no label" in this dataset (Sen1Floods11's -1, …)
        if clash := sorted(set(cfg.ignore_values) & set(spec.classes.raw_values)):
            raise SemilandError(f"data.ignore_values {clash} are class values of {cfg.preset}'s class table")
        extra = tuple(v for v in cfg.ignore_values if v not in spec.classes.ignore_values)
        spec = dataclasses.replace(spec, classes=dataclasses.replace(
            spec.classes, ignore_values=spec.classes.ignore_values + extra))  # fmt: skip
    if cfg.simulate_sar:
        spec = with_simulated_sar(spec, cfg)
    if cfg.tile_grid > 1:
        spec = dataclasses.replace(
            spec, samples=windows(spec.samples, cfg.tile_grid), unlabeled=windows(spec.unlabeled, cfg.tile_grid)
        )
    elif cfg.tile_grid < 1:
        raise SemilandError(f"data.tile_grid must be at least 1, got {cfg.tile_grid}")
    return spec


def with_simulated_sar(spec: DatasetSpec, cfg: DataConfig) -> DatasetSpec:
    """The optical + SAR test bed on an optical dataset (the Dubai sweep's `sar` set): every sample's SAR
    source is its own image, from which `data/paired.py` (`simulated_sar`) derives two SAR-like bands in dB."""
    if spec.sar is not None:
        raise SemilandError(
            f"data.simulate_sar=true derives SAR from optical images, but preset '{cfg.preset}' has real SAR; "
            "leave data.simulate_sar=false"
        )
    sar = dataclasses.replace(SarOptions.from_config(cfg), bands=None, db=False)  # simulated: 2 bands, in dB
    samples, unlabeled = (
        [dataclasses.replace(s, sar=s.image) for s in refs] for refs in (spec.samples, spec.unlabeled)
    )
    return dataclasses.replace(spec, samples=samples, unlabeled=unlabeled, sar=sar)


def windows(refs: list[SampleRef], n: int) -> list[SampleRef]:
    """Every image as n × n windows (`<id>@<row><col>`, same region): a few large chips become many samples."""
    out = []
    for ref in refs:
        h, w = image_size(ref.image)
        for i in range(n):
            for j in range(n):
                r0, c0 = i * h // n, j * w // n
                box = (r0, c0, (i + 1) * h // n - r0, (j + 1) * w // n - c0)
                out.append(dataclasses.replace(ref, id=f"{ref.id}@{i}{j}", window=box))
    return out
