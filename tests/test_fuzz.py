"""Bad input at scale (issue #9): random configs and damaged input files through the real commands.

Every case must end in a correct run (exit 0, a complete run folder / output) or one clear line on
stderr (exit 2) — never a traceback, a hang or a half-written output. Hypothesis draws the cases; the
`ci` profile (default) is small and derandomised so CI is stable, `HYPOTHESIS_PROFILE=thorough` draws
many more (the counts in docs/reliability.md come from that profile, with --hypothesis-show-statistics).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import tempfile
import typing
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from semiland.config import SECTIONS
from semiland.data.synthetic import generate
from semiland.methods import METHODS
from tests.conftest import tiny_config

settings.register_profile(
    "ci", max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
# first failures fast: no shrinking (a tiny training run per example makes shrinking take many minutes)
settings.register_profile(
    "discover", parent=settings.get_profile("thorough"), phases=[Phase.generate],
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CASE_SECONDS = 120  # a case still running after this is a hang (a correct tiny run takes a few seconds)
# Keys that only set how long a correct run lasts: fuzzed in type and sign, but not to huge values (a
# billion steps is a legitimate, very long run, not a bug).
LENGTH_KEYS = {"train.steps", "train.val_every", "train.log_every", "data.synthetic_size", "data.synthetic_images",
               "data.synthetic_regions", "optim.warmup_steps"}  # fmt: skip


@contextmanager
def time_limit(seconds: int):
    def hang(signum, frame):
        raise AssertionError(f"the case ran longer than {seconds} s (a hang)")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The real `semiland` entry point in-process: (exit status, stderr)."""
    from semiland.cli import main

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()), time_limit(CASE_SECONDS):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse usage errors
            code = stop.code if isinstance(stop.code, int) else 2
    return code, err.getvalue()


def assert_clean_outcome(code: int, err: str, out: Path) -> None:
    """Exit 0 with a complete run, or exit 2 with one `semiland: error:` line; never temporary leftovers."""
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")] if out.exists() else []
    assert not leftovers, f"half-written outputs left behind: {leftovers}"
    if code == 0:
        event("exit 0: a correct run")
        return
    lines = [line for line in err.strip().splitlines() if line.strip()]
    message = re.sub(r"\S*/\S*", "FILE", lines[-1].split(":", 2)[-1]) if lines else ""  # group cases by kind
    event(f"exit {code}: {message.strip()[:48]}")
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert lines and lines[-1].startswith("semiland: error:"), f"not a one-line error:\n{err}"
    assert len([line for line in lines if not line.startswith("usage:") and "semiland: error:" not in line]) == 0, (
        f"more than one line:\n{err}"
    )


# ---------------------------------------------------------------------------------------------- configs
WORDS = ["supervised", "fixmatch", "cps", "unimatch", "unet", "tiny_unet", "segnet", "resnet18", "region_0",
         "region_9", "rest", "auto", "cpu", "region", "fraction", "count", "file", "folder", "synthetic", "1e-3",
         "cosine", "poly", "sgd", "optical", "sar", "bf16-mixed", "tensorboard", ""]  # fmt: skip
ints = st.one_of(st.integers(-3, 3), st.sampled_from([0, 1, 7, 31, 64, 65, 255, 10**6, 10**9, -(10**9)]))
floats = st.one_of(st.floats(-2, 2), st.sampled_from([0.0, 1.0, -1.0, 1e-12, 1e30, math.nan, math.inf, -math.inf]))
some = st.one_of(st.booleans(), ints, floats, st.text(max_size=8), st.sampled_from(WORDS),
                 st.lists(st.one_of(ints, st.sampled_from(WORDS)), max_size=4))  # fmt: skip
anything = st.one_of(st.none(), some)


