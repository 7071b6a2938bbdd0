"""What semiland says while it works: plain progress lines in a log, nothing with -q, the same -q / -v in every
command."""

import io

import pytest

from semiland import console
from semiland.cli import main

from .conftest import write_config


def test_progress_in_a_log_is_a_few_plain_lines(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)  # not a terminal
    for _ in console.progress_bar(range(2000), desc="checking the data", unit="image"):
        pass
    with console.progress_bar(total=10**6, desc="predict", unit="px") as bar:
        for _ in range(1000):
            bar.update(1000)
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and len(lines) == 22  # start, each tenth (incl. the end), twice
    assert lines[0].startswith("checking the data:   0 % (0/2000)") and lines[10].startswith("checking the data: 100 %")
    assert lines[-1].startswith("predict: 100 %")


def test_quiet_silences_progress(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(console, "_level", console.QUIET)
    for _ in console.progress_bar(range(100), desc="x"):
        pass
    assert err.getvalue() == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_fit_prints_results_only(synth_root, tmp_path, capfd, where):
    cfg = write_config(tmp_path, synth_root)
    command = ["fit", "--config", str(cfg), "-o", str(tmp_path / "run"), "train.steps=4", "train.progress=true"]
    argv = ["-q", *command] if where == "before" else [*command, "-q"]
    try:
        assert main(argv) == 0
    finally:
        console.set_verbosity(console.NORMAL)
    out, err = capfd.readouterr()
    assert "run folder:" in out and "mean" in out  # the result
    assert "data:" not in out and "run: method" not in out and "step " not in err  # no chatter


def test_every_command_takes_quiet_and_verbose():
    from semiland.cli import _commands, build_parser

    for command in _commands(build_parser()):
        options = {o for a in command._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, command.prog
