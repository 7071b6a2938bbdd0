"""`semiland analyze`: is the labeled data representative of the test data? (MiniFrance §4, §6.2)

Writes `OUT/analysis.json`, figures and `OUT/report.html`: class shares per region and per split,
the appearance plane, one appearance map per region / split with IoU and IoT heatmaps, per-class
proportions in the plane, plain warnings, and the labeling advisor's ranking of tiles to label next.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semiland.analysis.advisor import AdvisorData, conditions, describe, random_baseline, rank, suggest
from semiland.analysis.appearance import Plane, embed_2d, group_maps, overlap_matrices
from semiland.analysis.estimate import estimated_counts
from semiland.analysis.inventory import Inventory, build_inventory
from semiland.data.sources import DatasetSpec
from semiland.data.splits import SETS, Split
from semiland.errors import SemilandError
from semiland.io import atomic_write_json, ensure_writable_dir
from semiland.report import analysis_figures as figs
from semiland.report.html import Report, write_report

POOR_COVERAGE = 0.5  # IoT below this: a test region's appearance is poorly covered


@dataclass
class AnalyzeOptions:
    features: str = "auto"  # auto | stats | timm:<model>
    weights: str = ""
    subtile: int = 256
    per_image: int = 16
    unit: str = "region"  # what the advisor ranks: region | image
    regions: list[str] = field(default_factory=list)  # restrict to these regions (empty: all)
    seed: int = 0
    progress: bool = True
    ckpt: str = ""  # a trained run's checkpoint: estimates the classes of images without masks (estimate.py)
    ignore_masks: bool = False  # with ckpt: the advisor uses estimates everywhere, as if no image had a mask


@dataclass
class Analysis:
    inv: Inventory
    xy: np.ndarray
    plane: Plane
    class_names: list[str]
    estimated: np.ndarray | None = None  # (N, K) predicted class counts per sub-tile, with --ckpt
    ignore_masks: bool = False

    @property
    def extent(self) -> list[float]:
        """[x0, x1, y0, y1] of the plane, for plots."""
        lo, hi = self.plane.lo, self.plane.lo + self.plane.span
        return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]

    def advisor(self, unit: str) -> AdvisorData:
        units = self.inv.regions if unit == "region" else self.inv.ids
        counts = self.inv.counts
        if self.estimated is not None:  # masks where there are masks (unless ignored), else the model's classes
            counts = (
                self.estimated if self.ignore_masks else np.where(self.inv.labeled[:, None], counts, self.estimated)
            )
        return AdvisorData(units, self.xy, counts, self.class_names, self.plane)


def class_source(opts: AnalyzeOptions) -> str:
    """Where the advisor's class terms come from, in words (for reports and JSON)."""
    if not opts.ckpt:
        return "masks where they exist; images without masks add no class terms (give --ckpt to estimate them)"
    if opts.ignore_masks:
        return f"every image's classes as predicted by {opts.ckpt} (masks ignored)"
    return f"masks where they exist, else the classes predicted by {opts.ckpt}"


def restrict(spec: DatasetSpec, regions: list[str]) -> DatasetSpec:
    if not regions:
        return spec
    unknown = sorted(set(regions) - {s.region for s in [*spec.samples, *spec.unlabeled]})
    if unknown:
        raise SemilandError(f"--regions {unknown} not in the dataset; its regions are {spec.regions}")
    keep = set(regions)
    return dataclasses.replace(
        spec,
        samples=[s for s in spec.samples if s.region in keep],
        unlabeled=[s for s in spec.unlabeled if s.region in keep],
    )


def embed(spec: DatasetSpec, out: Path, opts: AnalyzeOptions) -> Analysis:
    """Features of every sub-tile (labeled and unlabeled images), then the 2-D appearance plane."""
    if opts.unit not in ("region", "image"):
        raise SemilandError(f"--unit must be region or image, got '{opts.unit}'")
    refs = [*spec.samples, *spec.unlabeled]
    if not refs:
        raise SemilandError("no images to analyse")
    if opts.ignore_masks and not opts.ckpt:
        raise SemilandError("--ignore-masks needs --ckpt: the classes of every image are then estimated by it")
    inv = build_inventory(
        spec, refs, out, opts.features, opts.weights, opts.subtile, opts.per_image, progress=opts.progress
    )
    estimated = estimated_counts(inv, spec, refs, opts.ckpt, out, opts.progress) if opts.ckpt else None
    xy = embed_2d(inv.features, opts.seed)
    return Analysis(inv, xy, Plane.around(xy), list(spec.classes.names), estimated, opts.ignore_masks)