def _typed(hint: Any, key: str) -> st.SearchStrategy:
    """Values of the key's declared type (so most cases get past type checking into the run), sized by role."""
    if key in LENGTH_KEYS:
        return st.integers(-2, 6)
    if hint is int:
        return ints
    if hint is float:
        return floats
    if hint is bool:
        return st.booleans()
    if hint is str:
        return st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
    if typing.get_origin(hint) is list or hint == (list[int] | None) or hint == (list[float] | None):
        inner = floats if "float" in str(hint) else st.one_of(ints, st.sampled_from(WORDS))
        return st.one_of(st.none(), st.lists(inner, max_size=5))
    return anything


def _keys(cls: type, section: str) -> list[tuple[str, st.SearchStrategy]]:
    hints = typing.get_type_hints(cls)
    return [(f"{section}.{f.name}", _typed(hints[f.name], f"{section}.{f.name}")) for f in dataclasses.fields(cls)]


# Multi-process keys are left out: Lightning's DDP launcher re-runs the current command (here: pytest) in each
# worker, which only makes sense from the `semiland` command line (tests/test_ddp.py covers it there).
DDP_KEYS = {"train.devices", "train.strategy"}
BASE_KEYS = [kv for section, cls in SECTIONS.items() for kv in _keys(cls, section) if kv[0] not in DDP_KEYS]


def mutations_for(method: str) -> st.SearchStrategy:
    """1–3 changes to a tiny config of `method`: right-typed values, any values, unknown keys, whole sections."""
    keys = BASE_KEYS + [kv for kv in _keys(METHODS[method].Config, "method") if kv[0] != "method.name"]
    typed = st.sampled_from(keys).flatmap(lambda kv: st.tuples(st.just(kv[0]), kv[1]))
    one = st.one_of(
        *[typed] * 6,  # mostly the right type, any value: those cases get past type checking into the run
        st.sampled_from(keys).flatmap(lambda kv: st.tuples(st.just(kv[0]), anything)),  # any type
        st.tuples(st.text(min_size=1, max_size=12).map(lambda k: f"data.{k}"), ints),  # unknown keys
        # whole sections (never None: an empty section means "all defaults", a legitimate full-length run)
        st.tuples(st.sampled_from(["data", "model", "optim", "train", "method", "extra"]), some),
    )
    return st.lists(one, min_size=1, max_size=3)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("fuzz") / "data", regions=4, images=2, size=64, bands=3)


@given(case=st.sampled_from(sorted(set(METHODS) - {"dllr"})).flatmap(lambda m: st.tuples(st.just(m), mutations_for(m))))
def test_random_configs_end_in_a_run_or_one_line(fuzz_root, case):
    method, mutations = case  # dllr needs optical + SAR pairs: its configs are fuzzed by the file cases below
    raw = tiny_config(fuzz_root, train={"steps": 2, "val_every": 2}, method={"name": method}).to_dict()
    for key, value in mutations:
        section, _, name = key.partition(".")
        if not name:
            raw[section] = value
        elif isinstance(raw.get(section), dict):
            raw[section][name] = value
    work = Path(tempfile.mkdtemp(prefix="fuzz-cfg-"))
    try:
        try:
            text = yaml.safe_dump(raw)
        except yaml.YAMLError:
            return  # not representable as YAML: no user could write this file
        (work / "cfg.yaml").write_text(text)
        here = os.getcwd()
        os.chdir(work)  # a fuzzed relative data.root (the synthetic preset writes its scenes there) stays in `work`
        try:
            code, err = run_cli(["fit", "--config", str(work / "cfg.yaml"), "-o", str(work / "run")])
        finally:
            os.chdir(here)
        assert_clean_outcome(code, err, work / "run")
        if code == 0:
            assert (work / "run" / "checkpoints" / "last.ckpt").is_file()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------ input files
def _truncate(path: Path, fraction: float, rng: np.random.Generator) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _empty(path: Path, fraction: float, rng: np.random.Generator) -> None:
    path.write_bytes(b"")


