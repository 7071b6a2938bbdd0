"""Run configuration: flat, complete YAML files; `section.key=value` overrides; strict key checking.

A config has five sections (`data`, `model`, `method`, `optim`, `train`). Files never include or inherit
from other files: what a run used is exactly the resolved config saved in its run folder. Unknown keys
are rejected with the closest valid key suggested. `method` holds `name` plus that method's own fields,
checked against the method's `Config` dataclass (see `semiland.methods`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from semiland.errors import SemilandError

MAX_SIDE = 16384  # crops and tiles beyond this are a typo, not a plan (one 16384² float tile is 1 GiB a band)
MAX_BATCH = 1024


def limits(
    default: Any,
    low: float = 0,
    high: float = math.inf,
    *,
    above: bool = False,
    below: bool = False,
    length: int | None = None,
) -> Any:
    """A numeric config field with the values a user may give it: low ≤ x ≤ high (low < x with `above`, x < high
    with `below`), checked by `build_dataclass` on every value or list element (and a list's `length`). A
    callable `default` is a default factory. Numbers declared without limits must still be finite and ≥ 0."""
    meta = {"limits": (low, high, above, below, length)}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    preset: str = "dubai"  # dataset layout: see `semiland datasets`
    root: str = ""  # "" = the preset's default location ($SEMILAND_DATA, ../shared/data/...)
    bands: list[int] | None = limits(None, 1)  # 1-based band selection; None = every band of the files
    ignore_classes: list[str] | None = None  # class names treated as ignore; None = the preset's default
    # index masks: raw values that mean "no label" besides 255 and the mask file's nodata (e.g. [-1] or [0])
    ignore_values: list[int] = field(default_factory=list)
    label_field: str = "class"  # vector labels (masks/<stem>.gpkg, .shp, .geojson, .fgb): the polygons' class attribute
    # extra folders of unlabeled images (the optical + SAR presets: each holds optical/ and sar/)
    unlabeled_dirs: list[str] = field(default_factory=list)
    split_mode: str = "region"  # region | fraction | count | file
    labeled: Any = None  # region names (region), a fraction (fraction) or an image count (count)
    unlabeled: Any = "rest"  # same forms, or "rest" = every training image not labeled
    val: Any = None
    test: Any = None
    labeled_count: int = limits(0)  # region split: label only this many images of the labeled regions (seeded by
    # train.seed; 0 = all of them); the others join the unlabeled set
    split_seed: int | None = None  # seed of the labeled images' draw (fraction / count splits, labeled_count);
    # None = train.seed. Fix it to compare training seeds on the same labeled images. (Validation and test
    # images of a fraction / count split are one fixed draw, the same for every seed: splits.EVAL_DRAW_SEED.)
    split_file: str = ""  # split_mode=file: a split.json saved by an earlier run
    oracle: bool = False  # label every training image (the upper bound of a method)
    # also train on the validation and test images, without their masks, as unlabeled images: the setting of a
    # user who maps the very imagery they train on (transductive); their masks still only score the model
    transductive: bool = False
    # train on this share of the unlabeled images only (a seeded draw, nested across shares for one seed: how a
    # method's gain grows with the unlabeled amount; splits.unlabeled_subset); 1 = all of them
    unlabeled_share: float = limits(1.0, 0, 1, above=True)
    pseudo_labels: str = ""  # folder of pseudo-label masks <region>/<stem>.png for unlabeled images (self-training)
    crop_size: int = limits(256, 8, MAX_SIDE)
    batch_size: int = limits(4, 1, MAX_BATCH)  # labeled crops per step
    unlabeled_batch_size: int = limits(2, 1, MAX_BATCH)  # unlabeled crops per step (methods that use them)
    # labeled crops by rare-class sampling (DAFormer): each crop holds a pixel of a class drawn with probability
    # ∝ exp((1 - its share of the labeled pixels) / T), this T; 0 = off, crops drawn uniformly (data/class_sampling.py)
    rare_class_temperature: float = limits(0.0, 0, 100)
    # loader processes reading crops: a number, or auto (none while training on the CPU, which uses every core, or
    # while the images are held in memory; else half the cores, at most 8: data/datamodule.py, loader_workers)
    num_workers: Any = "auto"
    cache: bool = True  # keep decoded images in memory (small datasets)
    eval_tile: int = limits(512, 8, MAX_SIDE)  # sliding-window size for validation / test / predict
    eval_overlap: float = limits(0.25, 0, 1, below=True)
    synthetic_regions: int = limits(6, 1, 1000)  # synthetic preset: number of regions
    synthetic_images: int = limits(4, 1, 1000)  # synthetic preset: images per region
    synthetic_size: int = limits(256, 16, MAX_SIDE)  # synthetic preset: image side in pixels
    synthetic_bands: int = limits(3, 1, 1000)  # synthetic preset: band count
    sar_bands: list[int] | None = limits(None, 1)  # paired optical + SAR presets: 1-based SAR band selection
    sar_db: bool = False  # the SAR rasters hold linear backscatter: convert to dB
    resample_sar: bool = False  # SAR on another grid than its optical image: resample it instead of refusing
    sar_speckle_looks: float = limits(
        0.0, 0, 1000
    )  # labeled crops: SAR speckle (gamma, this many looks; 0 = off; e.g. 4)
    modality: str = "both"  # paired presets: both (stacked, optical first) | optical | sar
    simulate_sar: bool = False  # optical data: add two SAR-like bands derived from each image (a test bed)
    scale: float = limits(
        1.0, 0, 4, above=True
    )  # train at this fraction of the native resolution (0.5: half); eval / predict stay native
    tile_grid: int = limits(1, 1, 64)  # split every image into tile_grid × tile_grid windows, each its own sample
    channels: list[int] | None = limits(None, 1)  # bands per modality in the input stack; None = found from the data
    mean: list[float] | None = limits(None, -math.inf)  # per-band normalisation (SAR in dB: negative); None =
    # computed from the training images
    std: list[float] | None = limits(None, 0, above=True)


@dataclass
class ModelConfig:
    arch: str = "unet"  # see `semiland models`: smp architectures, s4net_unet, segnet, unet_original, tiny_unet
    encoder: str = "resnet18"  # smp encoder name, or "tu-<timm name>"
    encoder_weights: str | None = None  # e.g. "imagenet" (downloaded when online); None = random init
    weights_path: str = ""  # local file of encoder weights (state dict), used instead of a download
    width: int = limits(
        16, 1, 1024
    )  # base width: tiny_unet, segnet, unet_original; smp unet / unetplusplus decoder (16w … w; 16 = smp's)


@dataclass
class OptimConfig:
    name: str = "adamw"  # sgd | adam | adamw
    lr: float = limits(1e-3, 0, 10, above=True)
    weight_decay: float = 1e-4
    momentum: float = limits(0.9, 0, 1, below=True)  # sgd only
    betas: list[float] = limits(lambda: [0.9, 0.999], 0, 1, below=True, length=2)  # adam / adamw
    schedule: str = "cosine"  # cosine | poly | constant
    warmup_steps: int = 0
    poly_power: float = limits(0.9, 0, 100)
    grad_clip: float = 0.0  # 0 = off


@dataclass
class TrainConfig:
    steps: int = limits(1000, 1)  # optimisation steps (training is counted in steps, not epochs)
    val_every: int = limits(100, 1)  # validate (and checkpoint) every N steps
    seed: int = limits(0, 0, 2**32 - 1)  # numpy / torch seeds
    accelerator: str = "auto"  # cpu | gpu | auto
    devices: Any = 1  # int, list of ids or "auto"; >1 runs DDP
    num_nodes: int = limits(1, 1)
    strategy: str = "auto"
    precision: str = "32-true"  # auto | 32-true | bf16-mixed | 16-mixed (auto: bf16 where native; engine/precision.py)
    loggers: list[str] = field(default_factory=lambda: ["csv"])  # csv, tensorboard, mlflow, wandb
    log_every: int = limits(10, 1)
    progress: bool = True
    # false | true | warn (Lightning's `deterministic`). A GPU run is not bit-reproducible without it (the same
    # Dubai sweep cell twice on an H200: ±1.2-1.5 mIoU, docs/benchmarks.md); warn makes cuDNN choose
    # deterministic kernels and warns at each op that has none; true refuses such ops. CPU runs are reproducible
    # either way.
    deterministic: bool | str = False
    # self-supervised pretraining of the encoder on every training image (labeled or not, masks unused) before
    # the method trains: this many steps of dense contrast (engine/pretrain.py); 0 = off
    pretrain_steps: int = limits(0, 0)
    pretrain_lr: float = limits(1e-4, 0, 10, above=True)  # its AdamW learning rate (warm-up, then cosine)


@dataclass
class MethodConfig:
    """Fields common to every method; a method's own `Config` (semiland.methods) subclasses this and adds its
    symbols. Defined here, below the methods, so that a `Config` holds its method's settings typed."""

    name: str = ""


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=lambda: MethodConfig(name="supervised"))  # the method's own Config
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": dataclasses.asdict(self.data),
            "model": dataclasses.asdict(self.model),
            "method": dataclasses.asdict(self.method),
            "optim": dataclasses.asdict(self.optim),
            "train": dataclasses.asdict(self.train),
        }

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