def _shares(counts: np.ndarray) -> np.ndarray:
    return counts / max(counts.sum(), 1)


def split_of(inv: Inventory, split: Split) -> list[str]:
    where = {i: name for name in SETS for i in getattr(split, name)}
    return [where.get(i, "unused") for i in inv.ids]


def analyze(spec: DatasetSpec, split: Split | None, out: Path, opts: AnalyzeOptions) -> dict[str, Any]:
    out = ensure_writable_dir(out)
    spec = restrict(spec, opts.regions)
    a = embed(spec, out, opts)
    inv, names, colors = a.inv, a.class_names, [tuple(c) for c in spec.classes.colors]
    regions = sorted(set(inv.regions))
    region_maps = group_maps(a.xy, inv.regions, a.plane)
    r_iou, r_iot = overlap_matrices(region_maps)
    shares = {r: _shares(inv.counts[np.asarray(inv.regions) == r].sum(0)) for r in regions}
    figures = []
    figs.plot_class_shares(shares, names, colors, "class shares per region", out / "classes_regions.png")
    figures.append(("Class shares per region (labeled pixels)", "classes_regions.png"))
    figs.plot_plane(a.xy, inv.regions, region_maps, a.extent, out / "appearance_regions.png")
    figures.append(("Appearance plane and maps per region", "appearance_regions.png"))
    figs.plot_matrix(r_iou, regions, "IoU of appearance maps", out / "iou_regions.png")
    figs.plot_matrix(r_iot, regions, "IoT(row → column): how much of the column the row covers",
                     out / "iot_regions.png", xlabel="target", ylabel="source")  # fmt: skip
    figures += [("IoU between regions", "iou_regions.png"), ("IoT between regions", "iot_regions.png")]
    lab = inv.labeled
    if lab.any():
        figs.plot_class_proportions(
            a.xy[lab], inv.counts[lab] / np.maximum(inv.counts[lab].sum(1, keepdims=True), 1), names,
            out / "class_proportions.png",
        )  # fmt: skip
        figures.append(("Class share of every labeled sub-tile in the appearance plane", "class_proportions.png"))
    result: dict[str, Any] = {
        "dataset": spec.name,
        "root": str(spec.root),
        "features": inv.extractor,
        "features_note": inv.note,
        "subtiles": len(inv.ids),
        "images": len(set(inv.ids)),
        "regions": regions,
        "classes": names,
        "class_share_regions": {r: s.tolist() for r, s in shares.items()},
        "iou_regions": r_iou.tolist(),
        "iot_regions": r_iot.tolist(),
        "warnings": [],
        "class_source": class_source(opts),
    }
    if split is not None:
        result.update(_split_part(a, split, out, figures, colors, opts))
    else:  # no split: which units to label first so the labeled set covers the whole dataset
        adv = a.advisor(opts.unit)
        units = sorted(set(adv.units))
        picks, cond = suggest(adv, min(3, len(units)), units, set(units))
        result["advisor"] = {"target": "all units", "ranking": [p.__dict__ for p in picks], "conditions": cond}
    atomic_write_json(out / "analysis.json", result)
    write_report(_report(result, figures), out / "report.html")
    return result


