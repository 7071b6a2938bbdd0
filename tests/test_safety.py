"""Nothing a user owns is ever lost: --overwrite replaces only semiland's own outputs, after the new work has passed
its checks, by writing aside and swapping in; predict never writes over an input or a file it did not write.

Every case goes through the real command and checks that each pre-existing file is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from semiland.cli import main
from semiland.io import HOST, MANIFEST, OutputFolder, plan_output_folder, write_output_folder

from .conftest import run_predict, write_config

pytestmark = pytest.mark.filterwarnings("ignore")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (links not followed) → its content hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def dead_pid() -> int:
    """A process id that no process has now (above the default pid_max)."""
    pid = 2**22 + 12345
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("semiland: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def good_run(tmp_path, synth_root) -> Path:
    """A finished run of our own, copied so each test may try to lose it."""
    run = tmp_path / "good"
    assert main(["fit", "--config", str(write_config(tmp_path, synth_root)), "-o", str(run), "train.steps=2"]) == 0
    return run


def test_a_failed_overwrite_keeps_the_good_run_whole(good_run, tmp_path, synth_root, capsys):
    before = snapshot(good_run)
    cfg = write_config(tmp_path, synth_root)
    # a typo elsewhere in the command: refused before the folder is touched
    assert main(["fit", "--config", str(cfg), "-o", str(good_run), "--overwrite", "data.labeled=[region_typo]"]) == 2
    assert "region_typo" in one_error(capsys)
    assert snapshot(good_run) == before
    # a run that fails after training started (a method that needs unlabeled images, checked up front) …
    assert main(["fit", "--config", str(cfg), "-o", str(good_run), "--overwrite", "method.name=fixmatch",
                 "data.unlabeled=[]"]) == 2  # fmt: skip
    assert "unlabeled" in one_error(capsys)
    assert snapshot(good_run) == before
    assert not [p for p in good_run.parent.iterdir() if p.name.startswith(".good.")]  # no staging left


def test_overwrite_replaces_our_run_by_a_swap(good_run, tmp_path, synth_root):
    (good_run / "checkpoints" / "note.txt").write_text("inside our run: replaced with it")
    cfg = write_config(tmp_path, synth_root)
    assert main(["fit", "--config", str(cfg), "-o", str(good_run), "--overwrite", "train.steps=3"]) == 0
    assert not (good_run / "checkpoints" / "note.txt").exists()
    assert "steps: 3" in (good_run / "config.yaml").read_text()
    assert json.loads((good_run / MANIFEST).read_text())["whole"] is True
    assert not [p for p in good_run.parent.iterdir() if p.name.startswith(".good.")]
    # the swapped-in run resumes from its own folder (paths rebased, no staging name needed)
    assert main(["fit", "--resume", str(good_run), "train.steps=4"]) == 0


def test_interrupted_overwrite_leaves_the_earlier_run(good_run, tmp_path, synth_root, monkeypatch, capsys):
    from semiland import api
    from semiland.engine import runner

    before = snapshot(good_run)

    def interrupted(plan, run_dir):
        (run_dir / "half.txt").write_text("the new run got this far")
        raise runner.RunInterrupted("stopped")

    monkeypatch.setattr(api, "run_fit", interrupted)  # `semiland fit` trains through semiland.api.fit
    cfg = write_config(tmp_path, synth_root)
    assert main(["fit", "--config", str(cfg), "-o", str(good_run), "--overwrite"]) == 130
    err = capsys.readouterr().err
    assert "still holds the earlier run" in err and err.count("\n") == 1
    assert snapshot(good_run) == before
    assert not [p for p in good_run.parent.iterdir() if p.name.startswith(".good.")]


def test_overwrite_never_touches_folders_semiland_did_not_write(tmp_path, synth_root, capsys, monkeypatch):
    cfg = write_config(tmp_path, synth_root)
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("years of work")
    before = snapshot(project)
    monkeypatch.chdir(project)
    for out in (".", str(project)):  # the working directory, relative or not
        assert main(["fit", "--config", str(cfg), "-o", out, "--overwrite"]) == 2
        assert "working directory" in one_error(capsys)
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", str(cfg), "-o", str(project), "--overwrite"]) == 2
    assert "not written by semiland" in one_error(capsys)
    # a link to it: refused, the target untouched
    (tmp_path / "link").symlink_to(project)
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "link"), "--overwrite"]) == 2
    assert "symbolic link" in one_error(capsys)
    # the dataset root (it holds every input)
    data_before = snapshot(synth_root)
    assert main(["fit", "--config", str(cfg), "-o", str(synth_root), "--overwrite"]) == 2
    assert "holds the input" in one_error(capsys)
    assert snapshot(project) == before and snapshot(synth_root) == data_before


def test_a_run_folder_holding_the_data_is_not_replaced(tmp_path, synth_root, capsys):
    """Even our own run folder is kept when the new run reads from it (data copied into an old run)."""
    cfg = write_config(tmp_path, synth_root)
    run = tmp_path / "run"
    assert main(["fit", "--config", str(cfg), "-o", str(run), "train.steps=2"]) == 0
    shutil.copytree(synth_root, run / "data")
    before = snapshot(run)
    assert main(["fit", "--config", str(cfg), "-o", str(run), "--overwrite", f"data.root={run / 'data'}"]) == 2
    assert "holds the input" in one_error(capsys)
    assert snapshot(run) == before


def test_a_refused_run_leaves_nothing(tmp_path, synth_root, capsys):
    cfg = write_config(tmp_path, synth_root)
    run = tmp_path / "r"
    assert main(["fit", "--config", str(cfg), "-o", str(run), "method.name=fixmatch", "data.unlabeled=[]"]) == 2
    one_error(capsys)
    assert not run.exists()
    # the corrected command is not refused with "already exists"
    assert main(["fit", "--config", str(cfg), "-o", str(run), "train.steps=2"]) == 0


def test_subsample_never_replaces_its_dataset(tmp_path, synth_root, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth_root, data)
    before = snapshot(data)
    args = ["subsample", str(data), "--preset", "synthetic", "--fraction", "0.5", "--subtile", "32", "--no-progress"]
    assert main([*args, "-o", str(data), "--overwrite"]) == 2
    one_error(capsys)
    assert main([*args, "-o", str(data / "tiny")]) == 2  # a new "region" inside the dataset
    assert "inside the dataset" in one_error(capsys)
    assert snapshot(data) == before


def test_predict_never_writes_over_inputs_or_foreign_files(trained, synth_root, tmp_path, capsys):
    src = synth_root / "region_3" / "images" / "scene_000.tif"
    out = tmp_path / "maps"
    out.mkdir()
    shutil.copy(src, out / "a.tif")
    shutil.copy(src, out / "a_classes.tif")  # an input named like a.tif's class map
    shutil.copy(src, out / "b.tif")
    shutil.copy(src, tmp_path / "b_confidence.tif")
    before = snapshot(out)
    for extra in ([], ["--overwrite"], ["--skip-existing"], ["--png", "--overwrite"]):
        assert run_predict(trained, out / "a.tif", out / "a_classes.tif", "-o", out, *extra) == 2
        assert "which is an input" in one_error(capsys)
    # an output that would land on another input (b.tif's confidence map on the input b_confidence.tif)
    assert run_predict(trained, out / "b.tif", tmp_path / "b_confidence.tif", "-o", tmp_path, "--confidence") == 2
    assert "which is an input" in one_error(capsys)
    # a file of the output's name that semiland did not write: never skipped, never replaced
    foreign = tmp_path / "m3"
    foreign.mkdir()
    (foreign / "a_classes.tif").write_text("the user's own file")
    for extra in ([], ["--overwrite"], ["--skip-existing"]):
        assert run_predict(trained, out / "a.tif", "-o", foreign, *extra) == 2
        assert "not written by semiland" in one_error(capsys)
    assert (foreign / "a_classes.tif").read_text() == "the user's own file"
    assert snapshot(out) == before
    # our own finished map is skipped by --skip-existing and replaced by --overwrite
    assert run_predict(trained, out / "a.tif", "-o", tmp_path / "m4") == 0
    capsys.readouterr()
    assert run_predict(trained, out / "a.tif", "-o", tmp_path / "m4", "--skip-existing") == 0
    assert "skipped 1" in capsys.readouterr().out
    assert run_predict(trained, out / "a.tif", "-o", tmp_path / "m4", "--overwrite") == 0
    # beside its input: the map's name cannot be the input's, so the input folder is a safe -o
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(src, alone / "scene.tif")
    stamp = snapshot(alone)
    assert run_predict(trained, alone / "scene.tif", "-o", alone) == 0
    assert {p.name for p in alone.iterdir()} >= {"scene.tif", "scene_classes.tif"} and snapshot(alone)[
        "scene.tif"
    ] == stamp["scene.tif"]
    # the folder again: its input is scene.tif, not the map written beside it (already done: skipped)
    assert run_predict(trained, alone, "-o", alone, "--skip-existing") == 0
    assert "skipped 1" in capsys.readouterr().out and not (alone / "scene_classes_classes.tif").exists()


def test_stale_temporaries_of_killed_runs_are_removed_live_ones_kept(trained, synth_root, tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    dead = dead_pid()
    stale = out / f".x.tif.{HOST}-{dead}.abc123.tmp"
    scratch = out / f".x.tif.{HOST}-{dead}.abc123.tmp.gtiff"
    live = out / f".y.tif.{HOST}-{os.getpid()}.def456.tmp"
    other_host = out / f".z.tif.elsewhere-{dead}.ghi789.tmp"
    user = out / ".my.notes.tmp"
    for p in (stale, scratch, live, other_host, user):
        p.write_text("x")
    assert run_predict(trained, synth_root / "region_3" / "images" / "scene_000.tif", "-o", out) == 0
    assert not stale.exists() and not scratch.exists()
    assert live.exists() and other_host.exists() and user.exists()


def test_test_refuses_to_replace_results_unasked(good_run, tmp_path, capsys):
    ckpt = good_run / "checkpoints" / "best.ckpt"
    before = snapshot(good_run / "test")
    assert main(["test", "--ckpt", str(ckpt)]) == 2  # fit wrote <run>/test already
    assert "--overwrite" in one_error(capsys)
    assert snapshot(good_run / "test") == before
    assert main(["test", "--ckpt", str(ckpt), "--overwrite"]) == 0
    # a user's folder is never a place for our files, with or without --overwrite
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "metrics.json").write_text("{}")
    for extra in ([], ["--overwrite"]):
        assert main(["test", "--ckpt", str(ckpt), "-o", str(mine), *extra]) == 2
        one_error(capsys)
    assert (mine / "metrics.json").read_text() == "{}"
    # a checkpoint outside a run folder: no guessing where to write
    loose = tmp_path / "models" / "best.ckpt"
    loose.parent.mkdir()
    shutil.copy(ckpt, loose)
    assert main(["test", "--ckpt", str(loose)]) == 2
    assert "-o" in one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["good", "cfg.yaml", "results", "models"])


def test_write_output_folder_swaps_only_on_success(tmp_path):
    final = tmp_path / "out"
    with write_output_folder(plan_output_folder(final, False)) as d:
        (d / "a.txt").write_text("first")
    plan = plan_output_folder(final, True)
    assert plan == OutputFolder(final, "output folder", True)
    with pytest.raises(RuntimeError), write_output_folder(plan) as d:
        assert d != final
        (d / "a.txt").write_text("second")
        raise RuntimeError("the new output failed its checks")
    assert (final / "a.txt").read_text() == "first"
    with write_output_folder(plan) as d:
        (d / "a.txt").write_text("second")
    assert (final / "a.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_and_sigterm_stop_fit_with_one_line_naming_the_last_checkpoint(tmp_path, synth_root, sig, status):
    """What a user (Ctrl-C) or a scheduler (SIGTERM) sends: one line, the conventional status, a resumable run."""
    import signal
    import subprocess
    import sys
    import time

    cfg = write_config(tmp_path, synth_root)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "semiland", "fit", "--config", str(cfg), "-o", str(run), "train.steps=100000",
         "train.val_every=2"],  # fmt: skip
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        # Ctrl-C reaches a terminal's foreground process; a shell's background job (`make test &`, nohup) starts
        # its children with SIGINT ignored, and Python then never raises KeyboardInterrupt: give the child the
        # terminal's disposition so the test does not depend on how the suite was started
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        last = run / "checkpoints" / "last.ckpt"
        deadline = time.time() + 120
        while not last.is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert last.is_file(), proc.stderr.read() if proc.poll() is not None else "no checkpoint within 120 s"
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed check must not leave a 100 000-step fit running beside the suite
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    lines = [x for x in err.strip().splitlines() if x.startswith("semiland: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(last) in lines[0] and f"semiland fit --resume {run}" in lines[0]
    assert ("SIGTERM" in lines[0]) == (sig == "SIGTERM")


def test_a_resumed_run_removes_what_its_killed_process_left_half_written(good_run):
    dead = dead_pid()
    left = [good_run / f".config.yaml.{HOST}-{dead}.a1.tmp", good_run / "logs" / f".metrics.csv.{HOST}-{dead}.b2.tmp"]
    for p in left:
        p.write_text("cut off")
    assert main(["fit", "--resume", str(good_run), "train.steps=3"]) == 0
    assert not any(p.exists() for p in left)
