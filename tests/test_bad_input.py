"""Bad input, by class, through the real command: exit 2, one `semiland: error:` line, no traceback, and every
file that existed before (inputs, a sentinel in the output folder, the working directory) byte-identical after.

Each class was found by a new user (issue #39); docs/reliability.md lists them with their counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from PIL import Image

from semiland.cli import main

from .conftest import write_config
from .test_optical_sar import floods_fixture, tif
from .test_safety import snapshot

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def world(tmp_path, trained, synth_root, monkeypatch):
    """A working directory with a sentinel file, an output folder with one, and the paths the cases use."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's own")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("the user's own too")
    return {"tmp": tmp_path, "ckpt": str(trained / "checkpoints" / "best.ckpt"), "cfg": str(write_config(tmp_path, synth_root)),
            "img": str(synth_root / "region_3" / "images" / "scene_000.tif"), "data": synth_root}  # fmt: skip


def refused(capsys, argv: list[str], *watched: Path, expect: str = "") -> str:
    """Run `semiland argv`: exit 2, one error line containing `expect`, every watched folder unchanged."""
    before = [snapshot(w) for w in watched]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semiland: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert expect in lines[0], lines[0]
    assert [snapshot(w) for w in watched] == before
    return lines[0]


# --- options out of range: refused by the parser, before anything is read ---
@pytest.mark.parametrize(
    "argv, expect",
    [
        (["predict", "--ckpt", "{ckpt}", "{img}", "-o", "out/p", "--batch", "0"], "--batch: must be at least 1"),
        (["predict", "--ckpt", "{ckpt}", "{img}", "-o", "out/p", "--workers", "0"], "--workers"),
        (["predict", "--ckpt", "{ckpt}", "{img}", "-o", "out/p", "--tile", "0"], "--tile"),
        (["predict", "--ckpt", "{ckpt}", "{img}", "-o", "out/p", "--co", "COMPRESS"], "--co: must be KEY=VALUE"),
        (
            ["subsample", "{data}", "--preset", "synthetic", "--fraction", "0.5", "--subtile", "0", "-o", "out/s"],
            "--subtile",
        ),
        (["bench", "train-speed", "--size", "0"], "--size"),
        (["bench", "train-speed", "--steps", "0"], "--steps"),
        (["bench", "train-speed", "--batch", "-1"], "--batch"),
        (["bench", "predict", "--naive-size", "0"], "--naive-size"),
        (["bench", "step-cost", "--repeats", "0"], "--repeats"),
        (["demo", "--steps", "zero"], "whole number"),
        (["fit", "--nonsense"], "unrecognized arguments"),
        (["fit", "--config", "{cfg}", "--device", "tpu"], "--device: use auto, cpu, cuda or cuda:N"),
        (["fit", "-q", "-v"], "not allowed with argument"),
    ],
)
def test_counts_out_of_range_are_one_line(world, capsys, argv, expect):
    argv = [a.format(**world) for a in argv]
    with pytest.raises(SystemExit) as ex:
        main(argv)
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("semiland: error: ") and expect in err[0]
    assert not (world["tmp"] / "out" / "p").exists() and not (world["tmp"] / "out" / "s").exists()


# --- config and split files ---
def test_config_files_that_are_not_what_they_claim(world, capsys):
    tmp = world["tmp"]
    (tmp / "latin1.yaml").write_bytes("data:\n  preset: synthetic  # café\n".encode("latin-1"))
    refused(capsys, ["fit", "--config", "latin1.yaml", "-o", "out/r"], tmp, expect="not UTF-8")
    (tmp / "list.yaml").write_text("- data\n- model\n")
    refused(capsys, ["fit", "--config", "list.yaml", "-o", "out/r"], tmp, expect="not a mapping")
    (tmp / "scalar.yaml").write_text("just words\n")
    refused(capsys, ["fit", "--config", "scalar.yaml", "-o", "out/r"], tmp, expect="not a mapping")
    # a billion-laughs alias bomb: refused while parsing, before any value is expanded
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
    )
    (tmp / "bomb.yaml").write_text(bomb)
    refused(capsys, ["fit", "--config", "bomb.yaml", "-o", "out/r"], tmp, expect="aliases")
    (tmp / "split.json").write_bytes('{"labeled": ["caf\xe9"]}'.encode("latin-1"))
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "data.split_mode=file",
                     "data.split_file=split.json"], tmp, expect="not UTF-8")  # fmt: skip


