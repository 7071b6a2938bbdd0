import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from torch.utils.data import DistributedSampler

from semiland.config import DataConfig
from semiland.data.datamodule import CropStream
from semiland.data.prepare import prepare_data
from semiland.data.presets import build_dataset
from semiland.data.raster import read_image
from semiland.data.sources import load_sample
from semiland.data.splits import Split, make_split, unlabeled_subset
from semiland.data.store import SampleStore
from semiland.errors import SemilandError

from .conftest import tiny_config


def _write_tif(path, array, nodata=None, crs="EPSG:32640"):
    count, h, w = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype=array.dtype,
        crs=crs,
        transform=from_origin(0, 0, 1, 1),
        nodata=nodata,
    ) as dst:
        dst.write(array)


def test_synthetic_scenes_are_georeferenced_and_decodable(synth_root):
    spec = build_dataset(
        DataConfig(preset="synthetic", root=str(synth_root), synthetic_regions=4, synthetic_images=2, synthetic_size=64)
    )
    assert spec.regions == ["region_0", "region_1", "region_2", "region_3"]
    raster = read_image(spec.samples[0].image)
    assert raster.data.shape == (3, 64, 64) and raster.profile["crs"].to_epsg() == 32640
    sample = load_sample(spec.samples[0], spec.classes)
    assert sample.mask.shape == (64, 64) and set(np.unique(sample.mask)) <= set(range(5))


def test_nodata_and_nan_become_invalid(tmp_path):
    arr = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    arr[:, 0, 0] = -9999
    arr[1, 1, 1] = np.nan
    _write_tif(tmp_path / "x.tif", arr, nodata=-9999)
    raster = read_image(tmp_path / "x.tif")
    assert not raster.valid[0, 0] and not raster.valid[1, 1] and raster.valid.sum() == 14
    assert np.isfinite(raster.data).all() and raster.data[:, 0, 0].tolist() == [0, 0]
    assert read_image(tmp_path / "x.tif", bands=[2]).data.shape == (1, 4, 4)
    with pytest.raises(SemilandError, match="has 2 bands; data.bands asks for \\[3\\]"):
        read_image(tmp_path / "x.tif", bands=[3])


def _folder(tmp_path, image_size=(8, 8), mask_size=(8, 8), with_mask=True, extra_mask=False):
    root = tmp_path / "ds"
    (root / "r1" / "images").mkdir(parents=True)
    (root / "r1" / "masks").mkdir(parents=True)
    (root / "classes.csv").write_text("name,r,g,b\nbg,0,0,0\nfg,255,255,255\n")
    Image.fromarray(np.zeros((*image_size, 3), np.uint8)).save(root / "r1" / "images" / "a.png")
    if with_mask:
        Image.fromarray(np.zeros((*mask_size, 3), np.uint8)).save(root / "r1" / "masks" / "a.png")
    if extra_mask:
        Image.fromarray(np.zeros((*mask_size, 3), np.uint8)).save(root / "r1" / "masks" / "b.png")
    return root


def test_image_without_mask_and_mask_without_image(tmp_path):
    with pytest.raises(SemilandError, match="a.png has no mask"):
        build_dataset(DataConfig(preset="folder", root=str(_folder(tmp_path, with_mask=False))))
    with pytest.raises(SemilandError, match="b.png has no image"):
        build_dataset(DataConfig(preset="folder", root=str(_folder(tmp_path / "2", extra_mask=True))))


def test_mask_size_mismatch_names_both_files(tmp_path):
    spec = build_dataset(DataConfig(preset="folder", root=str(_folder(tmp_path, mask_size=(8, 9)))))
    with pytest.raises(SemilandError, match=r"mask .*a.png is 9x8 px but image .*a.png is 8x8"):
        load_sample(spec.samples[0], spec.classes)


def test_missing_data_folder(tmp_path):
    with pytest.raises(SemilandError, match="not found"):
        build_dataset(DataConfig(preset="dubai", root=str(tmp_path / "nope")))
    with pytest.raises(SemilandError, match="unknown dataset preset"):
        build_dataset(DataConfig(preset="nope"))


