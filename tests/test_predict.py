"""Streaming prediction of rasters of any size: tiling equals whole-image prediction, georeferencing and
nodata are kept, edges are covered, interrupted writes leave nothing, re-runs finish only what is missing."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from semiland.engine.sliding import sliding_window_logits
from semiland.inference.stream import RasterReader, TilePredictor, stream_blocks

from .conftest import run_predict

pytestmark = pytest.mark.filterwarnings("ignore")


def write_tif(path: Path, arr: np.ndarray, nodata=None, crs="EPSG:32640") -> Path:
    c, h, w = arr.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype=arr.dtype, nodata=nodata, crs=crs,
        transform=from_origin(300000, 2780000, 0.5, 0.5),
    ) as dst:  # fmt: skip
        dst.write(arr)
    return path


def stream_classes(path: Path, model, tile: int, overlap: float, extras=frozenset(), batch_size=3):
    reader = RasterReader(path, None)
    pred = TilePredictor(model, torch.device("cpu"))
    zero, one = np.zeros((reader.count, 1, 1), np.float32), np.ones((reader.count, 1, 1), np.float32)
    blocks = list(stream_blocks(reader, pred, zero, one, 4, tile, overlap, batch_size, 8, set(extras)))
    reader.close()
    return blocks, np.concatenate([b.classes for b in blocks])


def conv_model(kernel: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel, padding=kernel // 2), torch.nn.Tanh(), torch.nn.Conv2d(8, 4, 1)
    ).eval()


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), [(100, 77, 32, 0.25), (40, 200, 64, 0.5), (20, 30, 64, 0.25)])
def test_streamed_tiles_equal_whole_image_for_a_pointwise_model(tmp_path, h, w, tile, overlap):
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(3, h, w)).astype(np.float32)
    model = conv_model(1)  # no receptive field: every tiling must give exactly the whole-image answer
    blocks, classes = stream_classes(write_tif(tmp_path / "a.tif", arr), model, tile, overlap)
    with torch.no_grad():
        whole = model(torch.from_numpy(arr)[None])[0].argmax(0).numpy()
    assert classes.shape == (h, w)  # every row and column, the right and bottom edges included
    assert (classes == whole).all()
    assert [b.y0 for b in blocks] == sorted({b.y0 for b in blocks})  # top to bottom, no row twice


def test_streaming_matches_in_memory_sliding_window_and_whole_image(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(3, 150, 130)).astype(np.float32)
    model = conv_model(3)  # a small receptive field: tiles disagree with the whole image only at tile borders
    blocks, classes = stream_classes(write_tif(tmp_path / "a.tif", arr), model, 64, 0.25, {"confidence"})
    with torch.no_grad():
        x = torch.from_numpy(arr)[None]
        in_memory = sliding_window_logits(model, x, 64, 0.25)[0].softmax(0)  # same grid, same blend
        whole = model(x)[0].argmax(0).numpy()
    conf = np.concatenate([b.confidence for b in blocks])
    assert np.allclose(conf, in_memory.max(0).values.numpy(), atol=1e-5)
    assert (classes == in_memory.argmax(0).numpy()).mean() > 0.999
    assert (classes == whole).mean() > 0.99


def test_extras_are_consistent_probabilities(tmp_path):
    arr = np.random.default_rng(2).normal(size=(3, 50, 60)).astype(np.float32)
    blocks, classes = stream_classes(
        write_tif(tmp_path / "a.tif", arr), conv_model(3), 32, 0.25, {"confidence", "entropy", "probs"}
    )
    probs = np.concatenate([b.probs for b in blocks], 1).astype(int)  # (K, H, W) percent
    assert probs.shape == (4, 50, 60) and np.abs(probs.sum(0) - 100).max() <= 2
    assert (probs.argmax(0) == classes).mean() > 0.95  # percent rounding can tie two classes
    conf = np.concatenate([b.confidence for b in blocks])
    ent = np.concatenate([b.entropy for b in blocks])
    assert ((conf >= 0.25) & (conf <= 1)).all() and ((ent >= 0) & (ent <= np.log(4) + 1e-5)).all()


def test_predict_command_keeps_georeferencing_nodata_and_writes_extras(trained, tmp_path):
    arr = np.full((3, 90, 70), 120, np.uint8)
    arr[:, :10, :] = 0  # a nodata band across the top
    src = write_tif(tmp_path / "in.tif", arr, nodata=0)
    out = tmp_path / "o"
    assert run_predict(trained, src, "-o", out, "--confidence", "--entropy", "--probs", "--tile", "32") == 0
    with rasterio.open(out / "in_classes.tif") as cls, rasterio.open(src) as ref:
        assert cls.crs == ref.crs and cls.transform == ref.transform and cls.shape == ref.shape
        classes = cls.read(1)
        assert cls.nodata == 255 and cls.colormap(1)[0][:3] == (60, 16, 152)
    assert (classes[:10] == 255).all() and (classes[10:] < 5).all()
    with rasterio.open(out / "in_confidence.tif") as c, rasterio.open(out / "in_probs.tif") as p:
        conf, probs = c.read(1), p.read()
        assert c.crs == ref.crs and p.count == 5 and p.descriptions[0].startswith("P(building) percent")
        assert p.scales == (0.01,) * 5  # percent stored, probability read (the confidence raster's unit)
    assert np.isnan(conf[:10]).all() and (conf[10:] > 0).all()
    assert (probs[:, :10] == 255).all() and np.abs(probs[:, 10:].astype(int).sum(0) - 100).max() <= 3
    with rasterio.open(out / "in_entropy.tif") as e:
        assert e.units == ("nats",) and e.dtypes == ("float32",)
    assert not list(out.glob(".*.tmp*"))  # no temporaries


def test_nan_pixels_give_nodata(trained, tmp_path):
    arr = np.random.default_rng(0).uniform(0, 255, (3, 40, 40)).astype(np.float32)
    arr[:, 5:9, 5:9] = np.nan
    assert run_predict(trained, write_tif(tmp_path / "f.tif", arr), "-o", tmp_path / "o") == 0
    with rasterio.open(tmp_path / "o" / "f_classes.tif") as cls:
        classes = cls.read(1)
    assert (classes[5:9, 5:9] == 255).all() and (classes < 5).sum() == 40 * 40 - 16


def test_interrupted_prediction_leaves_no_output(trained, tmp_path, monkeypatch, capsys):
    from semiland.inference import predict

    src = write_tif(tmp_path / "in.tif", np.full((3, 200, 64), 90, np.uint8))
    calls = []

    def fail_on_second_block(self, block):
        calls.append(block.y0)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C halfway through the raster
        return original(self, block)

    original = predict.Outputs.write
    monkeypatch.setattr(predict.Outputs, "write", fail_on_second_block)
    assert run_predict(trained, src, "-o", tmp_path / "o", "--tile", "32", "--confidence") == 130
    assert "--skip-existing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing half-written, no temporaries, not even the folder it made


def test_skip_existing_finishes_only_what_is_missing(trained, tmp_path, capsys):
    a = write_tif(tmp_path / "a.tif", np.full((3, 40, 40), 50, np.uint8))
    b = write_tif(tmp_path / "b.tif", np.full((3, 40, 40), 200, np.uint8))
    out = tmp_path / "o"
    assert run_predict(trained, a, b, "-o", out) == 0
    (out / "b_classes.tif").unlink()
    stamp = (out / "a_classes.tif").stat().st_mtime_ns
    assert run_predict(trained, a, b, "-o", out) == 2  # an existing output is refused …
    assert "--skip-existing" in capsys.readouterr().err
    assert run_predict(trained, a, b, "-o", out, "--skip-existing") == 0  # … or skipped on request
    assert "skipped 1" in capsys.readouterr().out
    assert (out / "b_classes.tif").is_file() and (out / "a_classes.tif").stat().st_mtime_ns == stamp


def test_cog_output_has_overviews_and_colours(trained, tmp_path):
    src = write_tif(tmp_path / "big.tif", np.random.default_rng(0).integers(0, 255, (3, 1100, 1030), np.uint8))
    assert run_predict(trained, src, "-o", tmp_path / "o", "--cog", "--tile", "256", "--batch", "16") == 0
    with rasterio.open(tmp_path / "o" / "big_classes.tif") as cog:
        assert cog.overviews(1) and cog.profile["tiled"] and cog.compression.name.lower() == "deflate"
        assert cog.colormap(1)[1][:3] == (132, 41, 246) and cog.shape == (1100, 1030)
        assert cog.read(1).max() < 5
        assert cog.tags()["SEMILAND_METHOD"] == "supervised" and cog.descriptions[0].startswith("class: 0 ")
    assert not list((tmp_path / "o").glob(".*.tmp*"))


def test_workers_share_inputs_with_the_same_result(trained, tmp_path):
    rng = np.random.default_rng(3)
    srcs = [write_tif(tmp_path / f"i{k}.tif", rng.integers(0, 255, (3, 48, 48), np.uint8)) for k in range(3)]
    assert run_predict(trained, *srcs, "-o", tmp_path / "one") == 0
    assert run_predict(trained, *srcs, "-o", tmp_path / "two", "--workers", "2") == 0
    for s in srcs:
        name = f"{s.stem}_classes.tif"
        with rasterio.open(tmp_path / "one" / name) as a, rasterio.open(tmp_path / "two" / name) as b:
            assert (a.read(1) == b.read(1)).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bands", "1,2"], "--bands selects 2 bands but the checkpoint was trained on 3"),
        (["--bands", "1,2,9"], "has 3 bands; --bands asks for [9]"),
        (["--bands", "x"], "--bands must be 1-based band numbers"),
        (["--overlap", "1.5"], "--overlap must be in [0, 1)"),
    ],
)
def test_bad_band_selection_and_options_are_one_line(trained, tmp_path, capsys, args, message):
    src = write_tif(tmp_path / "in.tif", np.full((3, 40, 40), 9, np.uint8))
    assert run_predict(trained, src, "-o", tmp_path / "o", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not (tmp_path / "o").exists()  # the output folder it made is removed again: a refusal leaves no trace


def test_unreadable_and_clashing_inputs_are_refused(trained, tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    (tmp_path / "kept").mkdir()
    assert run_predict(trained, bad, "-o", tmp_path / "o" / "nested") == 2
    assert run_predict(trained, bad, "-o", tmp_path / "kept") == 2
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and (tmp_path / "kept").is_dir()  # only folders it made itself go
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_tif(tmp_path / "x" / "same.tif", np.full((3, 8, 8), 9, np.uint8))
    b = write_tif(tmp_path / "y" / "same.tif", np.full((3, 8, 8), 9, np.uint8))
    assert run_predict(trained, a, b, "-o", tmp_path / "o2") == 2
    assert "would both write same_classes.tif" in capsys.readouterr().err


def test_bench_predict_compares_both_pipelines(tmp_path, capsys):
    from semiland.cli import main

    out = tmp_path / "bench.json"
    args = ["bench", "predict", "--naive-size", "96", "--size", "130", "--tile", "32", "--json", str(out)]
    assert main([*args, "--workdir", str(tmp_path), "model.arch=tiny_unet", "model.width=4"]) == 0
    import json

    r = json.loads(out.read_text())
    assert r["class_agreement"] > 0.999  # same model, same tiles, same blending: the same map
    assert r["ours_px_per_s"] > 0 and r["naive_px_per_s"] > 0 and r["large_px"] == 130 * 130
    assert r["ours_peak_rss_mib"] > 0 and 0 < r["fraction_of_peak"] < 1
    assert "ratio ours / naive" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # the test rasters are cleaned up


def test_at_scale_predicts_native_tiles_through_a_coarser_model():
    from semiland.engine.sliding import at_scale

    seen = []

    def model(x):  # records the resolution it is given; logits = the input's first two bands
        seen.append(tuple(x.shape[-2:]))
        return x[:, :2]

    x = torch.rand(2, 3, 96, 64)
    out = at_scale(model, 0.5)(x)
    assert seen == [(64, 32)] and out.shape == (2, 2, 96, 64)  # 48 × 32 rounded up to a multiple of 32
    const = torch.full((1, 3, 64, 64), 0.7)
    assert torch.allclose(at_scale(model, 0.5)(const), const[:, :2], atol=1e-5)
    assert torch.equal(at_scale(model, 1.0)(x), x[:, :2]) and seen[-1] == (96, 64)  # native: as it is


def test_a_model_trained_at_half_resolution_tests_and_predicts_at_native_size(synth_root, tmp_path):
    import json

    from semiland.cli import main

    from .conftest import write_config

    run = tmp_path / "half"
    cfg = write_config(tmp_path, synth_root, data={"scale": 0.5})
    assert main(["fit", "--config", str(cfg), "-o", str(run), "train.steps=2"]) == 0
    metrics = json.loads((run / "test" / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * 64 * 64  # scored on the test images at their own resolution
    src = write_tif(tmp_path / "in.tif", np.full((3, 70, 90), 120, np.uint8))
    assert run_predict(run, src, "-o", tmp_path / "o", "--tile", "64") == 0
    with rasterio.open(tmp_path / "o" / "in_classes.tif") as out:
        assert out.shape == (70, 90) and (out.read(1) < 5).all()
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "bad"), "data.scale=0"]) == 2


def test_class_map_names_its_classes_for_gis_and_takes_creation_options(trained, tmp_path, capsys):
    from .gdal_c import categories_and_table

    src = write_tif(tmp_path / "scene.tif", np.full((3, 40, 40), 60, np.uint8))
    out = tmp_path / "o"
    assert run_predict(trained, src, "-o", out, "--co", "compress=zstd", "--co", "ZSTD_LEVEL=3", "--nodata", "250") == 0
    names, table = categories_and_table(out / "scene_classes.tif")  # what QGIS's legend reads
    assert names == ["building", "land", "road", "vegetation", "water"]
    assert [(r["value"], r["class"]) for r in table] == [(str(k), n) for k, n in enumerate(names)]
    assert (table[0]["red"], table[0]["green"], table[0]["blue"]) == ("60", "16", "152")
    with rasterio.open(out / "scene_classes.tif") as cls:
        assert cls.compression.name.lower() == "zstd" and cls.nodata == 250
    assert sorted(p.name for p in out.iterdir()) == [".semiland.json", "scene_classes.tif", "scene_classes.tif.aux.xml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--co", "COMPRES=ZSTD"], "--co COMPRES=ZSTD: driver GTiff does not support creation option COMPRES"),
        (["--co", "COMPRESS=FOO"], "'FOO' is an unexpected value for COMPRESS"),
        (["--cog", "--co", "BLOCKXSIZE=512"], "driver COG does not support creation option BLOCKXSIZE"),
        (["--co", "BLOCKXSIZE=100"], "multiples of 16"),
        (["--nodata", "3"], "--nodata 3 is not a value a class map can hold apart from its classes"),
    ],
)
def test_bad_creation_options_and_nodata_are_one_line_before_work(trained, tmp_path, capsys, args, message):
    src = write_tif(tmp_path / "in.tif", np.full((3, 40, 40), 9, np.uint8))
    assert run_predict(trained, src, "-o", tmp_path / "o", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not (tmp_path / "o").exists()


def test_cog_overviews_of_a_class_map_hold_only_classes(tmp_path):
    """MODE, not AVERAGE: an overview of columns alternating class 0 / class 4 is 0 or 4, never 2 (road)."""
    from types import SimpleNamespace

    from semiland.data.classes import ClassTable
    from semiland.inference.geotiff import Outputs
    from semiland.inference.predict import PredictOptions
    from semiland.inference.stream import Block

    table = ClassTable(tuple("abcde"), tuple((k, k, k) for k in range(5)))
    reader = SimpleNamespace(height=1024, width=1024, profile={})
    stripes = (np.indices((1024, 1024))[1] % 2 * 4).astype(np.uint8)
    outputs = Outputs({"classes": tmp_path / "m_classes.tif"}, reader, table, PredictOptions(cog=True))
    outputs.write(Block(0, stripes))
    outputs.close(True)
    with rasterio.open(tmp_path / "m_classes.tif") as cog:
        assert cog.overviews(1)
        assert set(np.unique(cog.read(1, out_shape=(512, 512)))) <= {0, 4}