@pytest.mark.parametrize(
    "table, expect",
    [
        ("building,60,16,152\nland,132,41,246\n", "header row name,r,g,b"),
        ("name,r,g,b\nbuilding,60,16,x\n", "whole numbers"),
        ("name,r,g,b\nbuilding,60,16,300\n", "outside 0-255"),
        ("name,r,g,b\nbuilding,60,16\n", "whole numbers"),
    ],
)
def test_class_tables_with_damage(world, capsys, synth_root, table, expect):
    data = world["tmp"] / "d"
    shutil.copytree(synth_root, data)
    (data / "classes.csv").write_text(table)
    cfg = world["tmp"] / "f.yaml"
    cfg.write_text(Path(world["cfg"]).read_text().replace("preset: synthetic", "preset: folder").replace(
        str(synth_root), str(data)))  # fmt: skip
    refused(capsys, ["fit", "--config", str(cfg), "-o", "out/r"], world["tmp"], expect=expect)


# --- checkpoints ---
@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda c: c.update(semiland={"format": 1}), "missing or of the wrong type: config"),
        (lambda c: c.update(semiland="x"), "missing or of the wrong type"),
        (lambda c: c["semiland"].update(config=["x"]), "config"),
        (lambda c: c["semiland"].update(in_channels="3"), "in_channels"),
        (lambda c: c["semiland"]["config"].update(data=5), "must be a mapping"),
        (lambda c: c["semiland"]["config"].pop("model"), "does not fit its own config"),
        (lambda c: c["semiland"].update(classes={"names": 5}), "damaged class table"),
        (lambda c: c.update(state_dict=[1, 2]), "state_dict"),
    ],
)
def test_checkpoints_with_damaged_metadata(world, capsys, damage, expect):
    ckpt = torch.load(world["ckpt"], weights_only=True)
    damage(ckpt)
    bad = world["tmp"] / "bad.ckpt"
    torch.save(ckpt, bad)
    refused(capsys, ["test", "--ckpt", str(bad), "-o", "out/t"], world["tmp"], expect=expect)
    refused(capsys, ["predict", "--ckpt", str(bad), world["img"], "-o", "out/p"], world["tmp"], expect=expect)


# --- paths and images ---
def test_file_names_that_are_not_utf8(world, capsys):
    odd = b"\xff\xfe".decode("utf-8", "surrogateescape")  # as os.listdir and sys.argv give such bytes
    folder = world["tmp"] / "scenes"
    folder.mkdir()
    shutil.copy(world["img"], folder / f"{odd}.tif")
    # found inside a folder: GDAL cannot open it, said in one line (the name escaped, not a crash in print)
    err = refused(
        capsys, ["predict", "--ckpt", world["ckpt"], str(folder), "-o", "out/p"], world["tmp"], expect="UTF-8"
    )
    assert "\\udcff" in err
    # given on the command line (an input, -o, a config): refused before anything runs
    for argv in (["predict", "--ckpt", world["ckpt"], str(folder / f"{odd}.tif"), "-o", "out/p"],
                 ["predict", "--ckpt", world["ckpt"], world["img"], "-o", f"out/{odd}"],
                 ["fit", "--config", f"{odd}.yaml", "-o", "out/r"]):  # fmt: skip
        with pytest.raises(SystemExit) as ex:
            main(argv)
        assert ex.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "not valid UTF-8" in lines[0]
    assert sorted(p.name for p in (world["tmp"] / "out").iterdir()) == ["keep.txt"]


def test_an_image_above_pillows_decompression_bomb_limit_is_read_by_window(world, monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    for suffix in ("jpg", "png"):
        Image.fromarray(rgb).save(world["tmp"] / f"ortho.{suffix}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # as a real 100+ Mpx orthophoto against the default
    for suffix in ("jpg", "png"):
        assert main(["predict", "--ckpt", world["ckpt"], f"ortho.{suffix}", "-o", suffix]) == 0
        with rasterio.open(world["tmp"] / suffix / "ortho_classes.tif") as out:
            assert out.shape == (300, 200)


def test_a_tile_larger_than_the_raster_is_clipped(world):
    assert main(["predict", "--ckpt", world["ckpt"], world["img"], "-o", "a", "--tile", "64"]) == 0
    assert main(["predict", "--ckpt", world["ckpt"], world["img"], "-o", "b", "--tile", "4096"]) == 0
    with rasterio.open("a/scene_000_classes.tif") as a, rasterio.open("b/scene_000_classes.tif") as b:
        assert (a.read(1) == b.read(1)).all()  # the same map: the 4096 tile became the raster's 64


# --- training settings a model or machine cannot run ---
def test_settings_that_cannot_train_are_refused_before_training(world, capsys):
    tmp = world["tmp"]
    deeplab = ["model.arch=deeplabv3plus", "model.encoder=resnet18", "model.encoder_weights=null", "model.width=16"]
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "data.batch_size=1", *deeplab], tmp,
            expect="data.batch_size=1")  # fmt: skip
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "train.devices=4"], tmp,
            expect="validation image")  # fmt: skip
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "model.arch=segnet", "method.name=unimatch",
                     "data.unlabeled=[region_1]"], tmp, expect="pooling indices")  # fmt: skip
    # a key the architecture never reads is refused, not ignored
    refused(
        capsys,
        ["fit", "--config", world["cfg"], "-o", "out/r", *deeplab[:3]],
        tmp,
        expect="model.width=8 has no effect",
    )
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "model.encoder=resnet50"], tmp,
            expect="model.encoder=resnet50 has no effect on model.arch=tiny_unet")  # fmt: skip
    assert not (tmp / "out" / "r").exists()