class _ConfigDumper(yaml.SafeDumper):
    """Sections as blocks, lists of plain values inline ([tile_1, tile_4]): configs read like the shipped ones."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ConfigDumper.add_representer(list, _represent_list)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True)


def suggest_key(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _as_float(value: int | str, key: str) -> float:
    """YAML 1.1 reads `1e-3` as a string; accept it (and ints) where a float is expected."""
    try:
        return float(value)
    except ValueError:
        raise SemilandError(f"config key '{key}' must be float, got {value!r}") from None


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_limits(value: Any, bounds: tuple, key: str) -> None:
    low, high, above, below, length = bounds
    if length is not None and isinstance(value, list) and len(value) != length:
        raise SemilandError(f"config key '{key}' must be a list of {length} numbers, got {value!r}")
    for x in value if isinstance(value, list) else [value]:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            continue
        if not math.isfinite(x) or x < low or x > high or (above and x == low) or (below and x == high):
            lower = "(-∞" if low == -math.inf else f"{'(' if above else '['}{low:g}"
            upper = "∞)" if high == math.inf else f"{high:g}{')' if below else ']'}"
            raise SemilandError(f"config key '{key}' must be in {lower}, {upper}, got {value!r}")


def build_dataclass(cls: type, values: dict[str, Any], where: str) -> Any:
    """Make `cls(**values)` with every key and type checked; errors name `where.key`."""
    if not isinstance(values, dict):
        raise SemilandError(f"config section '{where}' must be a mapping of key: value, got {values!r}")
    values = dict(values)  # the caller's mapping is left as it was
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    valid = list(fields)
    for key, value in values.items():
        if key not in hints:
            raise SemilandError(f"unknown config key '{where}.{key}'{suggest_key(key, valid)}")
        if hints[key] is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = values[key] = _as_float(value, f"{where}.{key}")
        if not _type_ok(value, hints[key]):
            raise SemilandError(f"config key '{where}.{key}' must be {_hint_name(hints[key])}, got {value!r}")
        if hints[key] is not Any:  # Any keys (splits, devices) take forms that their own code checks
            _check_limits(
                value, fields[key].metadata.get("limits", (0, math.inf, False, False, None)), f"{where}.{key}"
            )
    return cls(**values)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors and aliases: a config never needs them, and nested aliases expand
    into billions of values (an "alias bomb") in whatever walks the result."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in semiland files; write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # YAML keeps the last of two equal keys silently: a config with `data:` twice loses the first's settings
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue  # a mapping or list as a key: nothing a config writes, and not comparable
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.YAMLError(
                    f"the key '{key}' is written twice (lines {seen[key]} and {line}); keep one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def safe_yaml(text: str) -> Any:
    """Parse YAML that a user gave: plain data only (no tags that run code, no aliases)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """`["data.crop_size=128", "method.name=fixmatch"]` → {"data": {"crop_size": 128}, ...} (YAML-typed)."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SemilandError(f"override '{pair}' must look like section.key=value (e.g. train.steps=200)")
        key, raw = pair.split("=", 1)
        if "." not in key:
            raise SemilandError(f"override '{pair}' must name a section: section.key=value (e.g. train.steps=200)")
        section, name = key.split(".", 1)
        try:
            value = safe_yaml(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(section, {})[name] = value
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        if section in merged and isinstance(merged[section], dict) and isinstance(values, dict):
            merged[section].update(values)
        else:
            merged[section] = values
    return merged
