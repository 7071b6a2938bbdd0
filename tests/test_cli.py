"""The command line end to end (fit → test → predict) and its bad-input answers: one line, nothing lost."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import rasterio
import yaml

from semiland.cli import main

from .conftest import run_predict, write_config

pytestmark = pytest.mark.filterwarnings("ignore")


def test_fit_writes_the_whole_run_folder(trained):
    for rel in [
        "config.yaml",
        "split.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "logs/metrics.csv",
        "test/metrics.json",
        "test/confusion_matrix.png",
        "report.html",
        "figures/panels.png",
        "figures/training_curves.png",
        "figures/per_class_iou.png",
    ]:
        assert (trained / rel).is_file(), rel
    html = (trained / "report.html").read_text()
    assert "mIoU" in html and "figures/panels.png" in html
    import base64
    import re

    images = re.findall(r"<img src='data:image/png;base64,([^']+)' alt='[^']*' data-file='([^']+)'>", html)
    assert len(images) >= 4  # every figure embedded (the report is one file to mail), and the same as its PNG
    assert all(base64.b64decode(data) == (trained / rel).read_bytes() for data, rel in images)
    saved = yaml.safe_load((trained / "config.yaml").read_text())
    assert len(saved["data"]["mean"]) == 3 and saved["train"]["steps"] == 4


def test_test_command_prints_table_and_writes_json(trained, tmp_path, capsys):
    assert main(["test", "--ckpt", str(trained / "checkpoints" / "best.ckpt"), "-o", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "kappa" in out
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"building", "land", "road", "vegetation", "water"}
    assert metrics["pixels"] == 2 * 64 * 64  # region_3: 2 images of 64 × 64, every pixel labeled
    assert (tmp_path / "t" / "confusion_matrix.png").is_file()


def test_test_on_other_images_never_over_the_test_results(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    before = (trained / "test" / "metrics.json").read_text()
    assert main(["test", "--ckpt", ckpt, "--on", "unlabeled"]) == 0  # region_1: neither labeled, val nor test
    m = json.loads((trained / "test-on-unlabeled" / "metrics.json").read_text())
    assert m["evaluated_on"] == "unlabeled" and {i.split("/")[0] for i in m["test_images"]} == {"region_1"}
    assert m["pixels"] == 2 * 64 * 64 and (trained / "test" / "metrics.json").read_text() == before
    assert main(["test", "--ckpt", ckpt, "--on", "region_1,region_2", "-o", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["pixels"] == 4 * 64 * 64
    capsys.readouterr()
    assert main(["test", "--ckpt", ckpt, "--on", "region_9", "-o", str(tmp_path / "x")]) == 2
    assert "not a split set (labeled, unlabeled, val, test) nor regions" in capsys.readouterr().err
    # a split key would be ignored (the run reads its split.json): refused, pointing at --on
    assert main(["test", "--ckpt", ckpt, "data.test=[region_1]", "-o", str(tmp_path / "y")]) == 2
    assert "data.test cannot change a trained run's split" in capsys.readouterr().err
    assert not (tmp_path / "y" / "metrics.json").exists()


def test_bench_targets_scores_every_view(trained, capsys):
    """`bench targets`: both batch-norm modes, the strong view and S4Net's affine view each get a scored line,
    and S4Net's consistency term is a finite non-negative number."""
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    args = ["bench", "targets", "--ckpt", ckpt, "--images", "val", "--batches", "2", "--batch-size", "2"]
    assert main([*args, "--strong", "1.0", "--affine", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for line in (
        "method.target_bn=running",
        "method.target_bn=batch",
        "a labeled batch's",
        "strong view",
        "affine view",
    ):
        assert sum(line in row and "mIoU" in row for row in out.splitlines()) == 1, (line, out)
    # each view's predicted class shares and the masks' true ones, each summing to 100 %
    shares = [row.split("shares, %: ")[1].split() for row in out.splitlines() if "shares, %: " in row]
    assert len(shares) == 6 and all(abs(sum(map(float, r[1::2])) - 100) < 0.5 for r in shares), out
    consistency = float(out.split("between two affine views: ")[1].split()[0])
    assert 0 <= consistency < 2  # squared L2 between two distributions is at most 2
    assert 0 < float(out.split("mean confidence (max p, batch statistics): ")[1].split()[0]) <= 1


def test_test_a_moved_run_reads_its_own_split(synth_root, tmp_path):
    run = tmp_path / "run"
    assert main(["fit", "--config", str(write_config(tmp_path, synth_root)), "-o", str(run), "train.steps=2"]) == 0
    moved = shutil.move(run, tmp_path / "moved")  # the checkpoint's config still names run/split.json
    assert main(["test", "--ckpt", f"{moved}/checkpoints/best.ckpt", "-o", str(tmp_path / "t")]) == 0
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert {i.split("/")[0] for i in m["test_images"]} == {"region_3"}


def test_predict_keeps_georeferencing(trained, synth_root, tmp_path):
    src = synth_root / "region_3" / "images" / "scene_000.tif"
    assert run_predict(trained, str(src), "-o", str(tmp_path / "p"), "--png") == 0
    with rasterio.open(tmp_path / "p" / "scene_000_classes.tif") as out, rasterio.open(src) as ref:
        assert out.crs == ref.crs and out.transform == ref.transform and out.shape == ref.shape
        classes = out.read(1)
        assert classes.max() < 5 and out.nodata == 255 and out.colormap(1)[0][:3] == (60, 16, 152)
        # what made the map, as GDAL metadata: version, checkpoint and its hash, method, classes, input
        tags, ckpt = out.tags(), trained / "checkpoints" / "best.ckpt"
        assert tags["SEMILAND_CHECKPOINT"] == str(ckpt.resolve()) and tags["SEMILAND_METHOD"] == "supervised"
        assert tags["SEMILAND_CHECKPOINT_SHA256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
        assert json.loads(tags["SEMILAND_CLASSES"])["0"] == "building" and tags["SEMILAND_INPUT"] == str(src.resolve())
        assert out.descriptions[0].startswith("class: 0 building, 1 land")
    assert (tmp_path / "p" / "scene_000_classes.png").is_file()
    # an existing output is refused, then replaced with --overwrite
    assert run_predict(trained, str(src), "-o", str(tmp_path / "p")) == 2
    assert run_predict(trained, str(src), "-o", str(tmp_path / "p"), "--overwrite") == 0


def test_predict_nodata_in_gives_nodata_out(trained, tmp_path):
    arr = np.full((3, 40, 40), 120, np.uint8)
    with rasterio.open(
        tmp_path / "in.tif",
        "w",
        driver="GTiff",
        width=40,
        height=40,
        count=3,
        dtype="uint8",
        nodata=0,
        crs="EPSG:4326",
        transform=rasterio.transform.from_origin(55, 25, 1e-4, 1e-4),
    ) as dst:
        arr[:, :10, :10] = 0
        dst.write(arr)
    assert run_predict(trained, str(tmp_path / "in.tif"), "-o", str(tmp_path / "o")) == 0
    with rasterio.open(tmp_path / "o" / "in_classes.tif") as out:
        classes = out.read(1)
    assert (classes[:10, :10] == 255).all() and (classes[10:, 10:] < 5).all()


def test_predict_wrong_band_count(trained, synth_root_4band, tmp_path, capsys):
    src = synth_root_4band / "region_0" / "images" / "scene_000.tif"
    assert run_predict(trained, str(src), "-o", str(tmp_path / "p")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has 4 bands but the checkpoint was trained on 3" in err
    assert not list((tmp_path / "p").glob("*.tif"))


def test_existing_run_folder_is_refused(trained, synth_root, tmp_path, capsys):
    cfg = write_config(tmp_path, synth_root)
    before = sorted(p.name for p in trained.iterdir())
    assert main(["fit", "--config", str(cfg), "-o", str(trained)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in trained.iterdir()) == before


def test_corrupt_checkpoint_is_one_line(trained, tmp_path, capsys):
    data = (trained / "checkpoints" / "best.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    assert main(["test", "--ckpt", str(tmp_path / "cut.ckpt"), "-o", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt or truncated" in err and err.count("\n") == 0


def test_unwritable_output(trained, synth_root, tmp_path, capsys):
    src = synth_root / "region_3" / "images" / "scene_000.tif"
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    targets = ["/sys/semiland-out"]  # /sys refuses new folders even to root
    if os.geteuid() != 0:  # a read-only folder refuses ordinary users
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        targets.append(str(locked / "o"))
    for target in targets:
        assert main(["predict", "--ckpt", ckpt, str(src), "-o", target]) == 2
        err = capsys.readouterr().err.strip()
        assert ("cannot create output folder" in err or "not writable" in err) and err.count("\n") == 0


def test_output_path_that_is_a_file(trained, synth_root, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    src = synth_root / "region_3" / "images" / "scene_000.tif"
    assert run_predict(trained, str(src), "-o", str(tmp_path / "afile" / "o")) == 2
    assert "cannot create output folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.labeled=[tile_9]"], "region 'tile_9' (data.labeled) does not exist"),
        (["data.crop_sise=32"], "did you mean 'crop_size'"),
        (["method.name=fixmatch", "data.unlabeled=[]"], "learns from unlabeled images but the split has none"),
        (["data.preset=folder", "data.root={tmp}/missing"], "not found"),
    ],
)
def test_bad_config_inputs_are_one_line(synth_root, tmp_path, capsys, overrides, message):
    cfg = write_config(tmp_path, synth_root)
    overrides = [o.format(tmp=tmp_path) for o in overrides]
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "run"), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0


def test_unknown_mask_colour_names_file(synth_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    from PIL import Image

    mask_path = root / "region_0" / "masks" / "scene_000.png"
    mask = np.array(Image.open(mask_path))
    mask[0, 0] = (1, 2, 3)
    Image.fromarray(mask).save(mask_path)
    cfg = write_config(tmp_path, root)
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "scene_000.png" in err and "#010203" in err


def test_nan_pixels_train_without_nan(tmp_path, capsys):
    """A dataset whose GeoTIFFs carry NaN and nodata trains to finite weights (nodata is never supervised)."""
    from semiland.data.synthetic import generate

    root = generate(tmp_path / "d", regions=4, images=2, size=64, bands=3, seed=3)
    for tif in root.glob("region_*/images/*.tif"):
        with rasterio.open(tif) as src:
            profile, arr = src.profile, src.read().astype("float32")
        arr[:, :8, :8] = np.nan
        profile.update(dtype="float32")
        with rasterio.open(tif, "w", **profile) as dst:
            dst.write(arr)
    cfg = write_config(tmp_path, root)
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "test" / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * (64 * 64 - 64)  # the NaN corner of each test image is not evaluated


def test_listing_commands(capsys):
    assert main(["methods"]) == 0 and "supervised" in capsys.readouterr().out
    assert main(["datasets"]) == 0 and "dubai" in capsys.readouterr().out
    assert main(["models"]) == 0 and "s4net_unet" in capsys.readouterr().out


def test_fit_resume_from_the_command_line(synth_root, tmp_path):
    cfg = write_config(tmp_path, synth_root)
    run = tmp_path / "run"
    assert main(["fit", "--config", str(cfg), "-o", str(run), "train.steps=2", "train.val_every=2"]) == 0
    # continue the same run to 4 steps: config and split come from the run folder
    assert main(["fit", "--resume", str(run), "train.steps=4"]) == 0
    from semiland.engine.checkpoint import read_checkpoint

    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["semiland"]["train_step"] == 4
    from semiland.engine.run_folder import read_log

    # the log keeps the validation of the first segment (step 2) and adds the resumed one (step 4)
    assert [int(s) for s, _ in read_log(run / "logs" / "metrics.csv")["val/mIoU"]] == [2, 4]
    assert main(["fit", "--resume", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.name=cps", "method supervised → cps"),
        ("model.width=16", "size mismatch"),
        ("data.bands=[1,2]", "data.bands None → [1, 2]"),
        ("data.ignore_classes=[water]", "classes"),
    ],
)
def test_resume_with_another_network_is_refused_and_the_run_kept(synth_root, tmp_path, capsys, override, message):
    run = tmp_path / "run"
    assert main(["fit", "--config", str(write_config(tmp_path, synth_root)), "-o", str(run), "train.steps=2"]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["fit", "--resume", str(run), override]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot resume from {run / 'checkpoints' / 'last.ckpt'}" in err and message in err
    assert err.count("\n") == 0
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # config, split untouched


@pytest.mark.realdata
def test_predict_a_whole_dubai_image(trained, tmp_path):
    from .conftest import DUBAI

    image = DUBAI / "tile_7" / "images" / "image_part_001.jpg"  # 1817 x 2061 px, the largest tile
    if not image.is_file():
        pytest.skip(f"real data not found at {DUBAI}")
    assert run_predict(trained, str(image), "-o", str(tmp_path), "--png") == 0
    with rasterio.open(tmp_path / "image_part_001_classes.tif") as out:
        assert out.shape == (2061, 1817) and out.read(1).max() < 5
    from PIL import Image

    assert Image.open(tmp_path / "image_part_001_classes.png").size == (1817, 2061)


def test_version_print_config_and_one_methods_keys(synth_root, tmp_path, capsys, monkeypatch):
    """What LightningCLI / GDAL users reach for: `--version`, the complete resolved config without training,
    and one method's keys with defaults and ranges."""
    import semiland

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.strip() == f"semiland {semiland.__version__}"
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, synth_root)
    assert main(["fit", "--config", str(cfg), "--print-config", "method.name=fixmatch", "method.top_q=0.3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["method"]["name"] == "fixmatch" and printed["method"]["top_q"] == 0.3
    assert set(printed) == {"data", "model", "method", "optim", "train"} and not (tmp_path / "runs").exists()
    assert main(["methods", "fixmatch"]) == 0
    out = capsys.readouterr().out
    assert "method.* keys (method.name=fixmatch):" in out and "  top_q = 0.5  [0 ≤ x ≤ 1]" in out
    assert "Sohn et al." in out  # the paper, from the method's docstring
    assert main(["methods", "fixmatc"]) == 2
    assert "unknown method 'fixmatc'" in capsys.readouterr().err