# --- the guide's promises about data layouts ---
def test_a_region_without_masks_is_unlabeled(world, capsys, synth_root):
    data = world["tmp"] / "d"
    shutil.copytree(synth_root, data)
    shutil.rmtree(data / "region_1" / "masks")
    cfg = world["tmp"] / "f.yaml"
    cfg.write_text(Path(world["cfg"]).read_text().replace("preset: synthetic", "preset: folder").replace(
        str(synth_root), str(data)))  # fmt: skip
    assert main(["fit", "--config", str(cfg), "-o", "run", "method.name=fixmatch", "data.unlabeled=[region_1]"]) == 0
    capsys.readouterr()
    import json

    split = json.loads((world["tmp"] / "run" / "split.json").read_text())
    assert sorted(split["unlabeled"]) == ["region_1/scene_000", "region_1/scene_001"]
    refused(capsys, ["fit", "--config", str(cfg), "-o", "out/r", "data.labeled=[region_1]"], world["tmp"],
            expect="no masks/ folder")  # fmt: skip
    assert main(["analyze", str(data), "--features", "stats", "--subtile", "32", "--no-progress", "-o", "an"]) == 0


def test_index_masks_declare_their_no_data(world, capsys):
    """A mask GeoTIFF's nodata tag, and data.ignore_values for values such as Sen1Floods11's -1 or a 0."""
    from semiland.config import DataConfig
    from semiland.data.presets import build_dataset
    from semiland.data.sources import load_sample

    root = world["tmp"] / "idx"
    rgb = np.random.default_rng(0).integers(0, 255, (3, 32, 32), dtype=np.uint8)
    mask = np.ones((32, 32), np.int16)
    mask[:8] = 7  # "no data" in this product
    mask[8:16] = -9  # the file's own nodata tag
    for r in range(4):
        tif(root / f"region_{r}" / "images" / "a.tif", rgb)
        tif(root / f"region_{r}" / "masks" / "a.tif", mask, nodata=-9)
    (root / "classes.csv").write_text("name,r,g,b\nzero,0,0,0\none,255,255,255\n")
    spec = build_dataset(DataConfig(preset="folder", root=str(root), ignore_values=[7]))
    sample = load_sample(spec.samples[0], spec.classes)
    assert (sample.mask[:16] == 255).all() and (sample.mask[16:] == 1).all()
    with pytest.raises(Exception, match="mask values \\[7\\]"):  # without the key, 7 is an unknown value
        load_sample(build_dataset(DataConfig(preset="folder", root=str(root))).samples[0], spec.classes.__class__(
            names=spec.classes.names, colors=spec.classes.colors))  # fmt: skip
    with pytest.raises(Exception, match="class values"):
        build_dataset(DataConfig(preset="folder", root=str(root), ignore_values=[1]))


def test_sen1floods11_trains_on_sentinel1_alone(world, tmp_path):
    root = floods_fixture(tmp_path / "s", chips=("Spain_1", "Spain_2", "Ghana_1"))
    shutil.rmtree(root / "S2Hand")  # most Sen1Floods11 users have the S1 chips only
    cfg = world["tmp"] / "s1.yaml"
    cfg.write_text(Path(world["cfg"]).read_text().replace("preset: synthetic", "preset: sen1floods11").replace(
        str(world["data"]), str(root)))  # fmt: skip
    args = ["data.modality=sar", "data.split_mode=count", "data.labeled=1", "data.val=1", "data.test=1",
            "data.unlabeled=0"]  # fmt: skip
    assert main(["fit", "--config", str(cfg), "-o", "s1run", *args]) == 0
    assert main(["fit", "--config", str(cfg), "-o", "both", *args[1:]]) == 2  # optical needed for both