def test_deepglobe_layout_fixture(tmp_path):
    colors = [(0, 255, 255), (255, 255, 0), (0, 0, 0)]
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / f"{i}_sat.jpg")
        # DeepGlobe masks are not always pure: channel values near 255 / 0 must binarise at 128
        mask = np.array(colors[i], np.uint8)[None, None].repeat(16, 0).repeat(16, 1)
        Image.fromarray(np.clip(mask.astype(int) + np.where(mask > 127, -3, 3), 0, 255).astype(np.uint8)).save(
            tmp_path / f"{i}_mask.png"
        )
    spec = build_dataset(DataConfig(preset="deepglobe", root=str(tmp_path)))
    assert spec.classes.num_classes == 6 and len(spec.samples) == 3
    decoded = [load_sample(s, spec.classes, mask_threshold=spec.mask_threshold).mask[0, 0] for s in spec.samples]
    assert decoded == [0, 1, 255]
    split = make_split(spec, {"split_mode": "count", "labeled": 1, "val": 1, "test": "val"}, seed=0)
    assert len(split.labeled) == 1 and split.test == split.val and len(split.unlabeled) == 1


def test_splits_by_region_fraction_count_and_file(synth_root, tmp_path):
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root)))
    s = make_split(
        spec, {"split_mode": "region", "labeled": ["region_0"], "val": ["region_2"], "test": ["region_3"]}, 0
    )
    assert [len(s.labeled), len(s.unlabeled), len(s.val), len(s.test)] == [2, 2, 2, 2]
    assert (
        make_split(
            spec, {"split_mode": "region", "labeled": ["region_0"], "test": ["region_3"]}, 0, oracle=True
        ).unlabeled
        == []
    )
    f1 = make_split(spec, {"split_mode": "fraction", "labeled": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    f2 = make_split(spec, {"split_mode": "fraction", "labeled": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    assert f1.labeled == f2.labeled and len(f1.labeled) == 2 and len(f1.val) == 2
    assert set(f1.labeled).isdisjoint(f1.val + f1.test + f1.unlabeled)
    c = make_split(spec, {"split_mode": "count", "labeled": 3, "val": 1, "test": 2}, seed=0)
    assert [len(c.labeled), len(c.val), len(c.test), len(c.unlabeled)] == [3, 1, 2, 2]
    # every seed and every budget is evaluated on the same images; the seed draws the labeled ones (nested)
    seeds = [make_split(spec, {"split_mode": "count", "labeled": n, "val": 1, "test": 2}, seed=s) for s in range(4)
             for n in (1, 3)]  # fmt: skip
    assert {(tuple(x.val), tuple(x.test)) for x in seeds} == {(tuple(c.val), tuple(c.test))}
    assert len({tuple(x.labeled) for x in seeds}) > 2 and all(
        set(seeds[i].labeled) <= set(seeds[i + 1].labeled) for i in range(0, 8, 2)
    )
    c.save(tmp_path / "split.json")
    again = make_split(spec, {"split_mode": "file", "split_file": str(tmp_path / "split.json")}, seed=99)
    assert again.labeled == c.labeled and Split.load(tmp_path / "split.json").test == c.test


def test_transductive_split_trains_on_the_evaluation_images_without_ever_labeling_them(synth_root):
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root)))
    want = {"split_mode": "region", "labeled": ["region_0"], "val": ["region_2"], "test": ["region_3"]}
    plain = make_split(spec, want, 0)
    both = make_split(spec, want, 0, transductive=True)
    assert both.unlabeled == plain.unlabeled + plain.val + plain.test and both.info["transductive"]
    assert (both.labeled, both.val, both.test) == (plain.labeled, plain.val, plain.test)
    oracle = make_split(spec, want, 0, oracle=True, transductive=True)  # the oracle labels training images only
    assert set(oracle.labeled).isdisjoint(plain.val + plain.test) and oracle.unlabeled == plain.val + plain.test
    same = make_split(spec, {"split_mode": "count", "labeled": 2, "val": 1, "test": "val"}, 0, transductive=True)
    assert same.unlabeled.count(same.val[0]) == 1  # test = val: listed once


def test_split_errors(synth_root, tmp_path):
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root)))
    with pytest.raises(SemilandError, match="region 'tile_9'.*does not exist; regions are: region_0"):
        make_split(spec, {"split_mode": "region", "labeled": ["tile_9"]}, 0)
    with pytest.raises(SemilandError, match="no labeled image"):
        make_split(spec, {"split_mode": "region", "labeled": [], "test": ["region_3"]}, 0)
    with pytest.raises(SemilandError, match="in both"):
        make_split(spec, {"split_mode": "region", "labeled": ["region_0"], "test": ["region_0"]}, 0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SemilandError, match="not a semiland split"):
        make_split(spec, {"split_mode": "file", "split_file": str(tmp_path / "bad.json")}, 0)