def _split_part(a: Analysis, split: Split, out: Path, figures: list, colors: list, opts: AnalyzeOptions) -> dict:
    inv, names = a.inv, a.class_names
    groups = split_of(inv, split)
    present = [s for s in SETS if s in groups]
    every = group_maps(a.xy, groups, a.plane)
    maps = {s: every[s] for s in present}  # in split order: labeled, unlabeled, val, test
    s_iou, s_iot = overlap_matrices(maps)
    shares = {s: _shares(inv.counts[np.asarray(groups) == s].sum(0)) for s in present}
    figs.plot_class_shares(shares, names, colors, "class shares per split", out / "classes_splits.png")
    figs.plot_plane(a.xy, groups, maps, a.extent, out / "appearance_splits.png")
    figs.plot_matrix(s_iou, list(maps), "IoU between splits", out / "iou_splits.png")
    figs.plot_matrix(s_iot, list(maps), "IoT between splits (row covers column)", out / "iot_splits.png",
                     xlabel="target", ylabel="source")  # fmt: skip
    figures += [
        ("Class shares per split", "classes_splits.png"),
        ("Appearance maps per split", "appearance_splits.png"),
        ("IoU between splits", "iou_splits.png"),
        ("IoT between splits (MiniFrance Table 5)", "iot_splits.png"),
    ]
    warnings = []
    by_set = {s: set(getattr(split, s)) for s in SETS}
    region_of = dict(zip(inv.ids, inv.regions, strict=True))
    lab_counts = inv.counts[inv.rows(by_set["labeled"])].sum(0)
    test_counts = inv.counts[inv.rows(by_set["test"])].sum(0)
    for k in np.flatnonzero((test_counts > 0) & (lab_counts == 0)):
        warnings.append(f"class '{names[k]}' is in the test split but absent from the labeled split")
    adv = a.advisor("image")
    for region in sorted({region_of[i] for i in by_set["test"] if i in region_of}):
        target = {i for i in by_set["test"] if region_of.get(i) == region}
        cover = conditions(adv, by_set["labeled"], by_set["unlabeled"], target)
        if cover["iot_labeled"] < POOR_COVERAGE:
            unl = conditions(adv, by_set["unlabeled"], set(), target)["iot_labeled"]
            warnings.append(
                f"test region {region} is poorly covered by the labeled split (IoT {cover['iot_labeled']:.2f}); "
                + (f"the unlabeled split covers it (IoT {unl:.2f}): semi-supervised training can help"
                   if unl >= POOR_COVERAGE else f"the unlabeled split does not either (IoT {unl:.2f})")
            )  # fmt: skip
    adv_units = a.advisor(opts.unit)
    unit_of = dict(zip(inv.ids, adv_units.units, strict=True))
    units = {key: {unit_of[i] for i in by_set[key] if i in unit_of} for key in SETS}  # split → its units
    candidates = sorted(units["unlabeled"])
    target = units["test"] or set(adv_units.units)
    ranking = rank(adv_units, units["labeled"], candidates, target) if candidates else []
    return {
        "splits": list(maps),
        "iou_splits": s_iou.tolist(),
        "iot_splits": s_iot.tolist(),
        "class_share_splits": {s: v.tolist() for s, v in shares.items()},
        "conditions": conditions(adv_units, units["labeled"], units["unlabeled"], target),
        "warnings": warnings,
        "advisor": {"target": "test units", "ranking": [c.__dict__ for c in ranking]},
        "random_baseline": random_baseline(adv_units, 1, candidates, target) if candidates else {},
    }


def _report(result: dict[str, Any], figures: list[tuple[str, str]]) -> Report:
    adv = result.get("advisor", {})
    ranking = adv.get("ranking", [])[:10]
    # the advice first (the question users open the report with), then what it rests on
    intro = [f"Label next: {ranking[0]['unit']} ({describe(ranking[0])})."] if ranking else []
    intro += [
        f"Dataset {result['dataset']} ({result['root']}): {result['images']} images, {result['subtiles']} sub-tiles, "
        f"regions {', '.join(result['regions'])}.",
        f"Appearance features: {result['features_note']}.",
        f"The advisor's class terms: {result['class_source']}.",
    ]
    intro += [f"Warning: {w}" for w in result["warnings"]] or ["No warnings: the split meets both conditions."]
    tables = []
    if ranking:
        rows = [[str(i), c["unit"], describe(c)] for i, c in enumerate(ranking, 1)]
        tables.append((f"Label next: the advisor's ranking (of {adv['target']})", ["#", "unit", "why"], rows))
    details = {}
    if "conditions" in result:
        c = result["conditions"]
        details["labeled covers test (IoT)"] = f"{c['iot_labeled']:.2f}"
        details["labeled + unlabeled cover test (IoT)"] = f"{c['iot_training']:.2f}"
        details["test classes missing from labeled"] = ", ".join(c["missing_classes"]) or "none"
    return Report(title="semiland dataset analysis", intro=intro, figures=figures, details=details, tables=tables)