# --- errors before the work, and what will run ---
def test_a_bad_test_mask_is_named_before_training(world, capsys, synth_root, monkeypatch):
    data = world["tmp"] / "d"
    shutil.copytree(synth_root, data)
    mask = data / "region_3" / "masks" / "scene_001.png"
    rgb = np.asarray(Image.open(mask).convert("RGB")).copy()
    rgb[:4, :4] = (1, 2, 3)  # a colour no class has, in a *test* mask
    Image.fromarray(rgb).save(mask)
    import semiland.engine.runner as runner

    monkeypatch.setattr(runner, "make_trainer", lambda *a, **k: pytest.fail("training started"))
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", f"data.root={data}"], world["tmp"],
            expect="#010203")  # fmt: skip


def test_predict_names_a_bad_input_before_writing_any_map(world, capsys, synth_root_4band):
    good = [world["img"], str(world["data"] / "region_2" / "images" / "scene_001.tif")]
    bad = str(synth_root_4band / "region_0" / "images" / "scene_000.tif")  # 4 bands for a 3-band model, named
    shutil.copy(bad, world["tmp"] / "zz_last.tif")  # last: the good ones would be written first without the check
    bad = str(world["tmp"] / "zz_last.tif")
    refused(capsys, ["predict", "--ckpt", world["ckpt"], *good, bad, "-o", "maps"], world["tmp"], expect="4 bands")
    assert not (world["tmp"] / "maps").exists()


def test_the_summary_warns_of_classes_the_labeled_images_never_show(world, capsys):
    # the printed shares add up, and the warning appears exactly when a class is missing from them
    assert main(["fit", "--config", world["cfg"], "-o", "run", "train.steps=1"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("labeled pixels by class: "))
    shares = {p.rsplit(" ", 2)[0]: float(p.rsplit(" ", 2)[1]) for p in line.split(": ", 1)[1].split(", ")}
    assert abs(sum(shares.values()) - 100) < 0.5
    absent = [c for c, s in shares.items() if s == 0]
    assert ("warning: the labeled images show no" in out) == bool(absent)
    assert "run: method supervised, model tiny_unet, 1 steps" in out


def test_class_warnings_name_absent_and_rare_classes():
    from semiland.data.preflight import class_warnings

    class Data:  # the two attributes class_warnings reads
        class spec:
            class classes:
                names = ("building", "land", "road", "water")

    counts = {"labeled": np.array([0, 9950, 50, 0]), "evaluated": np.array([350, 500, 150, 0])}
    warnings = class_warnings(Data, counts)
    assert "show no building, water" in warnings[0] and "building 35 %" in warnings[0] and "water 0" not in warnings[0]
    assert "barely show road (0.50 % of labeled pixels)" in warnings[1]


def test_half_precision_asked_on_a_cpu_records_what_ran(world, capsys):
    """train.precision=16-mixed on a CPU: Lightning would run bf16 and the run record "16-mixed"."""
    import yaml

    from semiland.engine import precision

    precision._say.cache_clear()  # said once per process: this test must see it
    assert precision.resolve_precision("16-mixed", "cpu") == "bf16-mixed"
    assert main(["fit", "--config", world["cfg"], "-o", "run", "train.precision=16-mixed", "train.steps=1"]) == 0
    assert "float16 autocast does not run on a CPU" in capsys.readouterr().err
    saved = yaml.safe_load((world["tmp"] / "run" / "config.yaml").read_text())
    assert saved["train"]["precision"] == "bf16-mixed"


def test_device_is_one_option_in_every_training_command(world, capsys):
    """--device means the same in fit, self-train and test as in predict; with train.accelerator it is refused."""
    refused(capsys, ["fit", "--config", world["cfg"], "-o", "out/r", "--device", "cpu", "train.accelerator=gpu"],
            world["tmp"], expect="--device and train.accelerator=gpu both choose the device")  # fmt: skip
    assert main(["test", "--ckpt", world["ckpt"], "-o", "scores", "--device", "cpu"]) == 0
    assert (
        main(["fit", "--config", world["cfg"], "-o", "run", "--device", "cpu", "train.steps=1", "train.val_every=1"])
        == 0
    )
    assert yaml.safe_load((world["tmp"] / "run" / "config.yaml").read_text())["train"]["accelerator"] == "cpu"
