"""Training on rasters of any size (#43): crops read by window, the file index, statistics from windows,
masks checked by blocks, and the memory plan of data.cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from semiland.data import chunks, datamodule, prepare, store
from semiland.data.datamodule import CropStream
from semiland.data.index import build_index
from semiland.data.prepare import prepare_data
from semiland.data.store import SampleStore
from tests.conftest import tiny_config, write_config

CLASSES = "name,r,g,b\nbuilding,60,16,152\nland,132,41,246\nroad,110,193,228\nvegetation,254,221,58\nwater,226,169,41\n"


def write_tif(path: Path, array: np.ndarray, nodata: float | None = None, crs: str = "EPSG:32640") -> None:
    """(C, H, W) → a tiled, deflate-compressed GeoTIFF (the layout of a real large raster)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = array.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype=array.dtype, crs=crs, nodata=nodata,
        transform=from_origin(500_000, 2_800_000, 0.5, 0.5), tiled=True, blockxsize=64, blockysize=64,
        compress="deflate",
    ) as dst:  # fmt: skip
        dst.write(array)


def make_dataset(
    root: Path, size: tuple[int, int] = (150, 130), nodata_hole: bool = True, crs: dict[int, str] | None = None
) -> Path:
    """4 regions × 2 GeoTIFF scenes (3 bands, uint16, nodata 0 in a hole) with class-value masks; `crs`: a
    region's CRS where not EPSG:32640 (UTM 40N)."""
    rng = np.random.default_rng(0)
    (root / "classes.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.csv").write_text(CLASSES)
    h, w = size
    for r in range(4):
        for i in range(2):
            mask = (rng.integers(0, 5) + np.add.outer(np.arange(h) // 20, np.arange(w) // 25)) % 5
            image = (100 + 50 * mask[None] + rng.integers(0, 40, (3, h, w))).astype(np.uint16)
            if nodata_hole:
                image[:, 10:60, 20:90] = 0
            where = (crs or {}).get(r, "EPSG:32640")
            write_tif(root / f"region_{r}" / "images" / f"scene_{i}.tif", image, nodata=0, crs=where)
            write_tif(root / f"region_{r}" / "masks" / f"scene_{i}.tif", mask[None].astype(np.uint8), crs=where)
    return root


def folder_config(root: Path, **data):
    cfg = tiny_config(root, data={"preset": "folder", "crop_size": 48, **data})
    return cfg


@pytest.fixture(scope="module")
def geo_root(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("geo") / "data")


def stores(cfg, scale: float = 1.0) -> tuple[SampleStore, SampleStore]:
    data = prepare_data(cfg)
    args = (data.spec, None, data.mean, data.std)
    whole = SampleStore(*args, cache=True, scale=scale)
    windowed = SampleStore(*args, cache=False, scale=scale, windowed=True, index=data.index)
    return whole, windowed


def test_a_windowed_crop_equals_the_crop_of_the_whole_image(geo_root):
    whole, windowed = stores(folder_config(geo_root))
    ids = sorted(whole.refs)
    for labeled, chunked in ((True, False), (False, False), (True, True), (False, True)):
        # chunked: cut from windows read several crops at a time (a windowed store's default)
        a = CropStream(whole, ids, crop=48, length=12, seed=3, labeled=labeled, batch=3, chunked=chunked)
        b = CropStream(windowed, ids, crop=48, length=12, seed=3, labeled=labeled, batch=3, chunked=chunked)
        for k in range(len(a)):
            x, y = a[k], b[k]
            assert x.keys() == y.keys()
            for key in x:
                assert np.array_equal(x[key].numpy(), y[key].numpy()), (labeled, k, key)
    assert not windowed._cache  # nothing decoded whole was kept
    # a report's preview of a large raster: its centre
    centre, note = windowed.central(ids[0], side=40)
    full = whole.raw(ids[0])
    assert np.array_equal(centre.mask, full.mask[55:95, 45:85]) and note == " (its central 40 × 40 px of 150 × 130)"
    assert whole.central(ids[0], side=40)[1] == ""  # held in memory: shown whole
    # a crop larger than the image is padded the same way (image 0, valid False, mask ignore)
    big_a = CropStream(whole, ids, crop=160, length=1, seed=0, labeled=True, chunked=True)[0]
    big_b = CropStream(windowed, ids, crop=160, length=1, seed=0, labeled=True)[0]
    for key in big_a:
        assert np.array_equal(big_a[key].numpy(), big_b[key].numpy())


def test_chunked_crop_corners_fall_uniformly_over_the_image():
    # chunks start every ALIGN px (whole tiles) and overlap; drawn by weight, corners kept with 1 / count
    for length, crop in ((3000, 64), (1100, 200), (700, 300), (513, 64)):
        plan = chunks.axis_plan(length, crop, chunks.chunk_side(crop))
        reach = plan.extent - crop
        assert all(s % chunks.ALIGN == 0 for s in plan.starts[:-1]) and plan.starts[-1] + plan.extent == length
        marginal = np.zeros(length - crop + 1)
        for start, weight in zip(plan.starts, plan.weights):
            kept = 1.0 / plan.counts[start : start + reach + 1]
            marginal[start : start + reach + 1] += weight * kept / kept.sum()
        assert marginal.min() > 0 and marginal.max() / marginal.min() < 1 + 1e-9, (length, crop)
    # the draw within a chunk follows 1 / count: the corner of the chunk at 256 on a 3000-px axis
    plan, rng = chunks.axis_plan(3000, 64, 512), np.random.default_rng(0)
    offsets = np.array([chunks.corner(rng, plan, 256, 512, 64) for _ in range(20_000)])
    doubly = plan.counts[256 + offsets] == 2  # corners two chunks reach are kept half as often
    share = doubly.mean()
    expected = (plan.counts[256:705] == 2).sum() / 2 / (1 / plan.counts[256:705]).sum()
    assert abs(share - expected) < 0.02 and 0.3 < expected < 0.8


def test_a_chunk_is_read_once_for_the_crops_it_serves(geo_root, monkeypatch):
    _, windowed = stores(folder_config(geo_root))
    reads: list[tuple] = []
    real = windowed.region
    monkeypatch.setattr(windowed, "region", lambda *a: reads.append(a) or real(*a))
    ids = sorted(windowed.refs)
    stream = CropStream(windowed, ids, crop=32, length=96, seed=0, labeled=False, batch=4)
    items = [stream[k] for k in range(len(stream))]
    # 150 × 130 images: a chunk is the whole image and serves 150·130 // 32² = 19 batches of its slot
    assert 4 <= len(reads) <= 8 and len({r[0] for r in reads}) >= 3
    again = CropStream(windowed, ids, crop=32, length=96, seed=0, labeled=False, batch=4)  # as a resumed run
    assert all(np.array_equal(again[k]["image"], items[k]["image"]) for k in (95, 3, 50))
    stream.epoch = 1
    assert not np.array_equal(stream[0]["image"], items[0]["image"])
    # two loader processes: each reads the chunks of its own batches (lane), the items a function of the index
    lanes = CropStream(windowed, ids, crop=32, length=96, seed=0, labeled=False, batch=4, lanes=2)
    assert len({lanes.chunks.locate(k, 0)[0] for k in range(96)}) == 8


def test_a_windowed_crop_at_half_resolution_matches_the_resampled_image(geo_root):
    whole, windowed = stores(folder_config(geo_root, scale=0.5), scale=0.5)
    ids = sorted(whole.refs)
    diffs, agree = [], []
    for k in range(16):
        rng_a, rng_b = np.random.default_rng(k), np.random.default_rng(k)
        a = whole.crop(ids[k % len(ids)], True, rng_a, 32)
        b = windowed.crop(ids[k % len(ids)], True, rng_b, 32)
        both = a.valid & b.valid
        diffs.append(np.abs(a.image[:, both] - b.image[:, both]).mean() / a.image[:, both].mean())
        agree.append((a.mask[both] == b.mask[both]).mean())
        assert (a.valid != b.valid).mean() < 0.1  # nodata edges within a pixel
    assert np.mean(diffs) < 0.02 and np.mean(agree) > 0.95


def test_all_nodata_windows_are_drawn_again(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", size=(200, 200), nodata_hole=False)
    path = root / "region_0" / "images" / "scene_0.tif"
    with rasterio.open(path) as src:
        image = src.read()
    image[:, :, :160] = 0  # only a 40-px strip on the right holds data
    write_tif(path, image, nodata=0)
    _, windowed = stores(folder_config(root))

    def with_data() -> int:
        crops = [windowed.crop("region_0/scene_0", True, np.random.default_rng(k), 16) for k in range(40)]
        return sum(c.valid.any() for c in crops)

    # a uniform draw holds data 1 time in 5 (expected 8.6 of 40); with up to 10 draws 9 times in 10 (36)
    assert with_data() >= 30
    monkeypatch.setattr(store, "REDRAWS", 1)
    assert with_data() <= 16


def test_the_index_is_cached_and_reread_when_a_file_changes(geo_root, monkeypatch, tmp_path):
    from semiland.data import index as index_mod

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    files = sorted(geo_root.glob("*/images/*.tif"))
    opened: list[Path] = []
    real = index_mod.read_info
    monkeypatch.setattr(index_mod, "read_info", lambda p: opened.append(p) or real(p))
    first = build_index(files)
    assert len(opened) == len(files) and first[files[0]].height == 150 and first[files[0]].windowed
    assert first[files[0]].crs and "32640" in first[files[0]].crs and first[files[0]].nodata == 0
    opened.clear()
    assert build_index(files) == first and opened == []  # every header from the cache
    st = files[0].stat()
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed
    build_index(files)
    assert opened == [files[0]] and len(list((tmp_path / "semiland" / "index").glob("*.json"))) == 1
    (tmp_path / "semiland" / "index").glob("*.json").__next__().write_text("{damaged")
    opened.clear()
    assert build_index(files) == build_index(files) and len(opened) == len(files)  # rebuilt once, not trusted


def test_statistics_from_windows_match_those_of_every_pixel(geo_root, monkeypatch):
    cfg = folder_config(geo_root)
    exact = prepare_data(cfg)
    monkeypatch.setattr(prepare, "STATS_WHOLE_PIXELS", 1000)  # as if the images held terabytes
    monkeypatch.setattr(prepare, "STATS_WINDOW", 32)
    sampled = prepare_data(cfg)
    assert np.allclose(sampled.mean, exact.mean, rtol=0.03) and np.allclose(sampled.std, exact.std, rtol=0.08)
    assert sampled.mean != exact.mean  # really from windows


def test_masks_are_checked_by_blocks(geo_root, monkeypatch, tmp_path):
    from semiland.data.preflight import preflight

    cfg = folder_config(geo_root)
    data = prepare_data(cfg)
    whole = preflight(data, None, progress=False)
    monkeypatch.setattr(store, "BLOCK", 40)
    blocks = preflight(data, None, progress=False)
    assert np.array_equal(whole.labeled_pixels, blocks.labeled_pixels)
    assert np.array_equal(whole.evaluated_pixels, blocks.evaluated_pixels)
    # a mask of another size is named from the headers, whichever blocks would have matched
    mask = geo_root / "region_0" / "masks" / "scene_1.tif"
    keep = mask.read_bytes()
    try:
        write_tif(mask, np.zeros((1, 160, 130), np.uint8))
        with pytest.raises(Exception, match="130x160 px but image .* is 130x150"):
            preflight(prepare_data(cfg), None, progress=False)
    finally:
        mask.write_bytes(keep)


def test_data_cache_gives_way_to_windows_when_the_images_do_not_fit(geo_root, monkeypatch, capsys):
    from semiland.data.datamodule import SegDataModule

    cfg = folder_config(geo_root)
    data = prepare_data(cfg)
    assert SegDataModule(cfg, data, True).store.cache_on
    monkeypatch.setattr(datamodule, "physical_memory", lambda: 1_000_000)  # 1 MB of RAM
    module = SegDataModule(cfg, data, True)
    assert not module.store.cache_on and module.store.windowed
    assert "reading training crops by window instead of data.cache=true" in capsys.readouterr().out
    SegDataModule(cfg, data, False)  # the test phase's module: said once per process
    assert "by window" not in capsys.readouterr().out


CAPPED_FIT = """
import resource, sys
cap = 6 * 2**30  # address space: a whole read of the raster (6.3 GiB decoded, beside torch's ~3) cannot fit
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from semiland.cli import main
code = main(sys.argv[1:])
print("peak", open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # kB
sys.exit(code)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads peak memory from /proc (Linux)")
def test_fit_on_a_raster_larger_than_the_memory_cap(tmp_path):
    """An 18 000² px labeled raster (sparse: tiles never written read as 0) beside small images: its decoded
    pixels, mask and valid flags take 6.3 GiB, and the run completes under a 6 GiB address-space cap."""
    import subprocess
    import sys

    from rasterio.windows import Window

    root = make_dataset(tmp_path / "data")
    n, patch = 18_000, (np.add.outer(np.arange(1024) // 64, np.arange(1024) // 64) % 5).astype(np.uint8)
    for folder, data in (("images", np.repeat(40 * patch[None], 3, 0)), ("masks", patch[None])):
        path = root / "a_big" / folder / "scene.tif"
        path.parent.mkdir(parents=True)
        with rasterio.open(
            path, "w", driver="GTiff", width=n, height=n, count=len(data), dtype="uint8", crs="EPSG:32640",
            transform=from_origin(500_000, 2_800_000, 0.5, 0.5), tiled=True, blockxsize=512, blockysize=512,
            compress="deflate", sparse_ok=True,
        ) as dst:  # fmt: skip
            for k in range(4):
                dst.write(data, window=Window(k * 4000, k * 4000, 1024, 1024))
    run = tmp_path / "run"
    args = ["fit", "--config", "folder/unet", f"data.root={root}", "data.cache=false", "model.arch=tiny_unet",
            "model.width=8", "train.steps=2", "train.val_every=2", "data.crop_size=32", "data.eval_tile=64",
            "train.accelerator=cpu", "-o", str(run)]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CAPPED_FIT, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "labeled 1" in done.stdout and (run / "checkpoints" / "best.ckpt").is_file()
    peak_kb = int(done.stdout.split("peak")[-1].split()[0])
    assert peak_kb < 3 * 2**20  # resident peak under 3 GiB: bounded by the crops, not by the raster


def test_bench_read_speed_compares_windows_with_memory(tmp_path, synth_root):
    from semiland.cli import main

    out = tmp_path / "read.json"
    args = ["bench", "read-speed", "--size", "300", "--files", "4", "--chip", "64", "--crop", "32", "--batches", "3",
            "--workers", "0", "--workdir", str(tmp_path / "work"), "--json", str(out)]  # fmt: skip
    # with training steps fed each way (a tiny model here; the demo's by default)
    assert main([*args, "--train-steps", "2", "--train-config", str(write_config(tmp_path, synth_root))]) == 0
    import json

    result = json.loads(out.read_text())
    for part in ("one_raster", "chips"):
        figures = result[part]["workers_0"]
        assert figures["in_memory_crops_s"] > 0 and figures["windowed_crops_s"] > 0
        assert figures["windowed_one_read_per_crop_crops_s"] > 0
        assert figures["ratio"] == pytest.approx(figures["windowed_crops_s"] / figures["in_memory_crops_s"])
        assert figures["windowed_training_crops_s"] > 0 and figures["training_ratio"] == pytest.approx(
            figures["windowed_training_crops_s"] / figures["in_memory_training_crops_s"]
        )
    assert result["chips"]["images"] == 4 and result["index_s_per_1000_files"] > 0 and result["train_steps"] == 2
    assert main(args) == 0  # the generated rasters are reused; without --train-steps, no training figures
    assert "windowed_training_crops_s" not in json.loads(out.read_text())["chips"]["workers_0"]


def test_bench_read_speed_refuses_a_training_config_it_would_not_use_before_writing_rasters(tmp_path, capsys):
    from semiland.cli import main

    work = tmp_path / "work"
    args = ["bench", "read-speed", "--size", "300", "--files", "4", "--chip", "64", "--workdir", str(work)]
    assert main([*args, "--train-config", "configs/dubai/demo.yaml"]) == 2  # no --train-steps: it would be ignored
    assert "add --train-steps" in capsys.readouterr().err
    assert main([*args, "--train-steps", "2", "--train-config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err and not work.exists()


def vectorize(root: Path, crs: str = "EPSG:4326", field: str = "class") -> dict[str, np.ndarray]:
    """Every raster mask of `root` → polygons of its classes (named), in `crs`, as masks/<stem>.gpkg; the raster
    masks are removed. Returns the original masks by sample id."""
    import geopandas
    from rasterio.features import shapes
    from shapely.geometry import shape

    names = [line.split(",")[0] for line in CLASSES.splitlines()[1:]]
    originals = {}
    for mask_path in sorted(root.glob("*/masks/*.tif")):
        with rasterio.open(mask_path) as src:
            mask, transform, src_crs = src.read(1), src.transform, src.crs
        polygons = [(shape(g), names[int(v)]) for g, v in shapes(mask, transform=transform)]
        frame = geopandas.GeoDataFrame(
            {field: [n for _, n in polygons]}, geometry=[g for g, _ in polygons], crs=src_crs
        )
        frame.to_crs(crs).to_file(mask_path.with_suffix(".gpkg"))
        mask_path.unlink()
        originals[f"{mask_path.parents[1].name}/{mask_path.stem}"] = mask
    return originals


def test_vector_labels_in_another_crs_are_rasterized_onto_each_window(tmp_path):
    root = make_dataset(tmp_path / "data")
    originals = vectorize(root)  # polygons in degrees (EPSG:4326), images in UTM 40N
    whole, windowed = stores(folder_config(root))
    for sample_id, truth in originals.items():
        mask = whole.raw(sample_id).mask
        labeled = mask != 255
        # reprojected polygons land on the same pixels, up to boundary pixels the round trip moves
        assert (mask[labeled] == truth[labeled]).mean() > 0.98 and labeled.mean() > 0.5
    ids = sorted(whole.refs)
    a = CropStream(whole, ids, crop=48, length=10, seed=1, labeled=True, chunked=True)
    b = CropStream(windowed, ids, crop=48, length=10, seed=1, labeled=True)
    for k in range(len(a)):  # polygons crossing the window's border are cut where the window ends
        assert np.array_equal(a[k]["mask"].numpy(), b[k]["mask"].numpy())


def test_a_fit_trains_on_polygons_named_by_another_attribute(tmp_path):
    from semiland.cli import main

    root = make_dataset(tmp_path / "data")
    vectorize(root, crs="EPSG:32640", field="landcover")
    run = tmp_path / "run"
    args = ["fit", "--config", "folder/unet", f"data.root={root}", "data.label_field=landcover", "model.arch=tiny_unet",
            "model.width=8", "train.steps=2", "train.val_every=2", "data.crop_size=32", "data.eval_tile=64",
            "train.accelerator=cpu", "-o", str(run)]  # fmt: skip
    assert main(args) == 0 and (run / "checkpoints" / "best.ckpt").is_file()


def test_bad_vector_labels_get_one_line(tmp_path, capsys):
    import geopandas
    from shapely.geometry import box

    from semiland.cli import main

    root = make_dataset(tmp_path / "data")
    vectorize(root, crs="EPSG:32640")
    base = ["fit", "--config", "folder/unet", f"data.root={root}", "model.arch=tiny_unet", "train.steps=1",
            "train.accelerator=cpu", "-o", str(tmp_path / "run")]  # fmt: skip
    assert main([*base, "data.label_field=kind"]) == 2
    assert "has no attribute 'kind' (data.label_field); its attributes: class" in capsys.readouterr().err
    gpkg = root / "region_0" / "masks" / "scene_0.gpkg"
    frame = geopandas.read_file(gpkg)
    frame.loc[0, "class"] = "forest"
    frame.to_file(gpkg)
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "scene_0.gpkg: polygon 0 has class = 'forest', not a class of the table (building, land" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    geopandas.GeoDataFrame({"class": ["road"]}, geometry=[box(0, 0, 1, 1)]).to_file(gpkg)  # no CRS
    assert main(base) == 2
    assert "have no CRS; assign the one they are in" in capsys.readouterr().err


def test_large_rasters_are_evaluated_by_blocks(geo_root, tmp_path, monkeypatch):
    import json

    from semiland.cli import main

    run = tmp_path / "run"
    base = ["--config", "folder/unet", f"data.root={geo_root}", "data.cache=false", "model.arch=tiny_unet",
            "model.width=8", "data.crop_size=32", "data.eval_tile=32", "train.accelerator=cpu"]  # fmt: skip
    assert main(["fit", *base, "train.steps=4", "train.val_every=4", "-o", str(run)]) == 0
    ckpt = str(run / "checkpoints" / "best.ckpt")
    assert main(["test", "--ckpt", ckpt, "-o", str(tmp_path / "whole")]) == 0
    monkeypatch.setattr(datamodule, "EVAL_BLOCK", 40)  # 150 × 130 px images: 4 × 4 blocks each
    seen = []
    real = datamodule.FullImages.__getitem__
    monkeypatch.setattr(datamodule.FullImages, "__getitem__", lambda self, i: seen.append(i) or real(self, i))
    assert main(["test", "--ckpt", ckpt, "-o", str(tmp_path / "blocks")]) == 0
    assert len(seen) == 2 * 16  # the test region's two images, by blocks
    whole, blocks = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "blocks"))
    assert blocks["pixels"] == whole["pixels"] == 2 * (150 * 130 - 50 * 70)  # every valid pixel scored once
    assert abs(blocks["OA"] - whole["OA"]) < 0.01  # the same predictions up to where the tile grid falls


def test_bench_fit_memory_runs_both_fits(tmp_path):
    from semiland.cli import main

    out = tmp_path / "mem.json"
    args = ["bench", "fit-memory", "--scale", "0.02", "--unlabeled-side", "1024", "--steps", "2",
            "--workdir", str(tmp_path / "work"), "--json", str(out), "model.arch=tiny_unet", "model.width=8",
            "train.precision=32-true"]  # fmt: skip
    assert main(args) == 0
    import json

    result = json.loads(out.read_text())
    assert result["small"]["labeled_side"] == 40 and result["large"]["labeled_side"] == 400
    assert result["large"]["unlabeled_gb"] > result["small"]["unlabeled_gb"] > 0
    assert result["ratio"] == pytest.approx(result["large"]["peak_rss_gb"] / result["small"]["peak_rss_gb"])
    with pytest.raises(SystemExit) as stop:
        main(["bench", "fit-memory", "--scale", "0"])
    assert stop.value.code == 2


def test_loader_workers_auto_fits_the_machine(monkeypatch):
    from semiland.data.datamodule import loader_workers
    from semiland.errors import SemilandError

    assert loader_workers(3, "cpu", cached=False) == 3  # a number as given
    assert loader_workers("auto", "cpu", cached=False) == 0  # a CPU run: every core trains
    assert loader_workers("auto", "gpu", cached=True) == 0  # images in memory: reading costs nothing
    monkeypatch.setattr("os.cpu_count", lambda: 32)
    assert loader_workers("auto", "gpu", cached=False) == 8  # a GPU fed from files: half the cores, at most 8
    for bad in ("four", -1, True, 1.5):
        with pytest.raises(SemilandError, match="data.num_workers must be auto or a whole number"):
            loader_workers(bad, "cpu", cached=False)


def test_images_in_two_crss_train_together_and_a_mask_off_its_grid_is_refused(tmp_path, capsys):
    """Crops are pixels: images in two UTM zones train side by side (polygons are placed per image); a mask
    on another grid than its image would teach the wrong pixels, and is named in one line before training."""
    from semiland.cli import main

    root = make_dataset(tmp_path / "data", crs={1: "EPSG:32639"})
    base = ["fit", "--config", "folder/unet", f"data.root={root}", "model.arch=tiny_unet", "model.width=8",
            "train.steps=2", "train.val_every=2", "data.crop_size=32", "data.eval_tile=64", "train.accelerator=cpu"]  # fmt: skip
    assert main([*base, "-o", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    mask = root / "region_0" / "masks" / "scene_1.tif"
    with rasterio.open(mask) as src:
        values = src.read()
    write_tif(mask, values, crs="EPSG:32639")
    assert main([*base, "-o", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert "scene_1.tif is not on the grid of its image" in err and "CRS EPSG:32640 vs EPSG:32639" in err
    assert err.count("\n") == 1 and not (tmp_path / "run2").exists()


def test_self_training_labels_a_large_raster_by_blocks_and_the_student_reads_them_by_window(tmp_path, monkeypatch):
    from semiland import selftrain
    from semiland.cli import main
    from semiland.engine.runner import fit

    root = make_dataset(tmp_path / "data")
    cfg = folder_config(root, cache=False)  # labeled region_0, unlabeled region_1, val region_2, test region_3
    teacher = fit(cfg, tmp_path / "teacher")
    ckpt, data = teacher.best_ckpt, teacher.data
    whole = selftrain.pseudo_label(ckpt, data, cfg, tmp_path / "whole", threshold=0.0, top_q=0.0)
    monkeypatch.setattr(selftrain, "BLOCK", 64)  # 150 × 130 rasters: 3 × 3 blocks each
    blocks = selftrain.pseudo_label(ckpt, data, cfg, tmp_path / "blocks", threshold=0.0, top_q=0.0)
    for sample_id in data.split.unlabeled:
        assert not (tmp_path / "blocks" / f"{sample_id}.png").exists()
        tiled = store.read_pseudo_mask(tmp_path / "blocks", sample_id, (150, 130))
        png = store.read_pseudo_mask(tmp_path / "whole", sample_id, (150, 130))
        assert (tiled == png).mean() > 0.95  # the same up to where each block's tile grid falls
        window = store.read_pseudo_mask(tmp_path / "blocks", sample_id, (150, 130), (20, 30, 50, 40))
        assert np.array_equal(window, tiled[20:70, 30:70])
    assert blocks["coverage"] == pytest.approx(whole["coverage"]) and blocks["accuracy"] > 0.2
    # a whole round: the student reads the tiled pseudo-labels by window (data.cache=false)
    args = ["self-train", "--config", "folder/unet", f"data.root={root}", "data.cache=false", "method.rounds=1",
            "method.threshold=0.0", "model.arch=tiny_unet", "model.width=8", "train.steps=2", "train.val_every=2",
            "data.crop_size=32", "data.eval_tile=64", "train.accelerator=cpu", "-o", str(tmp_path / "st")]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.suffix for p in (tmp_path / "st" / "round1" / "pseudo").rglob("scene_*")) == [".tif"] * 2


def test_the_analysis_reads_a_large_raster_by_sub_tile_windows(geo_root, monkeypatch, tmp_path):
    from semiland.analysis import inventory

    data = prepare_data(folder_config(geo_root))
    refs = data.spec.samples
    whole = {r.id: list(inventory.image_parts(data.spec, r, None, 64, 4)) for r in refs}
    lo, hi = inventory.band_range(refs, data.spec, None)
    monkeypatch.setattr(inventory, "WINDOWED_PIXELS", 100)  # every 150 × 130 GeoTIFF counts as large
    reads: list = []
    real = type(data.spec).load
    monkeypatch.setattr(
        type(data.spec), "load", lambda self, *a: reads.append(a[-1] if len(a) > 2 else None) or real(self, *a)
    )
    for ref in refs:
        for (box_a, a), (box_b, b) in zip(whole[ref.id], inventory.image_parts(data.spec, ref, None, 64, 4)):
            assert box_a == box_b and np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    lo_w, hi_w = inventory.band_range(refs, data.spec, None)
    assert np.all(np.abs(lo_w - lo) < 0.1 * (hi - lo)) and np.all(np.abs(hi_w - hi) < 0.1 * (hi - lo))
    inv = inventory.build_inventory(data.spec, refs, tmp_path / "analysis", features="stats", subtile=64, per_image=4,
                                    progress=False)  # fmt: skip
    assert len(inv.ids) == 4 * len(refs) and inv.counts.sum() > 0
    assert reads and None not in reads  # never a whole image


def test_a_chunk_with_no_valid_pixel_is_moved_and_ranks_draw_their_own_chunks(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", size=(64, 2000), nodata_hole=False)
    path = root / "region_0" / "images" / "scene_0.tif"
    with rasterio.open(path) as src:
        image = src.read()
    image[:, :, :1700] = 0  # data only in the last 300 columns: most 512-px chunks hold none
    write_tif(path, image, nodata=0)
    _, windowed = stores(folder_config(root))
    stream = CropStream(windowed, ["region_0/scene_0"], crop=32, length=64, seed=0, labeled=True, batch=8)
    with_data = sum(bool(stream[k]["valid"].any()) for k in range(len(stream)))
    assert with_data >= 56  # a uniform chunk holds data about 1 time in 4; moved up to 10 times
    monkeypatch.setattr(chunks, "REDRAWS", 1)
    again = CropStream(windowed, ["region_0/scene_0"], crop=32, length=64, seed=0, labeled=True, batch=8)
    assert sum(bool(again[k]["valid"].any()) for k in range(len(again))) <= 32  # never moved
    # under DDP (a DistributedSampler deals items i ≡ rank mod ranks) each rank walks chunks of its own
    ddp = CropStream(windowed, ["region_0/scene_0"], crop=32, length=64, seed=0, labeled=True, batch=4, ranks=2)
    slots = {k % 2: ddp.chunks.locate(k, 0)[0] for k in (0, 1)}
    assert slots[0] != slots[1] and slots[0][1] == 0 and slots[1][1] == 1


def test_a_fit_reads_chunks_in_loader_processes(tmp_path):
    from semiland.cli import main

    root = make_dataset(tmp_path / "data")
    run = tmp_path / "run"
    args = ["fit", "--config", "folder/unet", f"data.root={root}", "data.cache=false", "data.num_workers=2",
            "method.name=fixmatch", "method.burnin=0", "model.arch=tiny_unet", "model.width=8", "train.steps=4",
            "train.val_every=2", "data.crop_size=32", "data.eval_tile=64", "train.accelerator=cpu", "-o", str(run)]  # fmt: skip
    assert main(args) == 0 and (run / "checkpoints" / "best.ckpt").is_file()
