"""Paired optical + SAR data (issue #7): stacking, grids, NaN SAR, dB, modalities, and the presets
(Sen1Floods11 on the real chip when present, WHU-OPT-SAR and the paired folder on generated fixtures)."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from semiland.config import DataConfig
from semiland.data.prepare import prepare_data
from semiland.data.presets import build_dataset
from semiland.data.sources import load_sample
from semiland.errors import SemilandError
from semiland.inference.predict import _sar_partners
from semiland.methods import method_config

from .conftest import SEN1FLOODS, tiny_config

pytestmark = pytest.mark.filterwarnings("ignore")
GRID = from_origin(500000, 4000000, 10, 10)


def tif(path: Path, arr: np.ndarray, transform=GRID, nodata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = arr if arr.ndim == 3 else arr[None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, crs="EPSG:32630", transform=transform, nodata=nodata) as dst:  # fmt: skip
        dst.write(arr)
    return path


def floods_fixture(root: Path, chips=("Spain_1", "Spain_2", "Ghana_1"), size=64, sar_transform=GRID) -> Path:
    rng = np.random.default_rng(0)
    for chip in chips:
        tif(root / "S2Hand" / f"{chip}_S2Hand.tif", rng.integers(0, 5000, (13, size, size)).astype(np.int16))
        sar = rng.normal(-15, 4, (2, size, size)).astype(np.float32)
        sar[:, :4, :4] = np.nan  # real S1 chips carry NaN
        tif(root / "S1Hand" / f"{chip}_S1Hand.tif", sar, transform=sar_transform)
        label = rng.choice([-1, 0, 1], (size, size), p=[0.05, 0.6, 0.35]).astype(np.int16)
        tif(root / "LabelHand" / f"{chip}_LabelHand.tif", label)
    return root


def test_sen1floods11_stacks_optical_then_sar_and_nan_sar_is_nodata(tmp_path):
    root = floods_fixture(tmp_path / "s")
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root)))
    assert spec.classes.names == ("not water", "water") and spec.regions == ["Ghana", "Spain"]
    sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert sample.image.shape == (15, 64, 64)  # 13 S2 bands, then VV, VH
    assert not sample.valid[:4, :4].any() and sample.valid[4:, 4:].all()
    assert (sample.mask[:4, :4] == 255).all() and (sample.image[:, :4, :4] == 0).all()
    with rasterio.open(spec.samples[0].mask) as src:
        raw = src.read(1)
    assert (sample.mask[(raw == -1)] == 255).all() and (sample.mask[(raw == 1) & sample.valid] == 1).all()


@pytest.mark.parametrize(("modality", "bands"), [("both", 15), ("optical", 13), ("sar", 2)])
def test_modality_selects_the_bands(tmp_path, modality, bands):
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(floods_fixture(tmp_path / "s")), modality=modality))
    sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert sample.image.shape[0] == bands and not sample.valid[:4, :4].any()  # the same pixels in every baseline


def test_every_modality_keeps_the_pixels_valid_in_both(tmp_path):
    # optical nodata in one corner, NaN SAR in another: a SAR-only (or optical-only) baseline trains and is
    # scored on the pixels of the paired runs, as prediction maps them (inference/stream.py: PairedReader)
    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    s2 = root / "S2Hand" / "Spain_1_S2Hand.tif"
    with rasterio.open(s2) as src:
        arr = src.read()
    arr[:, -3:, -3:] = -9999
    tif(s2, arr, nodata=-9999)
    valid = {}
    for modality in ("both", "optical", "sar"):
        spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root), modality=modality))
        sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
        valid[modality] = sample.valid
        assert (sample.image[:, ~sample.valid] == 0).all()
    assert not valid["sar"][-3:, -3:].any() and not valid["optical"][:4, :4].any()
    assert (valid["both"] == valid["optical"]).all() and (valid["both"] == valid["sar"]).all()


def test_grids_that_disagree_are_refused_or_resampled(tmp_path):
    root = floods_fixture(tmp_path / "s", chips=("Spain_1",), sar_transform=from_origin(500005, 4000000, 10, 10))
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root)))
    with pytest.raises(SemilandError, match="are not on the same grid") as err:
        load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert "Spain_1_S1Hand.tif" in str(err.value) and "Spain_1_S2Hand.tif" in str(err.value)
    assert "origin (500000, 4000000), pixel 10 vs origin (500005, 4000000), pixel 10" in str(err.value)  # what differs
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root), resample_sar=True))
    sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert sample.image.shape == (15, 64, 64) and sample.valid.mean() > 0.9


def test_the_grid_check_names_what_differs():
    from rasterio.crs import CRS

    from semiland.data.paired import grid_difference

    def raster(h, w, crs="EPSG:32630", transform=GRID):  # ((H, W), profile)
        return (h, w), {"crs": CRS.from_string(crs) if crs else None, "transform": transform}

    def diff(a, b):
        return grid_difference(*a, *b)

    assert diff(raster(64, 64), raster(64, 64)) is None
    assert diff(raster(64, 64), raster(60, 64)) == "size 64x64 px vs 64x60 px"
    assert diff(raster(64, 64), raster(64, 64, crs=None, transform=None)) is None  # size is all we know
    assert diff(raster(64, 64), raster(64, 64, crs="EPSG:4326")) == "CRS EPSG:32630 vs EPSG:4326"
    shifted = from_origin(500010, 4000000, 10, 10)
    assert diff(raster(64, 64), raster(64, 64, transform=shifted)).startswith("origin (500000, 4000000), pixel 10 vs")


def test_linear_sar_to_db(tmp_path):
    from semiland.data.paired import to_db

    data = np.array([[[1.0, 0.1, 0.0]]], np.float32)
    out, valid = to_db(data, np.ones((1, 3), bool))
    assert np.allclose(out[0, 0, :2], [0.0, -10.0]) and valid.tolist() == [[True, True, False]]


def test_tile_grid_makes_windows_and_a_count_split_trains(tmp_path):
    from semiland.engine.runner import fit

    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    cfg = tiny_config(root, data={"tile_grid": 4, "split_mode": "count", "labeled": 4, "val": 2, "test": 4})
    cfg.data.preset = "sen1floods11"
    data = prepare_data(cfg)
    assert len(data.split.labeled) == 4 and len(data.split.unlabeled) == 6 and len(data.mean) == 15
    assert fit(cfg, tmp_path / "run").best_ckpt.is_file()


@pytest.mark.realdata
@pytest.mark.skipif(not SEN1FLOODS.is_dir(), reason=f"real data not found at {SEN1FLOODS}")
def test_the_real_sen1floods11_chip_trains(tmp_path):
    from semiland.engine.runner import fit

    cfg = tiny_config(SEN1FLOODS, data={"tile_grid": 4, "split_mode": "count", "labeled": 4, "val": 2, "test": 4})
    cfg.data.preset = "sen1floods11"
    cfg.method = method_config({"name": "fixmatch"})
    result = fit(cfg, tmp_path / "run")
    sample = load_sample(result.data.spec.samples[0], result.data.spec.classes, None, None, result.data.spec.sar)
    assert sample.image.shape == (15, 128, 128) and np.isfinite(sample.image).all()
    assert result.best_ckpt.is_file()


def test_whu_opt_sar_layout_values_and_split(tmp_path):
    rng = np.random.default_rng(1)
    for k in range(10):
        tif(tmp_path / "optical" / f"scene{k}.tif", rng.integers(0, 1000, (4, 40, 40)).astype(np.uint16))
        tif(tmp_path / "sar" / f"scene{k}.tif", rng.integers(0, 255, (1, 40, 40)).astype(np.uint8))
        tif(tmp_path / "lbl" / f"scene{k}.tif", (10 * rng.integers(0, 8, (40, 40))).astype(np.uint8))
    spec = build_dataset(DataConfig(preset="whu_opt_sar", root=str(tmp_path)))
    assert spec.classes.num_classes == 8 and spec.default_split["test"] == ["scene8", "scene9"]
    sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    with rasterio.open(spec.samples[0].mask) as src:
        assert (sample.mask == src.read(1) // 10).all()  # 0, 10, …, 70 → classes 0 … 7
    assert sample.image.shape == (5, 40, 40)
    (tmp_path / "sar" / "scene3.tif").unlink()
    with pytest.raises(SemilandError, match="has no SAR scene"):
        build_dataset(DataConfig(preset="whu_opt_sar", root=str(tmp_path)))


def test_paired_folder(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "classes.csv").write_text("name,r,g,b\nland,0,255,0\nwater,0,0,255\n")
    colors = np.array([(0, 255, 0), (0, 0, 255)], np.uint8)
    for region in ("a", "b"):
        for k in range(3):
            tif(tmp_path / region / "optical" / f"i{k}.tif", rng.integers(0, 255, (3, 32, 32)).astype(np.uint8))
            tif(tmp_path / region / "sar" / f"i{k}.tif", rng.normal(0, 1, (2, 32, 32)).astype(np.float32))
            if k < 2:
                tif(tmp_path / region / "masks" / f"i{k}.tif", np.moveaxis(colors[rng.integers(0, 2, (32, 32))], -1, 0))
    spec = build_dataset(DataConfig(preset="paired", root=str(tmp_path)))
    assert len(spec.samples) == 4 and len(spec.unlabeled) == 2
    assert load_sample(spec.samples[0], spec.classes, None, None, spec.sar).image.shape == (5, 32, 32)


def test_unlabeled_folders_of_a_paired_preset_hold_pairs(tmp_path):
    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    extra = tmp_path / "more"
    rng = np.random.default_rng(3)
    for chip in ("Chad_3", "Peru_9"):  # Sen1Floods11's names: the sensor tag differs, the chip pairs them
        tif(extra / "optical" / f"{chip}_S2Hand.tif", rng.integers(0, 5000, (13, 32, 32)).astype(np.int16))
        tif(extra / "sar" / f"{chip}_S1Hand.tif", rng.normal(-15, 4, (2, 32, 32)).astype(np.float32))
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root), unlabeled_dirs=[str(extra)]))
    assert {u.id: u.sar.name for u in spec.unlabeled} == {
        "unlabeled:more/Chad_3_S2Hand": "Chad_3_S1Hand.tif",
        "unlabeled:more/Peru_9_S2Hand": "Peru_9_S1Hand.tif",
    }
    assert load_sample(spec.unlabeled[0], spec.classes, None, None, spec.sar).image.shape == (15, 32, 32)
    # a folder of optical images alone would train on half the bands: refused, saying what it needs
    plain = tmp_path / "plain"
    tif(plain / "x.tif", np.zeros((13, 32, 32), np.int16))
    with pytest.raises(SemilandError, match=r"plain \(data.unlabeled_dirs\) needs optical/ and sar/ inside"):
        build_dataset(DataConfig(preset="sen1floods11", root=str(root), unlabeled_dirs=[str(plain)]))
    (extra / "sar" / "Peru_9_S1Hand.tif").unlink()
    with pytest.raises(SemilandError, match="2 optical inputs but 1 SAR rasters in .*more/sar"):
        build_dataset(DataConfig(preset="sen1floods11", root=str(root), unlabeled_dirs=[str(extra)]))


def test_sinkhorn_matches_both_marginals():
    from semiland.losses.transport import sinkhorn

    torch = pytest.importorskip("torch")
    scores = torch.randn(500, 4).log_softmax(1)
    r = torch.tensor([0.5, 0.3, 0.15, 0.05])
    plan = sinkhorn(scores, r, epsilon=0.1, iters=200)
    assert torch.allclose(plan.sum(0), r, atol=1e-4)  # class marginal
    assert torch.allclose(plan.sum(1), torch.full((500,), 1 / 500), atol=1e-4)  # each pixel once


def test_sinkhorn_is_the_textbook_plan():
    """The fast form (rows shifted by their maximum, (K, N) layout) gives the plan of plain Sinkhorn–Knopp:
    P = diag(u) exp(S / ε) diag(v), rows and columns rescaled in turn, computed here in float64."""
    import torch

    from semiland.losses.transport import sinkhorn

    scores = torch.randn(300, 5, generator=torch.Generator().manual_seed(0)).log_softmax(1)
    r = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
    k = (scores.double() / 0.2).exp()
    u, v = torch.ones(300, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    for _ in range(100):
        u = (1 / 300) / (k @ v)
        v = r.double() / (k.t() @ u)
    expected = u[:, None] * k * v[None]
    assert torch.allclose(sinkhorn(scores, r, epsilon=0.2, iters=100).double(), expected, rtol=1e-4, atol=1e-9)


def test_asymmetric_masks_never_hide_a_patch_from_both_modalities():
    import torch

    from semiland.methods.dllr import asymmetric_masks

    keep_o, keep_s = asymmetric_masks(8, 64, 48, 8, 0.3, 0.4, torch.device("cpu"))
    assert keep_o.shape == (8, 1, 64, 48) and ((keep_o + keep_s) >= 1).all()
    assert 0.2 < 1 - keep_o.mean() < 0.4 and 0.3 < 1 - keep_s.mean() < 0.5


def test_reassignment_spreads_unsure_pixels_over_the_class_marginal():
    import torch

    from .test_methods import make

    method = make("dllr", 4)
    method.class_marginal.copy_(torch.tensor([0.25, 0.25, 0.25, 0.25]))
    probs = torch.full((1, 4, 20, 20), 0.01)
    probs[:, 0] = 0.97  # every pixel leans to class 0, none above the keep threshold of 0.99
    probs = probs + 0.001 * torch.rand_like(probs)
    probs = probs / probs.sum(1, keepdim=True)
    method.cfg.keep_threshold = 0.99
    labels, used = method.pseudo_labels(probs, torch.ones(1, 20, 20, dtype=torch.bool))
    assert used.all()  # the one-level form supervises every valid pixel
    shares = torch.bincount(labels.flatten(), minlength=4).float() / 400
    # argmax would give class 0 everywhere; the plan's marginal is exact, its row-wise argmax roughly so
    assert (shares > 0.1).all() and shares[0] < 0.4, shares
    method.cfg.reassign = False
    assert (method.pseudo_labels(probs, torch.ones(1, 20, 20, dtype=torch.bool))[0] == 0).all()


def test_three_level_reassignment_keeps_transports_with_the_residual_marginal_and_ignores():
    """Levels "three": confident pixels keep their argmax; the middle stratum is transported toward the classes
    the kept ones leave short of the marginal; the least confident pixels get no pseudo-label."""
    import torch

    from semiland.errors import SemilandError

    from .test_methods import make

    method = make("dllr", 4, levels="three", keep_threshold=0.9, drop_threshold=0.6)  # 4 classes, two present
    method.class_marginal.copy_(torch.tensor([0.5, 0.5, 0.0, 0.0]))
    conf = torch.cat([torch.full((50,), 0.95), torch.full((30,), 0.75), torch.full((20,), 0.55)])  # 3 strata
    rare = torch.full_like(conf, 1e-3)
    probs = torch.stack([conf, 1 - conf - 2e-3, rare, rare])[None, :, None, :]  # (1, 4, 1, 100), all lean to 0
    labels, used = method.pseudo_labels(probs, torch.ones(1, 1, 100, dtype=torch.bool))
    labels, used = labels.flatten(), used.flatten()
    assert (labels[:50] == 0).all() and used[:80].all() and not used[80:].any()
    # the 50 kept pixels already give class 0 its half of the 80 used ones (40): the middle goes to class 1
    assert (labels[50:80] == 1).float().mean() > 0.9
    one = make("dllr", 4, keep_threshold=0.9)  # the one-level form: the marginal spreads the rest over both
    one.class_marginal.copy_(torch.tensor([0.5, 0.5, 0.0, 0.0]))
    labels_one, used_one = one.pseudo_labels(probs, torch.ones(1, 1, 100, dtype=torch.bool))
    assert used_one.all() and 0.3 < (labels_one.flatten()[50:] == 1).float().mean() < 0.7
    for bad, match in [({"levels": "two"}, "levels must be one of"),
                       ({"levels": "three", "drop_threshold": 0.95}, "must be below"),
                       ({"drop_threshold": 0.5}, "read only with method.levels=three"),
                       ({"levels": "three", "reassign": False}, "needs method.reassign=true")]:  # fmt: skip
        with pytest.raises(SemilandError, match=match):
            make("dllr", 4, **bad)
    from .test_methods import batches

    out = make("dllr", 4, levels="three").training_step(*batches(4), step=3)
    assert torch_finite(out["loss"]) and out["loss_cps"] > 0


@pytest.mark.parametrize("off", ["masking", "complementary", "reassign", "cps"])
def test_each_dllr_component_can_be_switched_off(off):
    from .test_methods import batches, make

    method = make("dllr", 4, **{off: False})
    labeled, unlabeled = batches(4)
    out = method.training_step(labeled, unlabeled, step=3)
    assert torch_finite(out["loss"])
    if off == "cps":
        assert out["loss_cps"] == 0
    if off == "complementary":
        assert out["loss_comp"] == 0


def torch_finite(x) -> bool:
    import torch

    return bool(torch.isfinite(x).all())


def test_dllr_trains_on_paired_data_and_refuses_single_modality(tmp_path, capsys):
    import yaml

    from semiland.cli import main
    from semiland.engine.runner import fit, load_task

    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    cfg = tiny_config(root, data={"tile_grid": 4, "split_mode": "count", "labeled": 4, "val": 2, "test": 4})
    cfg.data.preset, cfg.method = "sen1floods11", method_config({"name": "dllr"})
    result = fit(cfg, tmp_path / "run")
    task, saved = load_task(result.best_ckpt)
    log = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert {"train/disagreement", "train/loss_cps", "train/loss_comp"} <= set(log.split(","))  # the report plots them
    # validation scores each branch alone beside the fused map (a branch losing a class shows while training)
    assert {"val/mIoU", "val/optical/mIoU", "val/sar/mIoU"} <= set(log.split(","))
    val = json.loads((tmp_path / "run" / "val_metrics.json").read_text())
    assert set(val["heads"]) == {"optical", "sar"} and set(val["heads"]["sar"]["per_class"]) == set(val["per_class"])
    assert saved.data.channels == [13, 2] and task.method.model.split == 13
    # `semiland test` scores each branch alone beside the fused prediction, on the same pixels; a branch
    # sees only its own modality's bands
    assert main(["test", "--ckpt", str(result.best_ckpt), "-o", str(tmp_path / "t")]) == 0
    assert "optical alone: mIoU" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert set(metrics["heads"]) == {"optical", "sar"}
    support = {c: m["support"] for c, m in metrics["per_class"].items()}
    assert all({c: m["support"] for c, m in h["per_class"].items()} == support for h in metrics["heads"].values())
    x = torch.randn(1, 15, 32, 32)
    y = x.clone()
    y[:, :13] = torch.randn(1, 13, 32, 32)  # other optical bands, the same SAR
    with torch.no_grad():
        task.method.eval()
        assert torch.equal(task.method.predict_head(x, "sar"), task.method.predict_head(y, "sar"))
        assert not torch.equal(task.method.predict_head(x, "optical"), task.method.predict_head(y, "optical"))
    # `test` runs each branch once for the fused map and both heads alone: the same numbers as a pass each,
    # at a data.scale where the outputs are resampled too (sliding windows of 32 over 80 × 96)
    task.cfg.data.scale, task.cfg.data.eval_tile = 0.5, 32
    z = torch.randn(1, 15, 80, 96)
    fused, heads = task.predict_logits_with_heads(z)
    assert torch.equal(fused, task.predict_logits(z))
    assert all(torch.equal(heads[h], task.predict_logits(z, h)) for h in ("optical", "sar"))
    # paired prediction: --sar partners the inputs by name; a missing partner or another grid is one line
    ckpt, s2, s1 = str(result.best_ckpt), root / "S2Hand" / "Spain_1_S2Hand.tif", root / "S1Hand" / "Spain_1_S1Hand.tif"
    assert main(["predict", "--ckpt", ckpt, str(s2), "--sar", str(s1), "-o", str(tmp_path / "p"), "--tile", "32"]) == 0
    with rasterio.open(tmp_path / "p" / "Spain_1_S2Hand_classes.tif") as out:
        classes = out.read(1)
    assert classes.shape == (64, 64) and (classes[:4, :4] == 255).all() and (classes[4:, 4:] < 2).all()  # NaN SAR
    # --head: one branch alone maps from its own bands; another optical image with the same SAR, the same map
    with rasterio.open(s2) as src:
        profile, noise = src.profile, np.random.default_rng(0).normal(size=(src.count, 64, 64)).astype(np.float32)
    (tmp_path / "o2").mkdir()
    with rasterio.open(tmp_path / "o2" / s2.name, "w", **profile) as dst:
        dst.write(noise * 1000)
    maps = {}
    for name, optical, head in (("sar1", s2, "sar"), ("sar2", tmp_path / "o2" / s2.name, "sar"), ("opt2", tmp_path / "o2" / s2.name, "optical")):  # fmt: skip
        args = ["predict", "--ckpt", ckpt, str(optical), "--sar", str(s1), "-o", str(tmp_path / name), "--tile", "32"]
        assert main([*args, "--head", head, "--probs"]) == 0
        with rasterio.open(tmp_path / name / f"{s2.stem}_probs.tif") as out:
            maps[name] = out.read()  # (K, H, W) percent: a barely trained model's classes are all one
    assert np.array_equal(maps["sar1"], maps["sar2"]) and not np.array_equal(maps["sar2"], maps["opt2"])
    capsys.readouterr()
    assert main(["predict", "--ckpt", ckpt, str(s2), "--sar", str(s1), "-o", str(tmp_path / "h"), "--head", "vv"]) == 2
    assert "the checkpoint's method (dllr) has no part 'vv' (its parts: optical, sar)" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
    assert main(["predict", "--ckpt", ckpt, str(s2), "-o", str(tmp_path / "q")]) == 2
    assert "give the SAR rasters with --sar" in capsys.readouterr().err
    shifted = tif(tmp_path / "shift.tif", np.zeros((2, 64, 64), np.float32), transform=from_origin(0, 0, 10, 10))
    assert main(["predict", "--ckpt", ckpt, str(s2), "--sar", str(shifted), "-o", str(tmp_path / "r")]) == 2
    assert "are not on the same grid (origin" in capsys.readouterr().err
    one_band = tif(tmp_path / "vv.tif", np.zeros((1, 64, 64), np.float32))
    assert main(["predict", "--ckpt", ckpt, str(s2), "--sar", str(one_band), "-o", str(tmp_path / "r")]) == 2
    assert (
        f"SAR {one_band} has 1 band but the checkpoint's SAR part has 2 (trained on 13 optical"
        in capsys.readouterr().err
    )
    cfg.data.modality, cfg.data.mean, cfg.data.std, cfg.data.channels = "optical", None, None, None
    path = tmp_path / "optical.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["fit", "--config", str(path), "-o", str(tmp_path / "opt")]) == 2
    assert "dllr needs optical + SAR input" in capsys.readouterr().err


def test_the_run_report_draws_each_branch_alone_beside_the_validation_curve(tmp_path, monkeypatch):
    from semiland.report import figures

    log = tmp_path / "metrics.csv"
    log.write_text("step,train/loss,val/mIoU,val/optical/mIoU,val/sar/mIoU\n1,2.0,,,\n2,,0.4,0.1,0.3\n4,,0.5,0.2,0.4\n")
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.plot_curves({"dllr": log}, tmp_path / "curves.png")
    lines = {line.get_label(): line for line in drawn["fig"].axes[1].lines}
    assert set(lines) == {"dllr", "dllr: optical alone", "dllr: sar alone"}
    assert list(lines["dllr: optical alone"].get_ydata()) == pytest.approx([10, 20])
    assert (
        lines["dllr: sar alone"].get_linestyle() == "--"
        and lines["dllr: sar alone"].get_color() == lines["dllr"].get_color()
    )


def test_a_sar_only_model_maps_sar_rasters_alone_as_it_maps_pairs(tmp_path, capsys):
    from semiland.cli import main
    from semiland.engine.runner import fit

    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    s1, s2 = root / "S1Hand" / "Spain_1_S1Hand.tif", root / "S2Hand" / "Spain_1_S2Hand.tif"
    linear = np.random.default_rng(4).uniform(0.001, 0.5, (2, 64, 64)).astype(np.float32)
    linear[:, :4, :4] = np.nan
    tif(s1, linear)  # linear backscatter: data.sar_db=true converts it, data.sar_bands=[2] keeps VH
    data = {"tile_grid": 4, "split_mode": "count", "labeled": 4, "val": 2, "test": 4, "modality": "sar"}
    cfg = tiny_config(root, data={**data, "sar_db": True, "sar_bands": [2]})
    cfg.data.preset = "sen1floods11"
    ckpt = str(fit(cfg, tmp_path / "run").best_ckpt)
    probs = {}
    for name, inputs in (("alone", [str(s1)]), ("paired", [str(s2), "--sar", str(s1)])):
        assert main(["predict", "--ckpt", ckpt, *inputs, "-o", str(tmp_path / name), "--tile", "32", "--probs"]) == 0
        with rasterio.open(next((tmp_path / name).glob("*_probs.tif"))) as out:
            probs[name] = out.read()
    # the SAR raster alone is read as the pairs are (VH only, in dB): the same map, nodata where the SAR is NaN
    assert np.array_equal(probs["alone"], probs["paired"]) and (probs["alone"][:, :4, :4] == 255).all()
    # a SAR raster without the band the model was trained on: the error names the SAR selection, not the optical
    tif(tmp_path / "vv.tif", linear[:1])
    assert main(["predict", "--ckpt", ckpt, str(tmp_path / "vv.tif"), "-o", str(tmp_path / "vv")]) != 0
    assert "has 1 bands; the checkpoint's data.sar_bands asks for [2]" in capsys.readouterr().err
    assert not (tmp_path / "vv").exists() or not any((tmp_path / "vv").iterdir())


@pytest.mark.realdata
def test_dubai_simulated_sar_test_bed_is_deterministic_and_label_free():
    from .conftest import DUBAI

    if not DUBAI.is_dir():
        pytest.skip(f"real data not found at {DUBAI}")
    spec = build_dataset(DataConfig(preset="dubai", root=str(DUBAI), simulate_sar=True))
    ref = spec.samples[0]
    a = load_sample(ref, spec.classes, None, None, spec.sar)
    b = load_sample(dataclasses.replace(ref, mask=None), spec.classes, None, None, spec.sar)
    assert a.image.shape[0] == 5 and np.array_equal(a.image, b.image)  # same speckle; masks play no part
    assert -40 < a.image[3:].mean() < 10  # dB scale


def test_sar_bands_get_robust_statistics(tmp_path):
    from semiland.data.stats import robust_band_stats

    rng = np.random.default_rng(0)
    x = rng.normal(-15, 4, (1, 200, 200))
    x[0, :5, :5] = 60  # a few bright scatterers
    mean, std = robust_band_stats([(x, np.ones((200, 200), bool))], stride=1)
    assert abs(mean[0] + 15) < 0.2 and abs(std[0] - 4) < 0.2  # a plain std would be inflated
    cfg = tiny_config(floods_fixture(tmp_path / "s"), data={"split_mode": "count", "labeled": 1, "val": 1, "test": 1})
    cfg.data.preset = "sen1floods11"
    data = prepare_data(cfg)
    assert len(data.mean) == 15 and -25 < data.mean[13] < -5 and data.channels == [13, 2]


def test_speckle_is_multiplicative_on_sar_bands_only():
    from semiland.data.augment import speckle_db

    rng = np.random.default_rng(0)
    image = np.full((5, 64, 64), -12.0, np.float32)  # 3 optical-like bands then 2 SAR bands in dB
    image[:3] = 100.0
    valid = np.ones((64, 64), bool)
    valid[:8] = False
    image[:, ~valid] = 0.0
    out = speckle_db(rng, image, valid, first=3, looks=4.0)
    assert np.array_equal(out[:3], image[:3]) and np.array_equal(out[:, ~valid], image[:, ~valid])
    linear = 10 ** (out[3:, valid] / 10) / 10 ** (-12 / 10)  # the multiplicative factor G
    assert abs(linear.mean() - 1) < 0.03 and abs(linear.var() - 1 / 4) < 0.03  # Gamma(L, 1/L): mean 1, var 1/L


def test_labeled_sar_crops_get_speckle_when_asked(tmp_path):
    from semiland.data.datamodule import SegDataModule

    cfg = tiny_config(floods_fixture(tmp_path / "s"), data={"split_mode": "count", "labeled": 1, "val": 1, "test": 1})
    cfg.data.preset = "sen1floods11"
    data = prepare_data(cfg)
    plain = SegDataModule(cfg, data, use_unlabeled=False).train_dataloader()["labeled"].dataset[0]
    cfg.data.sar_speckle_looks = 2.0
    noisy = SegDataModule(cfg, data, use_unlabeled=False).train_dataloader()["labeled"].dataset[0]
    assert torch.equal(plain["image"][:13], noisy["image"][:13])  # optical bands untouched
    assert not torch.equal(plain["image"][13:], noisy["image"][13:]) and torch.equal(plain["mask"], noisy["mask"])


def test_dllr_without_masking_takes_targets_from_the_student_pass():
    """masking=false with batch-norm targets in batch mode: the student sees the very views the targets come
    from, so one pass serves both (a second no-grad pass would repeat it); the loss and gradients are those of
    the two-pass path (masking on, with masks that hide nothing)."""
    import torch

    from .test_methods import batches, make

    labeled, unlabeled = batches(4)
    results = []
    for cfg in ({"masking": False}, {"masking": True, "mask_optical": 0.0, "mask_sar": 0.0}):
        method = make("dllr", 4, target_bn="batch", **cfg)
        out = method.training_step(labeled, unlabeled, step=5)
        out["loss"].backward()
        results.append(
            (out["loss"].detach(), [p.grad.clone() for p in method.model.parameters() if p.grad is not None])
        )
    (loss_one, grads_one), (loss_two, grads_two) = results
    torch.testing.assert_close(loss_one, loss_two)
    assert len(grads_one) == len(grads_two) > 0
    for a, b in zip(grads_one, grads_two, strict=True):
        torch.testing.assert_close(a, b)


def test_simulated_sar_works_on_any_optical_preset_and_is_refused_beside_real_sar(synth_root, tmp_path):
    from semiland.engine.runner import fit, load_task
    from semiland.inference.predict import PredictOptions, Predictor

    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root), simulate_sar=True))
    sample = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert sample.image.shape[0] == 3 + 2  # the optical bands, then two SAR-like bands derived from them
    # a GeoTIFF run predicts GeoTIFFs: the simulated bands are made from the whole raster, as in training
    cfg = tiny_config(synth_root)
    cfg.data.simulate_sar, cfg.method = True, method_config({"name": "dllr"})
    predictor = Predictor(*load_task(fit(cfg, tmp_path / "run").best_ckpt), PredictOptions())
    reader = predictor.open(Path(spec.samples[0].image))
    rows, valid = reader.read(0, reader.height)
    np.testing.assert_array_equal(rows[:, valid], sample.image[:, valid])
    reader.close()
    with pytest.raises(SemilandError, match="has real SAR; leave data.simulate_sar=false"):
        build_dataset(DataConfig(preset="sen1floods11", root=str(floods_fixture(tmp_path / "s")), simulate_sar=True))


def test_a_tiny_subset_of_pairs_keeps_the_sar_and_reads_back_as_paired(tmp_path):
    """`subsample` on optical + SAR: every window cut from the optical, the SAR and the mask at the same place
    (also where the samples are windows of a chip: tile_grid), the paired layout, index masks renumbered so
    the subset's classes.csv reads them (Sen1Floods11's −1 becomes the ignored 255)."""
    from semiland.analysis.cli import _copy_class_table
    from semiland.analysis.subsample import subsample

    root = floods_fixture(tmp_path / "s", chips=("Spain_1",))
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root), tile_grid=2))  # 4 windows of 32 px
    tiny = tmp_path / "tiny"
    summary = subsample(spec, 1.0, tiny, subtile=16, progress=False)
    _copy_class_table(spec, tiny)
    assert summary["windows_after"] == 16 and sorted(p.name for p in (tiny / "Spain").iterdir()) == [
        "masks",
        "optical",
        "sar",
    ]
    subset = build_dataset(DataConfig(preset="paired", root=str(tiny)))
    full = load_sample(dataclasses.replace(spec.samples[0], window=None), spec.classes, None, None, spec.sar)
    assert len(subset.samples) == 16
    for ref in subset.samples:
        r, c = (int(x) for x in re.findall(r"_r(\d+)_c(\d+)$", ref.id)[0])
        part = load_sample(ref, subset.classes, None, None, subset.sar)
        np.testing.assert_array_equal(part.image, full.image[:, r : r + 16, c : c + 16])  # 13 + 2 bands
        np.testing.assert_array_equal(part.mask, full.mask[r : r + 16, c : c + 16])
    assert {r for ref in subset.samples for r in re.findall(r"_r(\d+)_", ref.id)} == {"0", "16", "32", "48"}


def test_analysis_and_labeling_advice_read_both_modalities(tmp_path, capsys):
    """`analyze` and `suggest-split` on optical + SAR: the band scaling is fitted on the stacked bands that
    the features are computed from (it once read the optical bands only and failed on the first pair)."""
    from semiland.cli import main

    root = floods_fixture(tmp_path / "s")
    assert (
        main(["analyze", str(root), "--preset", "sen1floods11", "-o", str(tmp_path / "a"), "--features", "stats"]) == 0
    )
    assert (tmp_path / "a" / "report.html").is_file()
    args = ["suggest-split", str(root), "--preset", "sen1floods11", "--budget", "1", "--test", "Ghana", "-o"]
    assert main([*args, str(tmp_path / "advice"), "--features", "stats"]) == 0
    assert (tmp_path / "advice" / "suggested_split.json").is_file()


def test_a_pair_with_another_band_count_names_both_files(tmp_path):
    root = floods_fixture(tmp_path / "s", chips=("Spain_1", "Spain_2", "Spain_3", "Ghana_1"))
    for chip in ("Spain_1", "Spain_2"):  # VV only: any 3 training chips of the 4 mix 14- and 15-band pairs
        tif(root / "S1Hand" / f"{chip}_S1Hand.tif", np.zeros((1, 64, 64), np.float32))
    cfg = tiny_config(root, data={"split_mode": "count", "labeled": 3, "val": 0, "test": 1, "split_seed": 0})
    cfg.data.preset = "sen1floods11"
    with pytest.raises(
        SemilandError, match=r"every sample needs the same bands \(choose them with data.bands / data"
    ) as e:
        prepare_data(cfg)
    assert re.search(
        r"optical \S+S2Hand.tif \+ SAR \S+S1Hand.tif: 1[45] bands, but optical \S+ \+ SAR \S+: 1[45];", str(e.value)
    )


def test_predict_pairs_sar_with_the_inputs_by_name_not_position(tmp_path):
    def files(folder: str, *names: str) -> Path:
        (tmp_path / folder).mkdir()
        for n in names:
            (tmp_path / folder / n).touch()
        return tmp_path / folder

    # two dates of one tile, listed in opposite orders: position alone would swap them
    inputs = [files("s2", "tile_2024.tif") / "tile_2024.tif", files("s2b", "tile_2023.tif") / "tile_2023.tif"]
    pairs = _sar_partners(inputs, [str(files("s1", "tile_2023.tif", "tile_2024.tif"))])
    assert {k.name: (k.parent.name, v.name) for k, v in pairs.items()} == {
        "tile_2024.tif": ("s2", "tile_2024.tif"),
        "tile_2023.tif": ("s2b", "tile_2023.tif"),
    }
    # Sen1Floods11's names differ only in the sensor tag every file carries
    s2 = files("S2Hand", "Spain_7_S2Hand.tif", "Bolivia_12_S2Hand.tif")
    s1 = files("S1Hand", "Bolivia_12_S1Hand.tif", "Spain_7_S1Hand.tif")
    pairs = _sar_partners(sorted(s2.iterdir()), [str(s1)])
    assert {k.name: v.name for k, v in pairs.items()} == {
        "Bolivia_12_S2Hand.tif": "Bolivia_12_S1Hand.tif",
        "Spain_7_S2Hand.tif": "Spain_7_S1Hand.tif",
    }
    # names that do not correspond are refused, naming the input left without a partner
    s1_other = files("other", "Bolivia_12_S1Hand.tif", "Chad_3_S1Hand.tif")
    with pytest.raises(SemilandError, match="no SAR raster named like Spain_7_S2Hand.tif"):
        _sar_partners(sorted(s2.iterdir()), [str(s1_other)])
    with pytest.raises(SemilandError, match="2 optical inputs but 1 SAR rasters"):
        _sar_partners(sorted(s2.iterdir()), [str(s1 / "Spain_7_S1Hand.tif")])


def test_a_resampled_sar_raster_is_read_by_window(tmp_path):
    # SAR half a pixel off the optical grid: each optical window reads the SAR under it (and 2 px around)
    shifted = from_origin(500005, 4000005, 10, 10)
    root = floods_fixture(tmp_path / "s", chips=("Spain_1",), size=96, sar_transform=shifted)
    spec = build_dataset(DataConfig(preset="sen1floods11", root=str(root), resample_sar=True))
    whole = load_sample(spec.samples[0], spec.classes, None, None, spec.sar)
    assert whole.valid.mean() > 0.9
    for top, left, h, w in ((10, 20, 40, 30), (0, 0, 96, 96), (60, 70, 36, 26), (0, 50, 20, 46)):
        part = load_sample(spec.samples[0], spec.classes, None, None, spec.sar, window=(top, left, h, w))
        assert np.array_equal(part.valid, whole.valid[top : top + h, left : left + w])
        assert np.allclose(part.image, whole.image[:, top : top + h, left : left + w], atol=1e-4)
