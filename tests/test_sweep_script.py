"""scripts/dubai_sweep.sh composes hours of training from method specs: every set's commands are checked here
without training (a stub stands in for `semiland`), so a mistyped key fails now, not sessions later."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from semiland.bench.sweep.plan import parse_budgets, parse_methods
from semiland.engine.run_config import load_config
from tests.conftest import DUBAI

REPO = Path(__file__).resolve().parents[1]
SETS = ("discriminative", "generative", "multitask", "sar", "strong-view", "top-q", "device-check")
STUB = """#!{python}
import json, pathlib, sys, time, uuid
out = pathlib.Path({calls!r})
(out / f"{{time.time_ns()}}-{{uuid.uuid4().hex}}.json").write_text(json.dumps(sys.argv[1:]))
if "--summary-only" in sys.argv:  # the script copies the summary files per set
    folder = pathlib.Path(sys.argv[sys.argv.index("-o") + 1])
    for name in ("results.csv", "results.json", "summary.md", "summary.html"):
        (folder / name).write_text("")
"""


def commands(
    tmp_path: Path, which: str, script: str = "dubai_sweep.sh", args: tuple[str, ...] = (), env: dict | None = None
) -> list[list[str]]:
    """The `semiland` calls a script makes (the Dubai sweep's set `which`, or another script with `args`), in the
    order they were made (with WORKERS=1, one process's order)."""
    calls, stub = tmp_path / "calls", tmp_path / "semiland"
    calls.mkdir()
    stub.write_text(STUB.format(python=sys.executable, calls=str(calls)))
    stub.chmod(0o755)
    env = {**os.environ, **(env or {}), "SEMILAND": str(stub)}
    argv = ["bash", f"scripts/{script}", *(args or (str(tmp_path / "out"), which))]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(p.read_text()) for p in sorted(calls.iterdir(), key=lambda p: int(p.name.split("-")[0]))]


# The source papers' protocols, runnable when their data is present (it is not here): every row they train
# must be a valid config of the file they name, so a user with the data does not find a typo hours in.
PROTOCOLS = {
    "s4net_deepglobe_protocol.sh": ("DG", "OUT"),
    "minifrance_protocol.sh": ("MF", "CASD", "OUT"),
    "whu_opt_sar_protocol.sh": ("WHU", "OUT"),
}


@pytest.mark.parametrize("script", PROTOCOLS)
def test_every_row_of_the_paper_protocols_is_a_valid_config(tmp_path, script):
    calls = commands(tmp_path, "", script, PROTOCOLS[script])
    assert calls and all(c[:2] == ["bench", "sweep"] for c in calls)
    for args in calls:
        config = REPO / _last(args, "--config")
        budgets = parse_budgets([args[i + 1] for i, a in enumerate(args) if a == "--budget"])
        trailing = [a for a in args if "=" in a and not a.startswith("-") and a.split("=")[0].count(".") == 1]
        for overrides in parse_methods(_last(args, "--methods")).values():
            for extra in budgets.values():
                load_config(config, [*trailing, *extra, *overrides])  # unknown keys / values raise here


def _last(args: list[str], flag: str) -> str:
    return args[len(args) - 1 - args[::-1].index(flag) + 1]


@pytest.mark.parametrize("which", SETS)
def test_every_method_row_of_every_set_is_a_valid_config(tmp_path, which):
    calls = commands(tmp_path, which)
    train = [c for c in calls if "--summary-only" not in c]
    assert train and all(c[:2] == ["bench", "sweep"] for c in calls)
    for args in calls:
        for overrides in parse_methods(_last(args, "--methods")).values():
            load_config(REPO / "configs" / "dubai" / "sweep.yaml", overrides)  # unknown keys / values raise here
    budgets = {_last(c, "--budget").split("=")[0] for c in train}
    assert budgets == {"2img", "4img"}
    # two processes give the same commands and share the cells (bench sweep claims each while it trains)
    assert set(Counter(json.dumps(c) for c in train).values()) == {2}
    # every seed of every budget (the sar set's 4-image cells seed by seed), every summary over all three
    assert all(_last(c, "--seeds") == "0,1,2" for c in calls if c not in train)
    for budget in budgets:
        seeds = {s for c in train if _last(c, "--budget").startswith(budget) for s in _last(c, "--seeds").split(",")}
        assert seeds == {"0", "1", "2"}
    # rows run at one budget only (sar's DLLR ablation, strong-view, FlexMatch) never reach the 4-image calls
    four = {
        label
        for c in train
        if _last(c, "--budget").startswith("4img")
        for label in parse_methods(_last(c, "--methods"))
    }
    one_budget = ("dllr_no_", "fixmatch_p0", "unimatch_p0", "mean_teacher_p0", "fixmatch_flex")
    assert not any(label.startswith(one_budget) for label in four)


def test_a_mirror_given_to_the_script_reaches_every_call(tmp_path):
    mirror = str(tmp_path / "kept")
    calls = commands(tmp_path, "strong-view", env={"MIRROR": mirror})
    assert calls and all(_last(c, "--mirror") == mirror for c in calls)  # the training calls and the summaries
    (tmp_path / "without").mkdir()
    assert not any("--mirror" in c for c in commands(tmp_path / "without", "strong-view"))


def test_the_sar_set_ablates_each_dllr_component_at_two_images(tmp_path):
    calls = commands(tmp_path, "sar")
    train = [c for c in calls if "--summary-only" not in c]
    labels = {label for c in train for label in parse_methods(_last(c, "--methods"))}
    assert {f"dllr_no_{p}" for p in ("masking", "complementary", "reassign", "cps")} <= labels
    assert {"sar_only", "early_fusion", "mm_cps", "dllr"} <= labels
    summaries = [c for c in calls if "--summary-only" in c]
    ablation = [c for c in summaries if _last(c, "--methods").count("dllr_no_") == 4]  # every row in one table
    assert len(ablation) == 1 and _last(ablation[0], "--methods").startswith("supervised,sar_only=")


def test_the_discriminative_set_tries_class_wise_thresholds_at_two_images(tmp_path):
    train = [c for c in commands(tmp_path, "discriminative") if "--summary-only" not in c]
    rows = {
        (_last(c, "--budget").split("=")[0], label) for c in train for label in parse_methods(_last(c, "--methods"))
    }
    assert ("2img", "fixmatch_flex") in rows and ("2img", "fixmatch") in rows and ("4img", "fixmatch") in rows


def test_the_top_q_set_runs_fixmatch_with_a_class_quota_at_four_images(tmp_path):
    """#3's intervention: the 4-image budget, where no vegetation pixel passed FixMatch's τ."""
    calls = commands(tmp_path, "top-q")
    rows = {
        (_last(c, "--budget").split("=")[0], label, tuple(spec))
        for c in calls
        if "--summary-only" not in c
        for label, spec in parse_methods(_last(c, "--methods")).items()
    }
    assert ("4img", "fixmatch_q50", ("method.name=fixmatch", "method.top_q=0.5")) in rows
    assert not any(b == "2img" and label == "fixmatch_q50" for b, label, _ in rows)
    ablation = [c for c in calls if "--summary-only" in c and "fixmatch_q50" in _last(c, "--methods")]
    assert len(ablation) == 1 and _last(ablation[0], "--budget").startswith("4img")


def test_the_device_check_set_trains_supervised_again_under_its_own_label_and_only_when_asked(tmp_path):
    """On a GPU, supervised_rerun paired with the CPU supervised cells measures the device's offset; `all` (what
    the CPU sweep runs) never trains it."""
    rows = {
        (_last(c, "--budget").split("=")[0], label, tuple(spec))
        for c in commands(tmp_path, "device-check")
        if "--summary-only" not in c
        for label, spec in parse_methods(_last(c, "--methods")).items()
    }
    assert ("2img", "supervised_rerun", ("method.name=supervised",)) in rows
    det = ("method.name=supervised", "train.deterministic=warn")
    assert {("2img", "supervised_det", det), ("2img", "supervised_det_again", det)} <= rows
    assert not any(b == "4img" and label == "supervised_rerun" for b, label, _ in rows)
    (tmp_path / "all").mkdir()
    every = commands(tmp_path / "all", "all", env={"NO_SUMMARY": "1"})
    reruns = {_last(c, "--budget").split("=")[0] for c in every if "supervised_rerun" in _last(c, "--methods")}
    assert reruns == {"4img"}  # only the sar set's, where its 4-image rows train (next test)


def test_the_sar_set_trains_supervised_again_before_its_four_image_rows(tmp_path):
    """The sar set's 4-image rows train on another CPU generation than the kept 4-image supervised cells
    (float32 parts across them): supervised again beside them, first, and in the set's summary."""
    calls = commands(tmp_path, "sar", env={"WORKERS": "1"})
    train = [(c, _last(c, "--budget").split("=")[0]) for c in calls if "--summary-only" not in c]
    four = [parse_methods(_last(c, "--methods")) for c, b in train if b == "4img"]
    assert list(four[0]) == ["supervised", "supervised_rerun"] and four[0]["supervised_rerun"] == [
        "method.name=supervised"
    ]
    assert all("supervised_rerun" in m for m in four) and any("dllr" in m for m in four)  # with the rows it pairs
    # seed by seed, each seed's rows right after its re-run: a machine's end leaves whole seeds on one machine
    seeds = [_last(c, "--seeds") for c, b in train if b == "4img"]
    assert seeds == ["0", "0", "1", "1", "2", "2"] and all(list(m)[:2] == list(four[0]) for m in four[::2])
    assert not any("supervised_rerun" in _last(c, "--methods") for c, b in train if b == "2img")
    summaries = [c for c in calls if "--summary-only" in c and "--budget" in c and "4img" in " ".join(c)]
    assert any("supervised_rerun" in _last(c, "--methods") for c in summaries)


def test_each_budget_trains_supervised_before_its_methods(tmp_path):
    """Whether a budget adds anything over the smaller one (supervised, paired by seed) is known before the
    hours of its method cells."""
    train = [c for c in commands(tmp_path, "discriminative", env={"WORKERS": "1"}) if "--summary-only" not in c]
    for budget in ("2img", "4img"):
        calls = [c for c in train if _last(c, "--budget").startswith(budget)]
        assert _last(calls[0], "--methods") == "supervised" and len(calls) > 1
        assert "supervised" in parse_methods(_last(calls[1], "--methods"))  # (always first; its cells are done)


@pytest.mark.skipif(not DUBAI.is_dir(), reason=f"Dubai data not found at {DUBAI} (set SEMILAND_SHARED_DATA)")
def test_the_4_image_budget_adds_two_images_to_the_2_image_one():
    from semiland.bench.sweep.plan import training_pool
    from semiland.data.prepare import resolve_split

    script = (REPO / "scripts" / "dubai_sweep.sh").read_text()
    budgets = parse_budgets([line.split('"')[1] for line in script.splitlines() if line.startswith(("B1=", "B2="))])
    config, root = REPO / "configs" / "dubai" / "sweep.yaml", f"data.root={DUBAI}"
    two, four = (resolve_split(load_config(config, [root, *budgets[b]]))[1] for b in ("2img", "4img"))
    assert len(two.labeled) == 2 and len(four.labeled) == 4 and set(two.labeled) < set(four.labeled)
    assert (two.val, two.test) == (four.val, four.test)
    # the same training pool: the 4-image budget shares the oracle cells (--no-oracle in the script)
    assert training_pool(config, [root, *budgets["2img"]]) == training_pool(config, [root, *budgets["4img"]])


def test_workers_each_walk_every_set_and_a_stop_time_ends_the_training_calls(tmp_path):
    calls = commands(tmp_path, "generative sar", env={"WORKERS": "3"})
    train = [c for c in calls if "--summary-only" not in c]
    assert set(Counter(json.dumps(c) for c in train).values()) == {3}  # three processes, the same commands
    labels = {label for c in train for label in parse_methods(_last(c, "--methods"))}
    assert {"gan", "vae", "dllr", "dllr_no_cps"} <= labels  # both sets, in one call
    assert not any("--no-summary" in c for c in train)  # each call summarises what is done so far
    (tmp_path / "lent").mkdir()  # a GPU lent for minutes: workers reach their cells without ~15 s of plots a call
    lent = commands(tmp_path / "lent", "strong-view", env={"STOP_AT": "9999999999", "NO_SUMMARY": "1"})
    assert lent and all("--no-summary" in c and _last(c, "--stop-at") == "9999999999" for c in lent)
    (tmp_path / "late").mkdir()
    late = commands(tmp_path / "late", "all", env={"STOP_AT": "1", "NO_SUMMARY": "1"})
    assert late == []  # past the stop time no process starts a sweep; no summaries asked for
    (tmp_path / "session").mkdir()  # a CPU machine lent for a session: no cell still running at its end
    session = commands(tmp_path / "session", "top-q", env={"FINISH_BY": "9999999999.5", "NO_SUMMARY": "1"})
    assert session and all(_last(c, "--finish-by") == "9999999999.5" and "--stop-at" not in c for c in session)
    (tmp_path / "ended").mkdir()
    assert commands(tmp_path / "ended", "top-q", env={"FINISH_BY": "1.5", "NO_SUMMARY": "1"}) == []
    done = subprocess.run(["bash", "scripts/dubai_sweep.sh", str(tmp_path / "o"), "nosuch"], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "unknown set 'nosuch'" in done.stderr


# A stand-in for `semiland` that "finishes" one cell per training call (its last method's, seed 0) into the
# mirror it is given.
CELL_STUB = """#!{python}
import json, pathlib, sys
a = sys.argv[1:]
if "--summary-only" not in a:
    label = a[a.index("--methods") + 1].split(",")[-1].split(":")[0].split("=")[0]
    budget = a[len(a) - 1 - a[::-1].index("--budget") + 1].split("=")[0]
    cell = pathlib.Path(a[a.index("--mirror") + 1]) / label / budget / "seed0"
    if not (cell / "result.json").is_file():  # a finished cell is never trained again
        cell.mkdir(parents=True, exist_ok=True)
        row = dict(method=label, budget=budget, seed=0, mIoU=0.5, fit_seconds=60.0, device="cuda: stub")
        (cell / "result.json").write_text(json.dumps(row))
    run = pathlib.Path(a[a.index("-o") + 1]) / label / budget / "seed1"  # one the stop cut off: not packed
    (run / "logs").mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text("")
    (run / "logs" / "metrics.csv").write_text("step,train/loss\\n9,1.0\\n300,0.5\\n")
"""


# The device scripts run end to end (~70 s of subprocesses): in the slow tier (`make test-slow`), which a session
# runs before a lent GPU's call; the scripts' plans and configs are checked above in the fast tier.
@pytest.mark.slow
def test_the_device_sweep_brings_back_the_new_cells_and_merges_only_missing_ones(tmp_path):
    """scripts/device_sweep.sh, run with a stand-in for semiland: `run` packs exactly the cells its sweep
    finished; `merge` adds those the mirror lacks and leaves a cell finished here meanwhile as it is."""
    mirror, back, machine = tmp_path / "mirror", tmp_path / "back", tmp_path / "machine"
    machine.mkdir()  # the device machine's temporary folder, kept between two calls while it stays warm
    old = mirror / "supervised" / "2img" / "seed0"
    old.mkdir(parents=True)
    (old / "result.json").write_text('{"mine": 1}')  # finished before the call: not brought back
    back.mkdir()
    stub, path = tmp_path / "semiland", tmp_path / "bin"
    stub.write_text(CELL_STUB.format(python=sys.executable))
    stub.chmod(0o755)
    path.mkdir()
    (path / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # the device's: torch and the rest
    (path / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}", "SEMILAND": str(stub), "MIRROR": str(mirror),
           "OUT": str(back), "WORKERS": "2", "WHEELHOUSE": str(tmp_path / "none"),
           "TMPDIR": str(machine)}  # fmt: skip
    run = subprocess.run(["bash", "scripts/device_sweep.sh", "run", "1", "generative"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "2 new cells in" in run.stdout and "vae 2img 0 50.00 1.0 cuda: stub" in run.stdout
    assert "unfinished vae/2img/seed1: step 300 after" in run.stdout  # how far a cut-off cell got
    assert "unfinished vae/2img/seed1: step 300 after" in (back / "logs.txt").read_text()
    import tarfile

    with tarfile.open(back / "cells.tar.gz") as tar:
        packed = {n for n in tar.getnames() if n.endswith("result.json")}
    assert packed == {"vae/2img/seed0/result.json", "vae/4img/seed0/result.json"}  # not supervised's, older
    # here, the CPU sweep finished vae/4img/seed0 meanwhile: merge keeps it and adds the rest
    here = tmp_path / "here"
    mine = here / "vae" / "4img" / "seed0"
    mine.mkdir(parents=True)
    (mine / "result.json").write_text('{"mine": 2}')
    merge = subprocess.run(["bash", "scripts/device_sweep.sh", "merge", str(back / "cells.tar.gz")], cwd=REPO,
                           env={**env, "MIRROR": str(here)}, capture_output=True, text=True)  # fmt: skip
    assert merge.returncode == 0, merge.stderr
    assert json.loads((mine / "result.json").read_text()) == {"mine": 2}
    assert (here / "vae" / "2img" / "seed0" / "result.json").is_file()
    assert "1 cells added" in merge.stdout
    # a second call on the still-warm machine, before any merge here: its checkout (the mirror) is sent afresh,
    # without the first call's cells, which it takes from the first call's work folder instead of training again
    shutil.rmtree(mirror / "vae")
    again = subprocess.run(["bash", "scripts/device_sweep.sh", "run", "1", "generative"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "2 cells added" in again.stdout and "no new cell finished" in again.stdout


# The GPU image (the device tool's KINDS.md) has torch, Lightning, timm, torchmetrics, matplotlib, scikit-learn …
# but none of these: the sweep's code path must not import them, or a lent GPU's minutes end in an ImportError.
NOT_ON_GPU_IMAGE = ("rasterio", "affine", "torchgeo", "geopandas", "shapely", "pyproj", "pyogrio")
BLOCKER = """import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in the GPU image)", name=name)
sys.meta_path.insert(0, Block())
"""


def dubai_layout(root: Path, per_tile: int = 2, size: int = 160) -> Path:
    """A tiny folder in the Dubai preset's layout (8 tiles of JPEG images and RGB-coded PNG masks)."""
    import numpy as np
    from PIL import Image

    colours = [(60, 16, 152), (132, 41, 246), (110, 193, 228), (254, 221, 58), (226, 169, 41)]
    rows = [f"{k},c{k},#{r:02X}{g:02X}{b:02X},{r},{g},{b}," for k, (r, g, b) in enumerate(colours)]
    rows += ["5,unlabeled,#9B9B9B,155,155,155,", "255,(no annotation),#000000,0,0,0,"]  # the preset ignores these
    root.mkdir(parents=True)
    (root / "class_colors.csv").write_text("index,name,hex,r,g,b,note\n" + "\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    for t in range(1, 9):
        for i in range(1, per_tile + 1):
            classes = rng.integers(0, 5, (size // 20, size // 20)).repeat(20, 0).repeat(20, 1)  # 20-px blocks
            mask = np.asarray(colours, np.uint8)[classes]
            image = (mask * 0.7 + rng.normal(0, 20, mask.shape)).clip(0, 255).astype(np.uint8)
            for kind, array, ext in (("images", image, "jpg"), ("masks", mask, "png")):
                (root / f"tile_{t}" / kind).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / f"tile_{t}" / kind / f"image_part_{i:03d}.{ext}")
    return root


@pytest.mark.slow  # end to end: see above
def test_the_sweep_runs_without_the_packages_the_gpu_image_lacks(tmp_path):
    """`scripts/device_sweep.sh run` trains with the GPU image's packages (+ the carried smp and kornia): one
    cell of each kind of set (plain, optical + simulated SAR, multi-task) with those packages blocked."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(NOT_ON_GPU_IMAGE)))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}
    control = subprocess.run([sys.executable, "-c", "import rasterio"], env=env, capture_output=True, text=True)
    assert "not in the GPU image" in control.stderr  # the blocker works: the run below really goes without them
    root, out = dubai_layout(tmp_path / "dubai"), tmp_path / "out"
    methods = "supervised,dllr=dllr:data.simulate_sar=true,wk=multitask:method.network=wnet method.aux_loss=kmeans"
    argv = [sys.executable, "-m", "semiland", "bench", "sweep", "--config", "configs/dubai/sweep.yaml",
            "--methods", methods, "--seeds", "0", "--budget", "2img=data.labeled_count=2", "--no-oracle",
            "--no-models", "--also-on", "unlabeled", "-o", str(out),
            f"data.root={root}", "train.steps=2", "train.val_every=2", "data.batch_size=2",
            "data.unlabeled_batch_size=2"]  # fmt: skip
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert sorted(r["method"] for r in rows) == ["dllr", "supervised", "wk"]
    assert all("unlabeled:mIoU" in r for r in rows)


@pytest.mark.slow  # end to end: see above
def test_the_device_speed_call_measures_the_engine_and_the_step_costs_without_the_missing_packages(tmp_path):
    """`scripts/device_sweep.sh speed` (the short second call on a lent GPU) runs `bench train-speed` in float32
    and bf16 and `bench step-cost` on the sweep's setting, each writing its JSON to $OUT — here on the CPU,
    at one step (32² crops: bf16 is emulated on CPUs without it), with the packages the GPU image lacks blocked."""
    site, path, out = tmp_path / "site", tmp_path / "bin", tmp_path / "out"
    for d in (site, path, out):
        d.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(NOT_ON_GPU_IMAGE)))
    (path / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # the device's: torch and the rest
    (path / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}", "PYTHONPATH": str(site), "OUT": str(out),
           "WHEELHOUSE": str(tmp_path / "none"), "DEVICE": "cpu", "STEPS": "1", "REPEATS": "1", "SIZE": "32",
           "SPEED_METHODS": "supervised,fixmatch", "OMP_NUM_THREADS": "1"}  # fmt: skip
    env.pop("SEMILAND", None)
    run = subprocess.run(["bash", "scripts/device_sweep.sh", "speed"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["step_cost.json", "train_speed_32-true.json",
                                                     "train_speed_bf16-mixed.json"]  # fmt: skip
    cost = json.loads((out / "step_cost.json").read_text())
    assert set(cost["seconds_per_step"]) == {"supervised", "fixmatch"} and cost["vs_supervised"]["fixmatch"] > 1
    assert "precision bf16-mixed" in json.loads((out / "train_speed_bf16-mixed.json").read_text())["setup"]