def test_band_statistics_and_crop_stream(synth_root_4band):
    cfg = tiny_config(synth_root_4band, data={"synthetic_bands": 4})
    data = prepare_data(cfg)
    assert data.in_channels == 4 and all(s > 1 for s in data.std)
    store = SampleStore(data.spec, None, data.mean, data.std, cache=True)
    stream = CropStream(store, data.split.labeled, crop=48, length=4, seed=0, labeled=True)
    a, b = stream[1], stream[1]
    assert a["image"].shape == (4, 48, 48) and a["mask"].shape == (48, 48) and a["valid"].all()
    assert (a["image"] == b["image"]).all()  # same (seed, epoch, index) → same crop
    stream.epoch = 1
    assert not (stream[1]["image"] == a["image"]).all()
    big = CropStream(store, data.split.labeled, crop=80, length=1, seed=0, labeled=True)[0]  # larger than the image
    assert big["image"].shape == (4, 80, 80) and not big["valid"].all() and (big["mask"][~big["valid"]] == 255).all()
    unl = CropStream(store, data.split.unlabeled, crop=32, length=1, seed=0, labeled=False)[0]
    assert "mask" not in unl and abs(float(unl["image"].mean())) < 3


def test_streams_shard_disjointly_across_ranks(synth_root, monkeypatch):
    """Under DDP the labeled stream's items are split between ranks (every rank draws from the few labeled
    images); the unlabeled images themselves are sharded, each rank drawing only from its own files."""
    import semiland.data.datamodule as dm

    cfg = tiny_config(synth_root)
    data = prepare_data(cfg)
    items, files = [], []
    for rank in (0, 1):
        monkeypatch.setattr(dm, "_world", lambda rank=rank: (2, rank))
        loaders = dm.SegDataModule(cfg, data, use_unlabeled=True).train_dataloader()
        assert set(loaders) == {"labeled", "unlabeled"}
        assert isinstance(loaders["labeled"].sampler, DistributedSampler)
        assert not isinstance(loaders["unlabeled"].sampler, DistributedSampler)
        assert len(loaders["unlabeled"]) == cfg.train.val_every  # each rank its own epoch of batches
        items.append(set(loaders["labeled"].sampler))
        files.append(loaders["unlabeled"].dataset.ids)
    assert items[0].isdisjoint(items[1]) and len(items[0]) == len(items[1]) == cfg.train.val_every * cfg.data.batch_size
    assert not set(files[0]) & set(files[1]) and sorted(files[0] + files[1]) == sorted(data.split.unlabeled)


def test_rescale_keeps_nodata_out_and_masks_exact():
    from semiland.data.sources import LoadedSample
    from semiland.data.store import rescale

    image = np.ones((2, 40, 60), np.float32)
    valid = np.ones((40, 60), bool)
    valid[:, :10] = False  # a nodata strip on the left
    image[:, ~valid] = 0
    mask = np.zeros((40, 60), np.int64)
    mask[20:] = 3
    mask[:, :10] = 255
    half = rescale(LoadedSample(image, valid, mask), (20, 30))
    assert half.image.shape == (2, 20, 30) and half.valid.shape == half.mask.shape == (20, 30)
    assert not half.valid[:, :5].any() and half.valid[:, 6:].all()  # no pixel half-nodata is trusted
    assert np.allclose(half.image[:, half.valid], 1.0)  # nodata zeros never bleed into valid pixels
    assert set(np.unique(half.mask)) == {0, 3, 255}  # nearest: no invented class values


def test_region_split_with_a_labeled_image_count(synth_root):
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root), synthetic_regions=4, synthetic_images=2))
    want = {"labeled": ["region_0", "region_1"], "unlabeled": ["region_2"], "test": ["region_3"], "labeled_count": 1}
    a, b = make_split(spec, want, seed=0), make_split(spec, want, seed=0)
    assert len(a.labeled) == 1 and a.labeled == b.labeled  # seeded
    assert a.labeled[0].split("/")[0] in {"region_0", "region_1"}
    # the 3 other images of the labeled regions join region_2's 2 unlabeled images
    assert set(a.labeled).isdisjoint(a.unlabeled) and len(a.unlabeled) == 5
    oracle = make_split(spec, want, seed=0, oracle=True)
    assert len(oracle.labeled) == 6 and not oracle.unlabeled
    with pytest.raises(SemilandError, match="labeled_count"):
        make_split(spec, {**want, "labeled_count": 9}, seed=0)