def _garbage(path: Path, fraction: float, rng: np.random.Generator) -> None:
    path.write_bytes(rng.integers(0, 256, size=int(200 + 5000 * fraction), dtype=np.uint8).tobytes())


def _rewrite_raster(path: Path, transform) -> None:
    """Rewrite a GeoTIFF through `transform(array, profile) -> (array, profile)`; masks (PNG) via PIL. A file that
    an earlier corruption left unreadable stays as it is."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.suffix == ".png":
            arr, _ = transform(np.array(Image.open(path)), None)
            Image.fromarray(arr).save(path)
            return
        with rasterio.open(path) as src:
            arr, profile = src.read(), dict(src.profile)
    except (rasterio.errors.RasterioError, UnidentifiedImageError, OSError, ValueError):
        return
    arr, profile = transform(arr, profile)
    profile.update(count=arr.shape[0], height=arr.shape[1], width=arr.shape[2], dtype=arr.dtype.name)
    profile.pop("nodata", None) if arr.dtype.kind == "c" else None
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)


def _dtype(name: str):
    def change(path: Path, fraction: float, rng: np.random.Generator) -> None:
        def cast(arr, profile):
            if profile is None:  # a mask: random values of another dtype cannot be a PNG; shift colours
                return (arr.astype(np.int32) * 3 % 256).astype(np.uint8), None
            info = np.iinfo(name) if np.dtype(name).kind in "iu" else None
            scale = (info.max if info else 1e6) * fraction
            return (arr.astype(np.float64) / 255 * scale).astype(name), profile

        _rewrite_raster(path, cast)

    return change


def _unknown_colours(path: Path, fraction: float, rng: np.random.Generator) -> None:
    def paint(arr, profile):
        out = arr.copy()
        n = max(1, int(out.shape[0] * fraction))
        out[:n] = rng.integers(0, 256, size=(n, *out.shape[1:]), dtype=np.uint8) if profile is None else out[:n]
        return out, profile

    _rewrite_raster(path, paint)


def _resize(path: Path, fraction: float, rng: np.random.Generator) -> None:
    def crop(arr, profile):
        side = max(1, int(64 * fraction))
        return (arr[:side, :side] if profile is None else arr[:, :side, :side]), profile

    _rewrite_raster(path, crop)


def _bands(path: Path, fraction: float, rng: np.random.Generator) -> None:
    def change(arr, profile):
        if profile is None:
            return arr[..., :1].repeat(3, axis=-1), None
        count = 1 + int(fraction * 5)
        return np.resize(arr, (count, *arr.shape[1:])).astype(arr.dtype), profile

    _rewrite_raster(path, change)


def _nan(path: Path, fraction: float, rng: np.random.Generator) -> None:
    def fill(arr, profile):
        if profile is None:
            return arr, None
        out = arr.astype(np.float32)
        out[:, : max(1, int(out.shape[1] * fraction))] = np.nan if fraction < 0.5 else np.inf
        return out, profile

    _rewrite_raster(path, fill)


def _crs(path: Path, fraction: float, rng: np.random.Generator) -> None:
    def reproject(arr, profile):
        if profile is None:
            return arr, None
        from rasterio.transform import from_origin

        return arr, {**profile, "crs": "EPSG:4326", "transform": from_origin(55.0, 25.0, 1e-5, 1e-5)}

    _rewrite_raster(path, reproject)


CORRUPTIONS = {
    "truncated": _truncate, "empty": _empty, "garbage": _garbage, "uint16": _dtype("uint16"),
    "int16": _dtype("int16"), "float64": _dtype("float64"), "int8": _dtype("int8"), "complex64": _dtype("complex64"),
    "unknown_colours": _unknown_colours, "resized": _resize, "bands": _bands, "nan_inf": _nan, "crs": _crs,
}  # fmt: skip


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("fuzz-files") / "data", regions=4, images=2, size=64, bands=3)


@given(
    damage=st.lists(
        st.tuples(
            st.sampled_from(sorted(CORRUPTIONS)),
            st.sampled_from(["images", "masks"]),
            st.integers(0, 3),  # region: 0 labeled, 1 unlabeled, 2 val, 3 test
            st.integers(0, 1),
            st.floats(0.01, 0.99),
        ),
        min_size=1,
        max_size=2,
    ),
    method=st.sampled_from(["supervised", "fixmatch"]),
)
def test_damaged_input_files_end_in_a_run_or_one_line(pristine, damage, method):
    work = Path(tempfile.mkdtemp(prefix="fuzz-files-"))
    try:
        root = work / "data"
        shutil.copytree(pristine, root)
        rng = np.random.default_rng(len(damage))
        for name, kind, region, image, fraction in damage:
            suffix = "tif" if kind == "images" else "png"
            CORRUPTIONS[name](root / f"region_{region}" / kind / f"scene_{image:03d}.{suffix}", fraction, rng)
        cfg = tiny_config(root, train={"steps": 2, "val_every": 2}, data={"unlabeled": ["region_1"]},
                          method={"name": method})  # fmt: skip
        (work / "cfg.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
        code, err = run_cli(["fit", "--config", str(work / "cfg.yaml"), "-o", str(work / "run")])
        assert_clean_outcome(code, err, work / "run")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@given(
    name=st.sampled_from(sorted(set(CORRUPTIONS) - {"unknown_colours"})),
    fraction=st.floats(0.01, 0.99),
    extra=st.sampled_from([[], ["--confidence", "--entropy"], ["--tta"], ["--cog"]]),
)
def test_damaged_rasters_predict_or_refuse_in_one_line(trained, pristine, name, fraction, extra):
    work = Path(tempfile.mkdtemp(prefix="fuzz-predict-"))
    try:
        src = work / "scene.tif"
        shutil.copy(pristine / "region_3" / "images" / "scene_000.tif", src)
        CORRUPTIONS[name](src, fraction, np.random.default_rng(0))
        out = work / "maps"
        code, err = run_cli(["predict", "--ckpt", str(trained / "checkpoints" / "best.ckpt"), str(src), "-o",
                             str(out), *extra])  # fmt: skip
        assert_clean_outcome(code, err, out)
        written = sorted(p.name for p in out.glob("*.tif")) if out.exists() else []
        if code == 0:  # a correct run: the class map exists, is readable and has the input's grid
            assert "scene_classes.tif" in written, err
            with rasterio.open(src) as s, rasterio.open(out / "scene_classes.tif") as o:
                assert (o.width, o.height) == (s.width, s.height)
                assert math.isfinite(float(o.read(1).astype(np.float64).sum()))
        else:
            assert not written, f"refused, yet outputs were written: {written}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------- test --on
@given(
    on=st.one_of(
        st.sampled_from(["test", "val", "labeled", "unlabeled", "region_1", "region_1,region_3"]),
        st.text(max_size=12),
        st.lists(st.sampled_from(WORDS), max_size=3).map(",".join),
    ),  # fmt: skip
    override=st.sampled_from([[], ["data.test=[region_1]"], ["data.oracle=true"], ["data.eval_tile=48"]]),
)
def test_test_on_any_set_scores_or_refuses_in_one_line(trained, on, override):
    work = Path(tempfile.mkdtemp(prefix="fuzz-test-on-"))
    try:
        out = work / "t"
        code, err = run_cli(["test", "--ckpt", str(trained / "checkpoints" / "best.ckpt"), "--on", on, "-o", str(out),
                             *override])  # fmt: skip
        assert_clean_outcome(code, err, out)
        if code == 0:  # scored: metrics of real images, none of them trained on when a split set was named
            metrics = json.loads((out / "metrics.json").read_text())
            assert metrics["evaluated_on"] == on and metrics["test_images"] and 0 <= metrics["mIoU"] <= 1
        else:
            assert not (out / "metrics.json").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