def test_previews_show_natural_colour_where_the_file_names_its_bands(tmp_path):
    """Sentinel-2 / Landsat band names (B4, B3, B2), colour interpretation, a band selection, and the stand-in
    (bands 1-3, or band 1 as grey) when the file names none; the report panel's title says which."""
    import rasterio
    from PIL import Image

    from semiland.data.raster import natural_colour
    from semiland.report.figures import display_rgb

    s2 = tmp_path / "s2.tif"
    names = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    with rasterio.open(s2, "w", driver="GTiff", width=8, height=8, count=13, dtype="uint16") as dst:
        dst.write(np.arange(13, dtype=np.uint16)[:, None, None].repeat(8, 1).repeat(8, 2) * 100)
        for i, name in enumerate(names, 1):
            dst.set_band_description(i, name)
    assert natural_colour(s2) == ((3, 2, 1), "image (B4, B3, B2)")
    assert natural_colour(s2, [2, 3, 4, 8]) == ((2, 1, 0), "image (B4, B3, B2)")  # indices among the selection
    assert natural_colour(s2, [8, 11, 12]) == (None, "image (bands 1, 2, 3 as R, G, B)")
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=8, height=8, count=2, dtype="uint8") as dst:
        dst.write(np.zeros((2, 8, 8), np.uint8))
    assert natural_colour(plain) == (None, "image (band 1, grey)")
    jpg = tmp_path / "photo.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpg)
    assert natural_colour(jpg) == ((0, 1, 2), "image") and natural_colour(jpg, [3, 2, 1])[0] == (2, 1, 0)
    # the preview draws its red from the band named red: only B4 varies here, so only the red channel does
    image = np.zeros((13, 4, 4), np.float32)
    image[3] = np.arange(16).reshape(4, 4)  # B4 varies, everything else flat
    rgb = display_rgb(image, None, (3, 2, 1))
    assert rgb[..., 0].std() > 0 and rgb[..., 1].std() == 0 and rgb[..., 2].std() == 0


def test_a_share_of_the_unlabeled_images_is_seeded_nested_and_leaves_the_other_sets_alone(synth_root):
    ids = [f"r/{i}" for i in range(20)]
    quarter, half = unlabeled_subset(ids, 0.25, seed=3), unlabeled_subset(ids, 0.5, seed=3)
    assert len(quarter) == 5 and len(half) == 10 and set(quarter) < set(half)  # a curve adds images
    assert quarter == unlabeled_subset(ids, 0.25, seed=3) != unlabeled_subset(ids, 0.25, seed=4)
    assert quarter == [i for i in ids if i in quarter] and unlabeled_subset(ids[:2], 0.1, seed=0) != []
    spec = build_dataset(DataConfig(preset="synthetic", root=str(synth_root)))
    want = {"split_mode": "count", "labeled": 2, "val": 1, "test": 1}
    full, some = make_split(spec, want, 0), make_split(spec, want, 0, unlabeled_share=0.5)
    assert (some.labeled, some.val, some.test) == (full.labeled, full.val, full.test)
    assert len(some.unlabeled) == len(full.unlabeled) // 2 and set(some.unlabeled) < set(full.unlabeled)
    assert some.info["unlabeled_share"] == 0.5
    # a resume reads the run's split.json back (split_mode=file, same share): the same images, not half of them
    some.save(synth_root / "split.json")
    again = {"split_mode": "file", "split_file": str(synth_root / "split.json")}
    assert make_split(spec, again, 0, unlabeled_share=0.5).unlabeled == some.unlabeled
    with pytest.raises(SemilandError, match="unlabeled_share=0.5"):
        make_split(spec, again, 0)  # a share the file was not drawn with is refused, not silently kept
    full.save(synth_root / "split.json")  # a split file drawn without a share: the share is drawn from it
    assert make_split(spec, again, 0, unlabeled_share=0.5).unlabeled == some.unlabeled
