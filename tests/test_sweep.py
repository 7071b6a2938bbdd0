import json
import math
import os
import shutil
import time

import pytest
import torch
import yaml

from semiland.bench.sweep.layout import CellRow, Score
from semiland.cli import main
from semiland.errors import SemilandError

from .conftest import tiny_config


def trained(row, method, oracle=False, **settings):
    """`row` with the recipe its cell's config.yaml gives (`layout.cell_recipe`)."""
    from dataclasses import replace

    from semiland.bench.sweep.layout import Recipe

    return replace(row, recipe=Recipe(method, oracle, json.dumps({"name": method, **settings}, sort_keys=True)))


def cell_id(spec):
    """The keys naming a cell in its result.json."""
    return {"method": spec.method, "budget": spec.budget, "seed": spec.seed}


def sweep_config(tmp_path):
    """Two-step runs on 5 synthetic regions (val region 3, test region 4), written as a config file."""
    from semiland.data.synthetic import generate

    root = generate(tmp_path / "d", regions=5, images=2, size=64, bands=3)
    cfg = tiny_config(
        root,
        data={"synthetic_regions": 5, "val": ["region_3"], "test": ["region_4"]},
        train={"steps": 2, "val_every": 2},
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def test_sweep_runs_summarises_and_resumes(tmp_path, capsys):
    path = sweep_config(tmp_path)
    out = tmp_path / "sweep"
    args = [
        "bench",
        "sweep",
        "--config",
        str(path),
        "--methods",
        "fixmatch,km=multitask:method.aux_loss=kmeans method.network=wnet",
        "--seeds",
        "0,1",
        "-o",
        str(out),
        "--budget",
        "one=data.labeled=[region_0] data.unlabeled=[region_2]",
        "--budget",
        "two=data.labeled=[region_0,region_1] data.unlabeled=[region_2]",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out  # each cell to train says what is left, costed from the finished ones
    assert "] fixmatch / one / seed 1 — left: " in printed and "h of one process" in printed
    rows = json.loads((out / "results.json").read_text())["runs"]
    # every cell's result.json reads as a CellRow: each key a named field or a score, written back the same
    for written in out.rglob("result.json"):
        flat = json.loads(written.read_text())
        row = CellRow.from_json(flat)
        assert not row.notes and row.to_json() == flat, written
        assert row.mIoU is not None and row.get(Score(metric="OA")) is not None and row.fit_cpu_seconds
    # a cell's cost is its process's CPU time (other load and pauses do not count), beside its wall time
    assert all(0 < r["fit_cpu_seconds"] and 0 < r["fit_seconds"] for r in rows)
    assert len(rows) == 2 * 2 * 4  # budgets × seeds × (supervised, fixmatch, km, oracle)
    assert (out / "km" / "one" / "seed1" / "result.json").is_file()  # the label names the folder
    saved = yaml.safe_load((out / "km" / "one" / "seed0" / "config.yaml").read_text())
    assert saved["method"]["name"] == "multitask" and saved["method"]["aux_loss"] == "kmeans"
    assert {r["labeled_images"] for r in rows if r["budget"] == "one" and r["method"] == "supervised"} == {2}
    assert {r["labeled_images"] for r in rows if r["method"] == "oracle"} == {4, 6}  # labeled + unlabeled tiles
    summary = (out / "summary.md").read_text()
    assert (
        all(r["val_mIoU"] is not None for r in rows) and "Per-class test IoU" in summary and "| building |" in summary
    )
    assert (
        "| one | fixmatch | 2 |" in summary
        and "| two | km | 2 |" in summary
        and "oracle" in summary
        and (out / "summary.html").is_file()
    )
    # sweeps keep metrics and every cell's best model (never last.ckpt): supervised's whole (a later self_training
    # cell's teacher), the others without their optimizer state, still a model `test` / `predict` read
    kept = list(out.rglob("*.ckpt"))
    assert kept and all(p.name == "best.ckpt" for p in kept)
    assert {p.relative_to(out).parts[0] for p in kept} == {"supervised", "fixmatch", "km", "oracle"}
    whole = {p.relative_to(out).parts[0] for p in kept if "optimizer_states" in torch.load(p, weights_only=True)}
    assert whole == {"supervised"}
    assert (out / "sweep_config.yaml").is_file()  # read once: editing the original cannot mix protocols
    html = (out / "summary.html").read_text()  # the tables as tables, and the plot of every seed
    # a few steps of a tiny model keep no FixMatch pseudo-label at τ = 0.95: the alarms table says so (#39)
    alarms = "Training alarms" in html
    assert not alarms or "no pseudo-label was kept in the whole run" in summary
    assert (
        html.count("<table>") == 7 + alarms
        and "figures/sweep_test.png" in html
        and (out / "figures/sweep_test.png").is_file()
    )
    assert "Δ mIoU vs supervised seed by seed" in summary  # each seed's paired difference, with its p
    assert "Largest confusion changes vs supervised" in summary  # the third: where each method's pixels went
    assert "Per-class IoU change vs supervised" in summary  # which classes each method's Δ mIoU comes from
    assert "Predicted class shares" in summary  # how much of each class each method predicts
    assert "Per-class validation IoU" in summary and all(
        any(k.startswith("val_last:IoU/") for k in r) for r in rows
    )  # from the cells
    assert "figures/sweep_validation.png" in html and (out / "figures/sweep_validation.png").is_file()  # curves
    # two labeled counts (2 and 4 images): the sensitivity curve against the budget, and its CSV (no oracle)
    assert "figures/curve_labeled.png" in html and (out / "figures/curve_labeled.png").stat().st_size > 1000
    import csv

    with open(out / "figures/curve_labeled.csv") as f:
        curve = [(r["method"], float(r["labeled_images"]), int(r["n"])) for r in csv.DictReader(f)]
    assert sorted(curve) == [(m, x, 2) for m in ("fixmatch", "km", "supervised") for x in (2.0, 4.0)]
    assert "curve_lambda" not in html  # one λ per method: no λ curve
    # resumable: a second call redoes nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    capsys.readouterr()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == stamps
    # --also-on later: finished cells are evaluated with their kept models (the oracle trained on those images)
    assert main([*args, "--also-on", "unlabeled"]) == 0
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert {r["method"] for r in rows if "unlabeled:mIoU" in r} == {"supervised", "fixmatch", "km"}
    assert (out / "supervised" / "one" / "seed0" / "test-on-unlabeled" / "metrics.json").is_file()
    summary = (out / "summary.md").read_text()
    assert "Also evaluated on `unlabeled`" in summary
    # the main table carries the set's mIoU beside the test's; methods without it show a dash
    assert "| unlabeled mIoU | Δ unlabeled (paired) |" in summary and "| – | – |" in summary
    # --summary-only trains nothing: an unfinished cell stays unfinished and is left out of the summary
    (out / "fixmatch" / "two" / "seed1" / "result.json").unlink()
    capsys.readouterr()
    assert main([*args, "--summary-only"]) == 0
    assert "15 of 16 cells finished; left: 1 cells, ≈ 0.0 h of one process for 1 of them" in capsys.readouterr().out
    assert not (out / "fixmatch" / "two" / "seed1" / "result.json").exists()
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 15
    # --no-summary (processes sharing the folder) trains what is left and writes no summary; with --summary-only
    # it would do nothing, and is refused
    (out / "summary.md").unlink()
    assert main([*args, "--no-summary"]) == 0
    assert (out / "fixmatch" / "two" / "seed1" / "result.json").is_file() and not (out / "summary.md").exists()
    capsys.readouterr()
    assert main([*args, "--no-summary", "--summary-only"]) == 2
    assert "give one of them" in capsys.readouterr().err
    # the same folder with another protocol is refused
    path.write_text(path.read_text().replace("steps: 2", "steps: 3"))
    assert main(args) == 2
    assert "holds a sweep made with another config" in capsys.readouterr().err


def test_sweep_shares_oracle_and_runs_self_training_on_the_supervised_teacher(tmp_path, capsys):
    path = sweep_config(tmp_path)
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(path), "--seeds", "0", "-o", str(out)]
    args += ["--methods", "self_training:method.rounds=1 method.threshold=0.0"]
    args += ["--budget", "one=data.labeled=[region_0] data.unlabeled=[region_1,region_2]"]
    args += ["--budget", "two=data.labeled=[region_0,region_1] data.unlabeled=[region_2]"]  # same pool
    args += ["--also-on", "unlabeled", "--no-models"]  # metrics only: supervised keeps its model (the teacher)
    assert main(args) == 0
    rows = json.loads((out / "results.json").read_text())["runs"]
    # every cell but the oracle (it trained on those labels) is also scored on its unlabeled images; the
    # self-training cell with its last student
    assert [r["method"] for r in rows if "unlabeled:mIoU" in r] == ["supervised", "self_training"] * 2
    assert (out / "self_training" / "one" / "seed0" / "test-on-unlabeled" / "metrics.json").is_file()
    assert [(r["budget"], r["method"]) for r in rows] == [
        ("one", "supervised"), ("one", "self_training"), ("one", "oracle"),
        ("two", "supervised"), ("two", "self_training"), ("two", "oracle"),
    ]  # fmt: skip
    oracle_one, oracle_two = (r for r in rows if r["method"] == "oracle")
    assert oracle_two["same_as"] == "one" and oracle_two["mIoU"] == oracle_one["mIoU"]
    assert not (out / "oracle" / "two").exists()  # one training pool, one oracle run
    st = out / "self_training" / "one" / "seed0"
    rounds = json.loads((st / "self_training.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["teacher"].endswith("supervised/one/seed0/checkpoints/best.ckpt")  # the supervised cell
    assert not (st / "round0").exists() and (st / "round1" / "pseudo" / "pseudo_stats.json").is_file()
    st_row = next(r for r in rows if r["method"] == "self_training" and r["budget"] == "one")
    assert st_row["steps"] == 2 and st_row["labeled_images"] == 2
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ckpt"))  # supervised keeps its model
    assert kept == ["supervised/one/seed0/checkpoints/best.ckpt", "supervised/two/seed0/checkpoints/best.ckpt"]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    capsys.readouterr()
    assert main(args) == 0  # resumable: nothing is redone, not even the teachers
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == stamps
    # a finished supervised cell whose checkpoint is gone is not trained again by a supervised-only call (it
    # once was: a restarted sweep retrained a cell that paired comparisons rested on)
    (out / "supervised" / "one" / "seed0" / "checkpoints" / "best.ckpt").unlink()
    only = [a if a != "self_training:method.rounds=1 method.threshold=0.0" else "supervised" for a in args]
    assert main(only) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == stamps
    # … and a self_training cell that needs it trains the same teacher again in its own folder: on one machine
    # the same weights, so the same student
    before = json.loads((st / "result.json").read_text())
    (st / "result.json").unlink()
    assert main(args) == 0
    assert "training the teacher again" in capsys.readouterr().out
    rounds = json.loads((st / "self_training.json").read_text())
    assert rounds[0]["teacher"].endswith("self_training/one/seed0/teacher/checkpoints/best.ckpt")
    assert json.loads((st / "result.json").read_text())["mIoU"] == before["mIoU"]


def test_a_mirror_keeps_the_results_and_continues_the_sweep_elsewhere(tmp_path, capsys):
    """--mirror DIR: each finished cell's small files (no models) go to DIR; a sweep on another disk given the
    same DIR counts them as finished and trains only what is missing."""
    path = sweep_config(tmp_path)
    mirror = tmp_path / "kept"
    args = ["bench", "sweep", "--config", str(path), "--seeds", "0", "--no-oracle", "--mirror", str(mirror)]
    assert main([*args, "--methods", "supervised", "-o", str(tmp_path / "a")]) == 0
    cell = mirror / "supervised" / "default" / "seed0"
    assert {"result.json", "config.yaml", "split.json"} <= {p.name for p in cell.iterdir()}
    assert (cell / "logs" / "metrics.csv").is_file() and (mirror / "sweep_config.yaml").is_file()
    assert not list(mirror.rglob("*.ckpt")) and (mirror / "summary.md").is_file()
    # a new machine: a fresh folder; the finished cell is restored, not trained; the new method is trained
    capsys.readouterr()
    assert main([*args, "--methods", "supervised,pseudo_label", "-o", str(tmp_path / "b")]) == 0
    assert "1 finished cells restored" in capsys.readouterr().out
    b = tmp_path / "b"
    assert not (b / "supervised" / "default" / "seed0" / "checkpoints").exists()  # restored: no model
    assert (b / "pseudo_label" / "default" / "seed0" / "checkpoints" / "best.ckpt").is_file()  # trained here
    assert (mirror / "pseudo_label" / "default" / "seed0" / "result.json").is_file()
    rows = {r["method"]: r for r in json.loads((b / "results.json").read_text())["runs"]}
    first = json.loads((cell / "result.json").read_text())
    assert rows["supervised"]["mIoU"] == first["mIoU"]
    # a later call of fewer methods (a sweep script's supervised-first call) keeps the mirror's summary whole
    assert main([*args, "--methods", "supervised", "-o", str(b)]) == 0
    kept = {r["method"] for r in json.loads((mirror / "results.json").read_text())["runs"]}
    assert (
        kept == {"supervised", "pseudo_label"} and "| default | pseudo_label |" in (mirror / "summary.md").read_text()
    )
    assert {r["method"] for r in json.loads((b / "results.json").read_text())["runs"]} == {"supervised"}
    shutil.rmtree(mirror / "pseudo_label")  # a cell removed (to train it again): its row leaves the summary
    assert main([*args, "--methods", "supervised", "-o", str(tmp_path / "d")]) == 0
    assert {r["method"] for r in json.loads((mirror / "results.json").read_text())["runs"]} == {"supervised"}
    # another protocol in the same mirror is refused, as in the same folder
    cfg = yaml.safe_load(path.read_text())
    cfg["train"]["steps"] = 3
    path.write_text(yaml.safe_dump(cfg))
    assert main([*args, "--methods", "supervised", "-o", str(tmp_path / "c")]) == 2
    assert "another config" in capsys.readouterr().err


def test_self_training_rounds_save_and_score_pseudo_labels(synth_root, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    path = tmp_path / "cfg.yaml"
    cfg = tiny_config(synth_root, method={"name": "self_training", "rounds": 2, "threshold": 0.0})
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["self-train", "--config", str(path), "-o", str(tmp_path / "st")]) == 0
    rows = json.loads((tmp_path / "st" / "self_training.json").read_text())
    assert [r["round"] for r in rows] == [0, 1, 2]
    stats = json.loads((tmp_path / "st" / "round1" / "pseudo" / "pseudo_stats.json").read_text())
    assert stats["coverage"] == 1.0  # τ = 0 keeps every valid pixel
    assert stats["accuracy"] is not None and 0 <= stats["accuracy"] <= 1  # the synthetic "unlabeled" have labels
    # per class: τ = 0 keeps every prediction; accuracy is the class shares' weighted precision
    assert all(v in (None, 1.0) for v in stats["class_kept"].values())
    assert abs(sum(stats["class_true_share"].values()) - 1) < 1e-9
    assert stats["class_predicted_share"] == pytest.approx(stats["class_share"])  # every pixel kept
    weighted = sum(stats["class_share"][n] * (p or 0) for n, p in stats["class_precision"].items())
    assert abs(weighted - stats["accuracy"]) < 1e-6
    assert all(r is None or 0 <= r <= 1 for r in stats["class_recall"].values())
    mask = np.asarray(Image.open(tmp_path / "st" / "round1" / "pseudo" / "region_1" / "scene_000.png"))
    assert mask.shape == (64, 64) and mask.max() < 5
    printed = capsys.readouterr().out
    assert "== round 1: pseudo-labels cover 100.0 % of unlabeled pixels" in printed and "(100 %)" in printed
    # the student method alone, without pseudo-labels, is refused with the way to get them
    assert main(["fit", "--config", str(path), "-o", str(tmp_path / "x")]) == 2
    assert "semiland self-train" in capsys.readouterr().err
    # an earlier output is refused, and replaced whole with --overwrite (written aside, then swapped in)
    assert main(["self-train", "--config", str(path), "-o", str(tmp_path / "st")]) == 2
    (tmp_path / "st" / "round1" / "note.txt").write_text("of the earlier output")
    assert main(["self-train", "--config", str(path), "-o", str(tmp_path / "st"), "--overwrite"]) == 0
    assert not (tmp_path / "st" / "round1" / "note.txt").exists() and (tmp_path / "st" / "self_training.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".st.")]


def test_top_q_keeps_rare_classes():
    import torch

    from semiland.selftrain import select_pixels

    probs = torch.full((3, 10, 10), 0.05)
    probs[0] = torch.linspace(0.81, 0.99, 100).reshape(10, 10)  # class 0 everywhere, confident …
    probs[0, 0, :4] = 0.3
    probs[2, 0, :4] = torch.tensor([0.6, 0.62, 0.64, 0.66])  # … except 4 pixels of a rare class 2, never confident
    pseudo = select_pixels(probs, threshold=0.8, top_q=0.0)
    assert not (pseudo == 2).any()
    pseudo = select_pixels(probs, threshold=0.8, top_q=0.5)
    assert (pseudo == 2).sum() == 2 and (pseudo == 0).sum() == 48  # half of each predicted class


def test_a_cells_cost_is_its_cpu_time_where_recorded():
    from semiland.bench.sweep.layout import CellRow, cost_seconds

    def cost(**times):
        return cost_seconds(CellRow.from_json({"method": "x", "budget": "b", "seed": 0, **times}))

    assert cost(fit_seconds=900.0, fit_cpu_seconds=300.0) == 300.0  # paused / loaded: wall > CPU
    assert cost(fit_seconds=900.0) == 900.0  # a cell from before CPU time was recorded
    assert cost(fit_seconds=900.0, time_unreliable="paused") is None  # left out of every mean
    assert cost(fit_seconds=9.0, fit_cpu_seconds=8.0, device="cpu: AMD EPYC") == 8.0
    assert cost(fit_seconds=9.0, fit_cpu_seconds=8.0, device="cuda: NVIDIA H100") is None  # GPU: not its CPU time


def test_gap_recovered_only_when_the_oracle_leads():
    import math

    from semiland.bench.sweep.stats import summarise

    def row(method, miou):
        return CellRow.from_json({"method": method, "budget": "b", "seed": 0, "mIoU": miou, "OA": 0.9,
                                  "val_mIoU": 0.5, "IoU/a": miou, "fit_seconds": 1.0})  # fmt: skip

    lead = {r["method"]: r for r in summarise([row("supervised", 0.4), row("x", 0.45), row("oracle", 0.5)], ["x"])}
    assert lead["x"]["gap_recovered"] == pytest.approx(0.5)
    behind = {r["method"]: r for r in summarise([row("supervised", 0.5), row("x", 0.45), row("oracle", 0.4)], ["x"])}
    assert math.isnan(behind["x"]["gap_recovered"])  # no gap to recover: not a percentage


def test_difference_to_supervised_is_paired_by_seed():
    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import markdown, summary_tables

    def row(method, seed, miou):
        return CellRow.from_json({"method": method, "budget": "b", "seed": seed, "mIoU": miou, "OA": 0.9,
                                  "val_mIoU": 0.5, "fit_seconds": 1.0})  # fmt: skip

    # seeds differ by 10 points, x leads supervised by 1 point on each: unpaired spreads hide what pairing shows
    rows = [
        row(m, s, base + (0.01 if m == "x" else 0))
        for s, base in enumerate([0.3, 0.4, 0.5])
        for m in ("supervised", "x")
    ]
    rows.append(row("x", 3, 0.9))  # a seed supervised lacks is not paired
    x = {r["method"]: r for r in summarise(rows, ["x"])}["x"]
    assert x["vs_supervised"]["n"] == 3 and x["vs_supervised"]["wins"] == 3
    assert x["vs_supervised"]["mean"] == pytest.approx(1.0) and x["vs_supervised"]["std"] == pytest.approx(
        0.0, abs=1e-9
    )
    assert x["mIoU_std"] > 10 and "+1.00 ± 0.00 (3/3)" in markdown(summary_tables(summarise(rows, ["x"])))


def test_the_seed_table_gives_each_seeds_difference_and_a_t_test():
    from scipy.stats import ttest_1samp

    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import summary_tables

    def row(method, seed, miou, val, unl=None):
        r = {"method": method, "budget": "b", "seed": seed, "mIoU": miou, "OA": 0.9, "val_mIoU": val,
             "fit_seconds": 1.0}  # fmt: skip
        return CellRow.from_json(r | ({} if unl is None else {"unlabeled:mIoU": unl}))

    rows = [row("supervised", s, 0.4, 0.5, 0.6) for s in range(3)]
    rows += [row("x", 0, 0.42, 0.5, 0.59), row("x", 1, 0.41, 0.49, 0.58), row("x", 2, 0.43, 0.52)]
    caption, head, table = summary_tables(summarise(rows, ["x"]))[1]
    assert caption.startswith("Δ mIoU vs supervised seed by seed")
    assert head == ["budget", "method", "set", "seed 0", "seed 1", "seed 2", "mean ± std (won)", "p"]
    by_set = {r[2]: r for r in table if r[1] == "x"}
    assert by_set["test"][3:6] == ["+2.00", "+1.00", "+3.00"] and by_set["test"][6] == "+2.00 ± 1.00 (3/3)"
    assert by_set["test"][7] == f"{ttest_1samp([2.0, 1.0, 3.0], 0).pvalue:.2g}"  # 0.074
    assert by_set["unlabeled"][3:] == ["-1.00", "-2.00", "–", "-1.50 ± 0.71 (0/2)", "–"]  # 2 seeds: no p
    assert by_set["val"][3:6] == ["+0.00", "-1.00", "+2.00"]
    assert not [r for r in table if r[1] == "supervised"]  # no difference to itself


def test_the_validation_class_table_names_the_classes_validation_cannot_see():
    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import summary_tables

    def row(method, seed, a, b):  # classes a and b on the validation set (last validation)
        return CellRow.from_json({"method": method, "budget": "b", "seed": seed, "mIoU": 0.5, "OA": 0.9,
                                  "val_mIoU": 0.5, "fit_seconds": 1.0, "val_last:IoU/a": a, "val_last:IoU/b": b})  # fmt: skip

    rows = [row("supervised", 0, 0.6, 0.0), row("supervised", 1, 0.7, 0.01), row("x", 0, 0.5, 0.03)]
    rows += [row("x", 1, 0.5, 0.0), row("oracle", 0, 0.8, 0.3)]  # x's b: 3 then 0, a mean of 1.5 points
    caption, head, table = summary_tables(summarise(rows, ["supervised", "x"]))[-1]
    assert caption.startswith("Per-class validation IoU") and head == ["budget", "method", "a", "b"]
    assert table == [
        ["b", "supervised", "65.00", "0.50"],
        ["b", "x", "50.00", "1.50"],
        ["b", "oracle", "80.00", "30.00"],
    ]
    assert "b: no method but the oracle reaches 2 IoU points on average on b (best 1.5)" in caption
    assert "on a (" not in caption  # a class the validation set sees is not named
    old = CellRow.from_json({"method": "y", "budget": "b", "seed": 0, "mIoU": 0.5, "OA": 0.9, "val_mIoU": 0.5})
    caption, _, table = summary_tables(summarise([old, *rows], ["y", "supervised", "x"]))[-1]  # y: no such keys
    assert "on b (best 1.5)" in caption and [r[1] for r in table] == ["supervised", "x", "oracle"]
    rows[3].scores[Score.iou("b", "val_last")] = 0.02  # x's mean 2.5: the class is seen
    assert "no method" not in summary_tables(summarise(rows, ["supervised", "x"]))[-1][0]


def test_an_ablation_row_is_compared_with_its_base_method_seed_by_seed():
    from semiland.bench.sweep.stats import summarise, variant_base
    from semiland.bench.sweep.tables import summary_tables

    labels = ["supervised", "dllr", "dllr_no_cps", "fixmatch", "fixmatch_p0", "wnet_l1", "supervised_rerun"]
    assert [variant_base(m, labels) for m in labels] == [None, None, "dllr", None, "fixmatch", None, None]

    def row(method, seed, miou, unl):
        return CellRow.from_json({"method": method, "budget": "b", "seed": seed, "mIoU": miou, "OA": 0.9,
                                  "val_mIoU": 0.5, "fit_seconds": 1.0, "unlabeled:mIoU": unl})  # fmt: skip

    rows = [row("supervised", s, 0.40, 0.5) for s in range(3)]
    rows += [row("dllr", 0, 0.50, 0.6), row("dllr", 1, 0.45, 0.55), row("dllr", 2, 0.40, 0.5)]  # the spread
    rows += [row("dllr_no_cps", 0, 0.48, 0.6), row("dllr_no_cps", 1, 0.43, 0.56), row("dllr_no_cps", 2, 0.38, 0.5)]
    caption, head, table = summary_tables(summarise(rows, ["supervised", "dllr", "dllr_no_cps"]))[-1]
    assert caption.startswith("Variants vs their base method")
    assert head == ["budget", "variant", "base", "set", "seed 0", "seed 1", "seed 2", "mean ± std (won)", "p"]
    by_set = {r[3]: r for r in table}
    assert by_set["test"][:7] == ["b", "dllr_no_cps", "dllr", "test", "-2.00", "-2.00", "-2.00"]
    assert by_set["test"][7] == "-2.00 ± 0.00 (0/3)"  # 3 of 3 behind its base, though level with supervised
    assert by_set["unlabeled"][4:8] == ["+0.00", "+1.00", "+0.00", "+0.33 ± 0.58 (1/3)"]
    assert set(by_set) == {"test", "unlabeled", "val"}
    assert not any(t[0].startswith("Variants") for t in summary_tables(summarise(rows[:6], ["supervised", "dllr"])))


def test_an_ablation_is_paired_with_its_base_trained_again_on_its_own_machine():
    """The base's recipe, not its label, finds the re-run: any label trained the way the base was."""
    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import summary_tables

    def row(method, seed, miou, device):
        flat = {"method": method, "budget": "b", "seed": seed, "mIoU": miou, "OA": 0.9, "val_mIoU": 0.5,
                "fit_seconds": 1.0, "device": device}  # fmt: skip
        settings = {"cps": False} if method == "dllr_no_cps" else {}
        return trained(CellRow.from_json(flat), "supervised" if method == "supervised" else "dllr", **settings)

    old, new = "cpu: AMD EPYC (no native bf16)", "cpu: AMD EPYC (native bf16)"
    rows = [row("supervised", s, 0.40, old) for s in range(3)] + [row("dllr", s, 0.40, old) for s in range(3)]
    rows += [row("dllr_no_cps", s, 0.45, new) for s in range(3)]  # the ablation, on another CPU
    rows += [row("dllr_rerun", 0, 0.44, new), row("dllr_rerun", 1, 0.42, new)]  # DLLR again there, 2 seeds so far
    methods = ["supervised", "dllr", "dllr_no_cps", "dllr_rerun"]
    table = {(r[1], r[3]): r for r in summary_tables(summarise(rows, methods))[-1][2]}
    # seeds 0 and 1 against the re-run of their own machine, seed 2 against the kept DLLR (the only one there)
    assert table["dllr_no_cps", "test"][2:7] == [
        "dllr; seeds 0, 1: dllr_rerun (seed 2 trained on another machine)", "test", "+1.00", "+3.00", "+5.00"
    ]  # fmt: skip
    # what the machine alone moved
    assert table["dllr_rerun", "test"][2:6] == [
        "dllr (seeds 0, 1 trained on another machine)",
        "test",
        "+4.00",
        "+2.00",
    ]
    rows.append(row("dllr_rerun", 2, 0.41, new))
    table = {(r[1], r[3]): r for r in summary_tables(summarise(rows, methods))[-1][2]}
    assert table["dllr_no_cps", "test"][2:7] == ["dllr_rerun", "test", "+1.00", "+3.00", "+4.00"]
    for r in rows[6:9]:  # the ablation on the kept DLLR's machine: paired with it, the re-run unused
        r.device = old
    table = {(r[1], r[3]): r for r in summary_tables(summarise(rows, methods))[-1][2]}
    assert table["dllr_no_cps", "test"][2] == "dllr"


def test_a_row_is_paired_with_supervised_of_its_own_machine_where_that_was_trained_again():
    from semiland.bench.sweep.heads import heads_table
    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import summary_tables

    def row(method, seed, miou, device):
        flat = {"method": method, "budget": "b", "seed": seed, "mIoU": miou, "OA": 0.9, "val_mIoU": 0.5,
                "fit_seconds": 1.0, "device": device, "unlabeled:mIoU": miou, "alone/sar/mIoU": miou - 0.01}  # fmt: skip
        return trained(CellRow.from_json(flat), method.removesuffix("_rerun"))

    old, new = "cpu: AMD EPYC (no native bf16)", "cpu: AMD EPYC (native bf16)"
    rows = [row("supervised", s, 0.40, old) for s in range(3)] + [row("fixmatch", s, 0.42, old) for s in range(3)]
    rows += [row("dllr", s, 0.45, new) for s in range(3)]  # trained on another CPU than supervised
    rows += [row("supervised_rerun", s, 0.44, new) for s in range(2)]  # supervised again there, 2 seeds so far
    methods = ["supervised", "fixmatch", "dllr", "supervised_rerun"]
    table = {r["method"]: r for r in summarise(rows, methods)}
    assert table["dllr"]["vs_supervised"]["by_seed"] == pytest.approx({0: 1.0, 1: 1.0, 2: 5.0})
    assert table["dllr"]["sets"]["unlabeled"]["vs_supervised"]["by_seed"] == pytest.approx({0: 1.0, 1: 1.0, 2: 5.0})
    assert table["fixmatch"]["vs_supervised"]["by_seed"] == pytest.approx({0: 2.0, 1: 2.0, 2: 2.0})  # same machine
    assert table["supervised_rerun"]["vs_supervised"]["mean"] == pytest.approx(4.0)  # the machine's own offset
    main = {r[1]: r for r in summary_tables(list(table.values()))[0][2]}
    assert (
        main["dllr"][4] == "+2.33 ± 2.31 (3/3) vs seeds 0, 1: supervised_rerun (seed 2 trained on another machine)"
        and main["fixmatch"][4] == "+2.00 ± 0.00 (3/3)"
    )
    heads = {r[1]: r for r in heads_table(rows, methods)[2] if r[3] == "test"}
    assert heads["dllr"][6].startswith("+1.33 ± 2.31 (1/3)")  # the head alone, paired the same way


def test_per_class_changes_say_which_classes_a_difference_comes_from():
    from semiland.bench.sweep.stats import summarise
    from semiland.bench.sweep.tables import summary_tables

    def row(method, seed, a, b, on_b=None):  # two classes; the unlabeled set only where on_b is given
        r = {"method": method, "budget": "b", "seed": seed, "mIoU": (a + b) / 2, "OA": 0.9, "val_mIoU": 0.5,
             "fit_seconds": 1.0, "IoU/a": a, "IoU/b": b}  # fmt: skip
        unl = {} if on_b is None else {"unlabeled:mIoU": on_b, "unlabeled:IoU/a": 0.5, "unlabeled:IoU/b": on_b}
        return CellRow.from_json(r | unl)

    rows = [row("supervised", 0, 0.5, 0.3, 0.2), row("supervised", 1, 0.7, 0.1, 0.4)]
    rows += [row("x", 0, 0.6, 0.1, 0.3), row("x", 1, 0.8, 0.1)]  # a: +10 on both seeds; b: −20 and 0
    x = {r["method"]: r for r in summarise(rows, ["x"])}["x"]
    change = x["changes"]
    assert change[Score.iou("a")] == pytest.approx(10.0) and change[Score.iou("b")] == pytest.approx(-10.0)
    assert change[Score.iou("b", "unlabeled")] == pytest.approx(10.0)
    assert x["changed_seeds"] == {"test": 2, "unlabeled": 1}  # seed 1: not evaluated on the unlabeled set
    caption, head, table = summary_tables(summarise(rows, ["x"]))[-1]
    assert caption.startswith("Per-class IoU change") and head == ["budget", "method", "set", "seeds", "a", "b"]
    assert table == [["b", "x", "test", "2", "+10.00", "-10.00"], ["b", "x", "unlabeled", "1", "+0.00", "+10.00"]]


def test_also_on_a_set_without_masks_is_refused_before_any_run(tmp_path, capsys):
    path = sweep_config(tmp_path)
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(path), "--seeds", "0", "-o", str(out), "--also-on", "region_9"]
    assert main(args) == 2
    assert "--on 'region_9': not a split set" in capsys.readouterr().err
    assert not list(out.rglob("result.json")) and not (out / "supervised").exists()


def test_an_interrupted_cell_resumes_from_its_last_checkpoint(tmp_path, monkeypatch, capsys):
    """A sweep killed mid-cell continues that cell from its last checkpoint (not from step 0) and ends with the
    metrics of an uninterrupted cell; the row says where it resumed."""
    import lightning as L

    import semiland.engine.runner as runner
    from semiland.bench.sweep.cells import run_one
    from semiland.bench.sweep.plan import RunSpec

    path = tmp_path / "cfg.yaml"
    cfg = yaml.safe_load(sweep_config(tmp_path).read_text())
    cfg["train"].update(steps=4, val_every=2)  # a checkpoint at step 2, the run ends at step 4
    path.write_text(yaml.safe_dump(cfg))
    spec = RunSpec("pseudo_label", "one", 0, ["method.name=pseudo_label", "train.seed=0"])
    common = ["data.labeled=[region_0]", "data.unlabeled=[region_2]"]
    whole = run_one(path, spec, common, tmp_path / "whole")

    class Killed(Exception):
        pass

    class KillAfterFirstCheckpoint(L.Callback):
        def on_train_batch_start(self, trainer, task, *args):
            if task.train_step == 2:  # step 2's validation and checkpoint are written
                raise Killed

    make_trainer = runner.make_trainer
    monkeypatch.setattr(runner, "make_trainer", lambda *a: _with(make_trainer(*a), KillAfterFirstCheckpoint()))
    with pytest.raises(Killed):
        run_one(path, spec, common, tmp_path / "cut")
    monkeypatch.setattr(runner, "make_trainer", make_trainer)
    cell = spec.folder(tmp_path / "cut")
    assert (cell / "checkpoints" / "last.ckpt").is_file() and not (cell / "result.json").exists()
    capsys.readouterr()
    resumed = run_one(path, spec, common, tmp_path / "cut")
    assert f"resuming {cell} from step 2" in capsys.readouterr().out
    assert resumed.resumed_from_step == 2 and whole.resumed_from_step is None
    assert resumed.scores == whole.scores and resumed.steps == whole.steps
    # a cell whose last checkpoint cannot be read (corrupt, or from other code) starts again, and says so
    (cell / "result.json").unlink()
    (cell / "checkpoints").mkdir(exist_ok=True)
    (cell / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    again = run_one(path, spec, common, tmp_path / "cut")
    assert "training it again from step 0" in capsys.readouterr().out and again.resumed_from_step is None
    assert again.mIoU == whole.mIoU and resumed.time_unreliable is None
    # killed after its last checkpoint, in its test: the resume only tests, and its time is no cost measure
    import semiland.bench.sweep.cells as cells

    test_run = cells.test_run
    monkeypatch.setattr(cells, "test_run", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    (cell / "result.json").unlink()
    with pytest.raises(Killed):
        run_one(path, spec, common, tmp_path / "cut")
    monkeypatch.setattr(cells, "test_run", test_run)
    last = run_one(path, spec, common, tmp_path / "cut")
    assert last.resumed_from_step == 4 and last.time_unreliable and last.mIoU == whole.mIoU


def _with(trainer, callback):
    trainer.callbacks.insert(0, callback)
    return trainer


def test_unmeasured_figures_show_a_dash_without_a_unit():
    from semiland.bench.sweep.tables import fmt_number

    assert (
        fmt_number(float("nan"), unit="×") == "–"
        and fmt_number(1.5, unit="×") == "1.50×"
        and fmt_number(0.25, pct=True) == "25 %"
    )


def test_a_class_the_threshold_starves_is_named():
    from semiland.selftrain import starved_classes

    stats = {"top_q": 0.0, "coverage": 0.76, "class_kept": {"land": 0.9, "vegetation": 0.05, "road": None}}
    (line,) = starved_classes(stats)
    assert "5 % of the teacher's vegetation" in line and "method.top_q" in line
    assert starved_classes({**stats, "class_kept": {"land": 0.9, "vegetation": 0.5}}) == []
    assert starved_classes({**stats, "top_q": 0.5}) == []  # top_q keeps the same share of every class


def test_sweep_maps_show_every_kept_model_also_with_simulated_sar(tmp_path):
    from PIL import Image

    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(sweep_config(tmp_path)), "--seeds", "0", "-o", str(out), "--no-oracle"]
    args += ["--methods", "supervised,fixmatch,sar=dllr:data.simulate_sar=true"]  # optical and optical + SAR input
    assert main(args) == 0
    html = (out / "summary.html").read_text()
    assert "figures/sweep_maps.png" in html and "no model kept" not in html
    width, height = Image.open(out / "figures" / "sweep_maps.png").size
    assert width > 1.5 * height  # image, truth and three maps side by side, two rows
    (out / "fixmatch" / "default" / "seed0" / "checkpoints" / "best.ckpt").unlink()  # a cell from before models
    assert main([*args, "--summary-only"]) == 0
    assert "(no model kept: fixmatch)" in (out / "summary.html").read_text()


def test_a_claim_is_exclusive_while_held_and_free_after(tmp_path):
    from semiland.io import claim

    lock = tmp_path / "cell" / "seed0.lock"
    with claim(lock) as first, claim(lock) as second:
        assert first and not second
    with claim(lock) as again:
        assert again
    assert not lock.exists()


def test_two_processes_running_one_sweep_share_its_cells(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(sweep_config(tmp_path)), "--seeds", "0,1", "-o", str(out), "--no-oracle"]
    args += ["--methods", "supervised,fixmatch,self_training:method.rounds=1 method.threshold=0.0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "semiland", *args], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    trained = [line.split("] ")[1].split(" —")[0] for o in outputs for line in o.splitlines() if line.startswith("[")]
    cells = [f"{m} / default / seed {s}" for s in (0, 1) for m in ("supervised", "fixmatch", "self_training")]
    assert sorted(trained) == sorted(cells)  # every cell trained once, by one of the two
    assert all(o.count("cells finished") == 1 for o in outputs)
    assert not list(out.rglob("*.lock"))


def test_a_sweep_stops_starting_cells_at_its_stop_time_and_takes_cells_finished_elsewhere(tmp_path, capsys):
    """--stop-at: a machine lent for minutes starts no cell after it. A cell the mirror holds finished (another
    machine's) while this folder holds it unfinished is taken from the mirror, not trained again."""
    path = sweep_config(tmp_path)
    mirror = tmp_path / "kept"
    args = ["bench", "sweep", "--config", str(path), "--seeds", "0", "--no-oracle", "--mirror", str(mirror)]
    assert main([*args, "--methods", "supervised", "-o", str(tmp_path / "a")]) == 0
    row = json.loads((mirror / "supervised" / "default" / "seed0" / "result.json").read_text())
    assert row["device"].startswith("cpu: ")  # every row names where it trained; the summary counts them
    assert f"Cells trained on: {row['device']} (1)" in (mirror / "summary.md").read_text()
    capsys.readouterr()
    assert main([*args, "--methods", "supervised,pseudo_label", "-o", str(tmp_path / "a"), "--stop-at", "1"]) == 0
    assert "--stop-at 1 reached: no new cell started" in capsys.readouterr().out
    assert not (tmp_path / "a" / "pseudo_label").exists()
    # --finish-by: pseudo_label has no finished cell of its own, so it is costed as the longest one (supervised's,
    # under a second here: a finish time even one second ahead could let it start, so the time given is now)
    now = str(time.time())
    assert main([*args, "--methods", "supervised,pseudo_label", "-o", str(tmp_path / "a"), "--finish-by", now]) == 0
    assert "pseudo_label / default / seed 0: not started, --finish-by: ≈ " in capsys.readouterr().out
    assert not (tmp_path / "a" / "pseudo_label" / "default" / "seed0").exists()
    assert not list((tmp_path / "a").rglob("*.lock"))  # its claim released: another process may take it
    # another folder holds the supervised cell unfinished (cut off before its first checkpoint)
    b = tmp_path / "b" / "supervised" / "default" / "seed0"
    b.mkdir(parents=True)
    (b / "config.yaml").write_text("unfinished")
    assert main([*args, "--methods", "supervised", "-o", str(tmp_path / "b")]) == 0
    assert "0 finished cells restored" in (printed := capsys.readouterr().out)  # the folder exists: not restored
    assert f"supervised / default / seed 0: finished in {mirror}, taken from there" in printed
    assert json.loads((b / "result.json").read_text()) == row and not (b / "checkpoints").exists()


def test_cells_restored_by_processes_starting_together_end_whole(tmp_path, monkeypatch):
    """Several processes of one sweep may restore the same cell from the mirror at once: one rename wins, the
    others drop their copies; the cell is whole either way."""
    import shutil

    from semiland.bench.sweep import mirror as sweep_mirror

    kept = tmp_path / "mirror" / "m" / "b" / "seed0"
    kept.mkdir(parents=True)
    (kept / "result.json").write_text("{}")
    target = tmp_path / "out" / "m" / "b" / "seed0"
    real = shutil.copytree

    def racing(src, dst, **kw):  # the other process renames its copy into place while this one copies
        real(src, target)
        return real(src, dst, **kw)

    monkeypatch.setattr(sweep_mirror.shutil, "copytree", racing)
    assert sweep_mirror.restore_cell(kept, target) is False
    assert (target / "result.json").is_file() and [p.name for p in target.parent.iterdir()] == ["seed0"]


def test_confusion_shifts_and_class_shares_name_the_pixels_a_method_moved(tmp_path):
    from semiland.bench.sweep.confusions import class_shares, confusion_shifts, shares_table, shifts_table

    def cell(method, seed, cm, folder="test"):
        where = tmp_path / method / "b" / f"seed{seed}" / folder
        where.mkdir(parents=True)
        (where / "metrics.json").write_text(json.dumps({"confusion_matrix": cm, "classes": ["a", "b", "c"]}))
        return CellRow.from_json({"method": method, "budget": "b", "seed": seed})

    base = [[90, 10, 0], [0, 80, 20], [0, 0, 0]]  # class c absent from this set: its row is NaN, never ranked
    rows = [cell("supervised", s, base) for s in (0, 1)]
    rows += [cell("x", 0, [[90, 10, 0], [0, 40, 60], [0, 0, 0]]), cell("x", 1, [[90, 10, 0], [0, 60, 40], [0, 0, 0]])]
    # a self-training cell keeps its test evaluation under its last round's student
    rows.append(cell("self_training", 0, [[100, 0, 0], [0, 80, 20], [0, 0, 0]], "round2/student/test"))
    cell("self_training", 0, base, "round1/student/test")
    found = {f["method"]: f for f in confusion_shifts(rows, tmp_path, ["test", "unlabeled"], top=2)}
    assert found["x"]["seeds"] == 2 and found["x"]["set"] == "test"  # no `unlabeled` metrics: no row
    assert found["x"]["moves"][0] == ("b", "c", pytest.approx(30.0))  # (40 + 20) / 2 points of b's pixels
    assert len(found["x"]["moves"]) == 1  # nothing else moved; the diagonal (kept pixels) is never a move
    assert found["self_training"]["seeds"] == 1 and found["self_training"]["moves"][0] == ("a", "b", -10.0)
    caption, head, table = shifts_table(list(found.values()))
    assert head[-1] == "true → predicted" and ["b", "x", "test", "2", "b → c +30.0"] in table

    shares = class_shares(rows, tmp_path, ["test", "unlabeled"], ["supervised", "x", "self_training"])
    assert len(shares) == 1 and shares[0]["set"] == "test"  # no `unlabeled` metrics: no block
    assert shares[0]["truth"] == pytest.approx([50.0, 50.0, 0.0])  # the masks: rows of the confusion matrix
    per = {m: (n, xs) for m, n, xs in shares[0]["methods"]}
    assert list(per) == ["supervised", "x", "self_training"]  # the order asked for; no oracle cell, no row
    assert per["supervised"] == (2, pytest.approx([45.0, 45.0, 10.0]))  # the columns: what was predicted
    assert per["x"] == (2, pytest.approx([45.0, 30.0, 25.0]))  # mean of seeds 0 (45/25/30) and 1 (45/35/20)
    assert per["self_training"] == (1, pytest.approx([50.0, 40.0, 10.0]))  # its last round's student
    caption, head, table = shares_table(shares)
    assert head == ["budget", "set", "method", "seeds", "a", "b", "c"]
    assert table[0] == ["b", "test", "truth", "–", "50.0", "50.0", "0.0"] and table[2][2:5] == ["x", "2", "45.0"]


def test_confusion_shifts_pair_a_cell_with_supervised_of_its_own_machine(tmp_path):
    """As the main table: where supervised trained on another CPU and supervised_rerun on the cell's, the cell's
    moved pixels are counted against the re-run (a change of machine alone moves pixels too)."""
    from semiland.bench.sweep.confusions import confusion_shifts, shifts_table

    def cell(method, cm, device):
        where = tmp_path / method / "b" / "seed0" / "test"
        where.mkdir(parents=True)
        (where / "metrics.json").write_text(json.dumps({"confusion_matrix": cm, "classes": ["a", "b"]}))
        flat = {"method": method, "budget": "b", "seed": 0, "device": device}
        return trained(CellRow.from_json(flat), "fixmatch" if method == "x" else "supervised")

    rows = [cell("supervised", [[90, 10], [0, 100]], "old"), cell("supervised_rerun", [[70, 30], [0, 100]], "new")]
    rows.append(cell("x", [[60, 40], [0, 100]], "new"))
    found = {f["method"]: f for f in confusion_shifts(rows, tmp_path, ["test"])}
    assert found["x"]["moves"] == [("a", "b", pytest.approx(10.0))]  # 40 − 30 (the re-run), not 40 − 10
    assert found["x"]["versus"] == "supervised_rerun"
    assert found["supervised_rerun"]["versus"] == "supervised (seed 0 trained on another machine)"
    assert found["supervised_rerun"]["moves"][0][2] == pytest.approx(20.0)  # the machine's own move
    _, _, table = shifts_table(list(found.values()))
    assert ["b", "x", "test", "1 vs supervised_rerun", "a → b +10.0"] in table
    rows[0].device = "new"  # supervised itself on the cell's machine: paired with it
    assert confusion_shifts(rows, tmp_path, ["test"])[-1]["moves"] == [("a", "b", pytest.approx(30.0))]


def test_a_self_training_cell_is_read_from_its_last_student_not_its_retrained_teacher(tmp_path):
    from semiland.bench.sweep.layout import best_val, cell_run

    cell = tmp_path / "self_training" / "b" / "seed0"
    for run, best in (("teacher", 0.9), ("round2/student", 0.4), ("round10/student", 0.5)):  # "teacher" sorts last
        (cell / run / "logs").mkdir(parents=True)
        (cell / run / "logs" / "metrics.csv").write_text(f"step,val/mIoU\n300,{best}\n")
    assert cell_run(cell) == cell / "round10" / "student"  # rounds by number, not by name
    assert best_val(cell) == pytest.approx(0.5)
    plain = tmp_path / "fixmatch" / "b" / "seed0"
    plain.mkdir(parents=True)
    assert cell_run(plain) == plain


def test_what_is_left_is_costed_by_the_label_or_else_its_registered_method(tmp_path):
    from semiland.bench.sweep.plan import parse_methods, plan
    from semiland.bench.sweep.schedule import remaining

    # the cells as a sweep plans them: an ablation row's overrides name its label, then its registered method
    specs = {
        (s.method, s.seed): s
        for s in plan(
            parse_methods("fixmatch,fixmatch_flex=fixmatch:method.flex=true,vae"), {"2img": []}, [0, 1, 2], False
        )
    }
    assert specs["fixmatch_flex", 0].registered == "fixmatch" and specs["vae", 0].registered == "vae"

    def finish(method, seed, seconds):
        folder = specs[method, seed].folder(tmp_path)
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({**cell_id(specs[method, seed]), "fit_cpu_seconds": seconds}))

    finish("fixmatch", 0, 3600)
    finish("fixmatch", 1, 7200)
    todo = [specs[k] for k in [("fixmatch", 2), ("fixmatch_flex", 0), ("vae", 0)]]
    # fixmatch's mean (1.5 h) for its own seed and for the ablation row with no finished cell; vae unknown
    assert remaining(todo, tmp_path) == (
        "left: 3 cells, ≈ 3.0 h of one process for 2 of them (fixmatch_flex as fixmatch)"
        " (no finished cell yet to cost: vae)"
    )
    finish("fixmatch_flex", 1, 1800)  # once the row has cells of its own, they cost it
    assert remaining(todo, tmp_path).startswith("left: 3 cells, ≈ 2.0 h of one process for 2 of them (no finished")


def test_finish_by_starts_only_the_cells_expected_to_end_in_time(tmp_path):
    """--finish-by plans with wall time (a cell's `cell_seconds`, else its fit's) of the finished CPU cells: the
    label's own, else its method's, else the longest of any label; GPU cells and paused ones say nothing."""
    from semiland.bench.sweep.plan import parse_methods, plan
    from semiland.bench.sweep.schedule import MARGIN, fits_before

    methods = parse_methods("supervised,fixmatch,fixmatch_flex=fixmatch:method.flex=true,vae")
    specs = {(s.method, s.seed): s for s in plan(methods, {"2img": []}, [0, 1], False)}

    def finish(method, seed, **row):
        folder = specs[method, seed].folder(tmp_path)
        folder.mkdir(parents=True)
        written = {**cell_id(specs[method, seed]), "fit_cpu_seconds": 1.0, "device": "cpu: x", **row}
        (folder / "result.json").write_text(json.dumps(written))

    plan_ = list(specs.values())
    assert fits_before(specs["vae", 0], tmp_path, time.time(), plan_)[0]  # nothing finished: nothing to plan with
    finish("supervised", 0, fit_seconds=600.0)
    finish("fixmatch", 0, fit_seconds=900.0, cell_seconds=1200.0)  # with its --also-on sets
    finish("fixmatch", 1, fit_seconds=10.0, device="cuda: H200")  # not a CPU cell's time
    finish("supervised", 1, fit_seconds=10.0, time_unreliable="paused")
    now = time.time()
    for label, need in [("fixmatch", 1200), ("fixmatch_flex", 1200), ("supervised", 600), ("vae", 1200)]:
        spec = specs[label, 1]
        assert fits_before(spec, tmp_path, now + MARGIN * need + 5, plan_)[0], label
        ok, why = fits_before(spec, tmp_path, now + MARGIN * need - 5, plan_)
        assert not ok and why.startswith(f"≈ {need // 60} min by "), (label, why)
    assert "the longest finished cell" in fits_before(specs["vae", 1], tmp_path, now, plan_)[1]


def test_finish_by_costs_a_new_row_by_its_kin_and_an_interrupted_cell_by_what_is_left(tmp_path):
    """A label with no finished cell borrows the finished cells of the plan's other labels of its method (the
    six multitask rows); a cell cut off mid-way needs only the share its last checkpoint lacks."""
    import torch

    from semiland.bench.sweep.plan import parse_methods, plan
    from semiland.bench.sweep.schedule import MARGIN, fits_before, remaining
    from semiland.engine.checkpoint import FORMAT

    methods = parse_methods(
        "supervised,unet_l1=multitask:method.network=berunda_early,wnet_l1=multitask:method.network=wnet"
    )
    specs = {(s.method, s.seed): s for s in plan(methods, {"2img": []}, [0, 1], False)}
    plan_ = list(specs.values())
    for label, seconds in [("supervised", 3000.0), ("unet_l1", 2400.0)]:
        folder = specs[label, 0].folder(tmp_path)
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(
            json.dumps({**cell_id(specs[label, 0]), "fit_cpu_seconds": 1.0, "device": "cpu: x", "fit_seconds": seconds})
        )
    now = time.time()
    ok, why = fits_before(specs["wnet_l1", 0], tmp_path, now + MARGIN * 2400 - 5, plan_)
    assert not ok and why.startswith("≈ 40 min by multitask's finished cells"), (
        why
    )  # not the longest cell (supervised's 50)
    assert fits_before(specs["wnet_l1", 0], tmp_path, now + MARGIN * 2400 + 5, plan_)[0]
    # the progress line costs what is left from a cell on by the whole plan, as --finish-by: the plan's last cell
    # (wnet_l1, seed 1) borrows from unet_l1, which only comes before it
    assert remaining(plan_, tmp_path, plan_.index(specs["wnet_l1", 1])).endswith("(wnet_l1 as multitask)")

    cut = specs["unet_l1", 1].folder(tmp_path)  # three quarters trained when the last session ended
    (cut / "checkpoints").mkdir(parents=True)
    (cut / "config.yaml").write_text("train:\n  steps: 1800\n")
    torch.save(
        {"semiland": {"format": FORMAT, "train_step": 1350, "config": {}, "classes": {}, "method": "multitask",
                      "in_channels": 3}, "state_dict": {}},
        cut / "checkpoints" / "last.ckpt",
    )  # fmt: skip
    ok, why = fits_before(specs["unet_l1", 1], tmp_path, now + MARGIN * 600 + 5, plan_)
    assert ok and "75 % done" in why, why
    assert not fits_before(specs["unet_l1", 1], tmp_path, now + MARGIN * 600 - 5, plan_)[0]
    (cut / "checkpoints" / "last.ckpt").write_bytes(b"truncated")  # unreadable: trained again from step 0
    assert not fits_before(specs["unet_l1", 1], tmp_path, now + MARGIN * 2400 - 5, plan_)[0]


def test_the_stability_table_says_which_alarms_fired_and_where_the_watched_values_ended(tmp_path):
    """Issue #6: how stable the generative cells were, read from each cell's warnings.json and log."""
    from semiland.bench.sweep.stability import TAIL, stability, stability_table

    def cell(label, method, seed, fired, d_accuracy):
        folder = tmp_path / label / "b" / f"seed{seed}"
        (folder / "logs").mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump({"method": {"name": method}}))
        if fired is not None:
            (folder / "warnings.json").write_text(json.dumps([{"step": fired, "key": "d_accuracy", "message": "D wins: advice"}]))  # fmt: skip
        log = "step,train/d_accuracy,train/loss\n" + "".join(f"{s},{d_accuracy(s)},1.0\n" for s in range(9, 1000, 10))
        (folder / "logs" / "metrics.csv").write_text(log)
        return CellRow.from_json({"method": label, "budget": "b", "seed": seed})

    rows = [
        cell("adv", "adversarial", 0, 58, lambda s: 1.0 if s > 999 - TAIL else 0.5),  # fired, and stayed won
        cell("adv", "adversarial", 1, None, lambda s: 0.5),
        cell("fixmatch", "fixmatch", 0, None, lambda s: 0.5),  # no alarms to watch: no row
    ]
    found = stability(rows, tmp_path)
    assert [f["method"] for f in found] == ["adv"]
    assert found[0]["alarms"] == {"D wins: advice": {0: 58}}
    assert found[0]["tails"]["d_accuracy"] == {0: pytest.approx(1.0), 1: pytest.approx(0.5)}  # last TAIL steps only
    assert found[0]["tails"]["loss_adv"] == {0: None, 1: None}  # watched, never logged
    _, head, table = stability_table(found)
    assert table == [["b", "adv", "2", "D wins: 1/2 seeds, first at step 58 (seed 0)",
                      "d_accuracy 1 / 0.5; loss_adv – / –"]]  # fmt: skip


def test_head_scores_are_kept_apart_from_the_sets_and_the_methods_own_classes():
    from semiland.bench.sweep.cells import head_scores
    from semiland.bench.sweep.stats import extra_sets

    metrics = {"mIoU": 0.4, "heads": {"sar": {"mIoU": 0.3, "per_class": {"water": {"IoU": 0.9}}}}}
    flat = {"method": "dllr", "budget": "b", "seed": 0, "mIoU": 0.4, "IoU/water": 0.8, "unlabeled:mIoU": 0.5}
    row = CellRow.from_json(flat).with_scores(head_scores(metrics) | head_scores(metrics, "unlabeled"))
    written = row.to_json()  # result.json's flat keys, read back the same
    assert written["alone/sar/mIoU"] == 0.3 and written["unlabeled:alone/sar/IoU/water"] == 0.9
    assert CellRow.from_json(written) == row and not row.notes
    assert extra_sets([row]) == ["unlabeled"]  # a head is not an evaluation set
    assert row.score_names() == [Score.iou("water")]  # the method's own classes, not the head's
    assert head_scores({"mIoU": 0.4}) == {}  # methods without heads add nothing
    assert Score.parse("val_mIoU") == Score("val") and Score.parse("fit_seconds") is None


def test_the_heads_table_compares_each_head_with_its_method_and_supervised_seed_by_seed():
    from semiland.bench.sweep.cells import head_scores
    from semiland.bench.sweep.heads import heads_table

    def cell(method, seed, miou, heads=None):
        metrics = {"heads": {h: {"mIoU": v, "per_class": {"water": {"IoU": v / 2}}} for h, v in (heads or {}).items()}}
        flat = {
            "method": method,
            "budget": "2img",
            "seed": seed,
            "mIoU": miou,
            "IoU/water": 0.5,
            "unlabeled:mIoU": miou,
        }
        return CellRow.from_json(flat).with_scores(head_scores(metrics) | head_scores(metrics, "unlabeled"))

    rows = [cell("supervised", 0, 0.40), cell("supervised", 1, 0.30),
            cell("dllr", 0, 0.38, {"sar": 0.42}), cell("dllr", 1, 0.36, {"sar": 0.37})]  # fmt: skip
    caption, head, table = heads_table(rows, ["supervised", "dllr"])
    assert head[-1] == "water" and [r[:4] for r in table] == [
        ["2img", "dllr", "sar", "test"],
        ["2img", "dllr", "sar", "unlabeled"],
    ]
    test = dict(zip(head, table[0]))
    assert test["mIoU (seeds)"].startswith("39.50 ± ") and test["mIoU (seeds)"].endswith("(2)")
    assert test["Δ vs the method"].startswith("+2.50 ± 2.12 (2/2)") and test["Δ vs supervised"].startswith(
        "+4.50"
    )  # (4+1)/2, (2+7)/2
    assert test["water"] == "19.75"
    assert heads_table([cell("supervised", 0, 0.4)], ["supervised"]) is None


def test_a_cell_that_kept_no_pseudo_label_is_named_in_the_stability_table(tmp_path):
    """Issue #39: a run whose threshold kept nothing is the supervised run; the summary must say so."""
    from semiland.bench.sweep.stability import stability, stability_table
    from semiland.engine.task import NOTHING_KEPT

    folder = tmp_path / "fixmatch" / "b" / "seed0"
    (folder / "logs").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"method": {"name": "fixmatch"}}))
    (folder / "warnings.json").write_text(json.dumps([{"step": 699, "key": "mask_ratio", "message": NOTHING_KEPT}]))
    (folder / "logs" / "metrics.csv").write_text("step,train/loss\n9,1.0\n")
    found = stability([CellRow.from_json({"method": "fixmatch", "budget": "b", "seed": 0})], tmp_path)
    _, _, table = stability_table(found)
    assert table[0][1] == "fixmatch" and "no pseudo-label was kept in the whole run" in table[0][3]


def test_folds_make_every_region_the_test_region_once(tmp_path, capsys):
    """Issue #40's protocol: leave-one-tile-out budgets from one line, each method paired with supervised of its
    fold and seed, pooled over folds in the summary."""
    from semiland.bench.folds import fold_budgets, parse_folds

    budgets = fold_budgets(["a", "b", "c", "d"], parse_folds("region:2,random:3"))
    assert list(budgets)[:4] == ["region2-on-a", "region2-on-b", "region2-on-c", "region2-on-d"]
    assert budgets["region2-on-d"][1:5] == ["data.test=[d]", "data.val=[a]", "data.labeled=[b]", "data.unlabeled=rest"]
    assert "data.labeled=[c,d]" in budgets["random3-on-a"] and "data.labeled_count=3" in budgets["random3-on-a"]
    for bad in ("region", "region:0", "grid:2", ""):
        with pytest.raises(SemilandError):
            parse_folds(bad)
    with pytest.raises(SemilandError, match="at least 3 regions"):
        fold_budgets(["a", "b"], [("region", 1)])
    dev = fold_budgets(["a", "b", "c", "d"], parse_folds("region:2,random:3"), tests=["a", "c"])  # --fold-tests
    assert list(dev) == ["region2-on-a", "region2-on-c", "random3-on-a", "random3-on-c"]
    assert dev["region2-on-c"] == budgets["region2-on-c"]  # the same cells as in the full protocol
    with pytest.raises(SemilandError, match="--fold-tests: no region 'e'; the regions are a, b, c, d"):
        fold_budgets(["a", "b", "c", "d"], [("region", 1)], tests=["e"])

    path = sweep_config(tmp_path)
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(path), "--methods", "supervised,pseudo_label", "--seeds", "0",
            "--folds", "region:1", "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    rows = json.loads((out / "results.json").read_text())["runs"]
    tests = {r["budget"]: r for r in rows if r["method"] == "supervised"}
    assert sorted(tests) == [f"region1-on-region_{i}" for i in range(5)]  # 5 folds: every region tested once
    assert all(r["labeled_images"] == 1 for r in tests.values())
    summary = (out / "summary.md").read_text()
    assert "Leave-one-tile-out: test mIoU minus supervised" in summary and "| region1 | pseudo_label | 5 |" in summary
    assert "Leave-one-tile-out: validation tiles' mIoU (where methods and settings are chosen)" in summary
    assert "| region1 | oracle | 5 |" in summary
    assert "Leave-one-tile-out per class" in summary and "| region1 | pseudo_label | water |" in summary
    assert main([*args[:-2], "--fold-tests", "region_1", "--summary-only", "-o", str(out)]) == 0  # a dev subset
    assert {r["budget"] for r in json.loads((out / "results.json").read_text())["runs"]} == {"region1-on-region_1"}
    assert main([*args[:-4], "--fold-tests", "region_1", "-o", str(out)]) == 2  # without --folds: one line
    assert "--fold-tests chooses among the folds of --folds" in capsys.readouterr().err
    assert main([*args[:-2], "--fold-tests", ",", "--summary-only", "-o", str(out)]) == 2  # not "every fold"
    assert "--fold-tests names no region" in capsys.readouterr().err


def test_no_baseline_skips_the_plain_supervised_cells_and_pairs_with_the_named_one(tmp_path, capsys):
    """--no-baseline: the methods name their own supervised run (here of the same steps), the plain
    `supervised` cells are not trained, and the summary pairs the method with the named one."""
    path = sweep_config(tmp_path)
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(path), "--seeds", "0", "--folds", "region:1", "--fold-tests",
            "region_1", "--no-baseline", "--no-oracle", "-o", str(out), "--methods"]  # fmt: skip
    assert main([*args, "sup2=supervised,pseudo_label"]) == 0
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert sorted(r["method"] for r in rows) == ["pseudo_label", "sup2"] and not (out / "supervised").exists()
    summary = (out / "summary.md").read_text()
    assert "| region1 | pseudo_label | 1 |" in summary  # paired with sup2
    main_row = next(line for line in summary.splitlines() if line.startswith("| region1-on-region_1 | pseudo_label"))
    assert "vs sup2" in main_row and main_row.split("|")[-2].strip().endswith("×")  # Δ and time against it
    for methods, why in (("supervised,pseudo_label", "names supervised"), ("s=self_training", "self_training")):
        assert main([*args, methods]) == 2 and why in capsys.readouterr().err


def test_the_fold_table_pools_pairs_and_the_gap_recovered():
    from semiland.bench.folds import fold_class_table, fold_table, pooled

    rows = []
    for fold, (sup, own, ora) in enumerate([(0.40, 0.45, 0.60), (0.30, 0.31, 0.50), (0.50, 0.53, 0.60)]):
        for method, v in (("supervised", sup), ("fixmatch", own), ("oracle", ora)):
            rows.append(
                CellRow.from_json({"method": method, "budget": f"random7-on-tile_{fold}", "seed": 0, "mIoU": v})
            )
    rows.append(CellRow.from_json({"method": "supervised", "budget": "plain", "seed": 0, "mIoU": 0.1}))  # no fold
    _, head, table = fold_table(rows, ["supervised", "fixmatch"])
    fix = dict(zip(head, table[0], strict=True))
    # Δ = +5, +1, +3 → mean 3.00, sd 2, 95 % CI ± 4.303 · 2 / √3 = 4.97; gap mean (20 + 20 + 10) / 3 = 16.67
    assert fix["Δ mean"] == "+3.00" and fix["95 % CI"] == "± 4.97" and fix["won"] == "3/3"
    assert fix["gap"] == "16.67" and fix["recovered"] == "18 %"
    assert pooled([1.0])["n"] == 1 and math.isnan(pooled([1.0])["p"])
    for r in rows:
        r.scores[Score.iou("water")] = r.mIoU / 2  # half the differences and gaps: the same share recovered
    _, _, per_class = fold_class_table(rows, ["supervised", "fixmatch"])
    assert per_class == [["random7", "fixmatch", "water", "3", "+1.50", "± 2.48", "3/3", fix["p"], "8.33", "18 %"]]
    assert fix["folds paired"] == "3"
    for r in rows:
        r.scores[Score("val")] = 1 - r.mIoU  # the validation pairs are pooled on their own score: Δ = −5, −1, −3
    caption, _, val = fold_table(rows, ["supervised", "fixmatch"], Score("val"))
    assert "validation tiles" in caption and dict(zip(head, val[0], strict=True))["Δ mean"] == "-3.00"


def test_the_fold_table_pairs_with_supervised_of_the_same_steps_and_machine_whatever_its_label():
    """Issue #40's rule: a method is paired with supervised of the same fold, seed, step count and machine (a
    label such as `sup_long_xeon`), and a fold's oracle serves every budget of that fold."""
    from semiland.bench.folds import fold_oracle, fold_table
    from semiland.bench.sweep.stats import baseline

    amd, xeon = "cpu: AMD EPYC (native bf16)", "cpu: Intel Xeon (no native bf16)"

    def row(label, budget, miou, steps, device, registered="supervised", oracle=False):
        flat = {"method": label, "budget": budget, "seed": 0, "mIoU": miou, "steps": steps, "device": device}
        return trained(CellRow.from_json(flat), registered, oracle)

    rows = []
    for fold in ("tile_1", "tile_2", "tile_3"):
        reg, rnd = f"region2-on-{fold}", f"random7-on-{fold}"
        rows += [row("supervised", reg, 0.30, 700, amd), row("sup_long", reg, 0.40, 1400, amd),
                 row("sup_long_xeon", reg, 0.42, 1400, xeon), row("fm_xeon", reg, 0.45, 1400, xeon, "fixmatch"),
                 row("oracle_long", reg, 0.60, 1400, amd, oracle=True),  # trained once per fold: in region2
                 row("sup_long_xeon", rnd, 0.50, 1400, xeon), row("fm_xeon", rnd, 0.52, 1400, xeon, "fixmatch")]  # fmt: skip
    fm = rows[3]
    assert baseline(rows, fm).method == "sup_long_xeon"  # not `supervised` (700 steps), not sup_long (AMD)
    assert fold_oracle(rows, fm).method == "oracle_long"  # none on the Xeon: the same steps elsewhere
    assert fold_oracle(rows, rows[-1]).budget == "region2-on-tile_3"  # its fold's, from the region budget
    gpu = row("x", "region2-on-tile_1", 0.5, 1400, "cuda: H100", "fixmatch")
    assert baseline(rows, gpu).method == "sup_long" and baseline(rows, gpu, strict=True) is None  # the protocol
    _, head, table = fold_table(rows, ["supervised", "sup_long", "sup_long_xeon", "fm_xeon", "oracle_long"])
    by = {(r[0], r[1]): dict(zip(head, r, strict=True)) for r in table}
    assert set(by) == {("region2", "fm_xeon"), ("region2", "oracle_long"), ("random7", "fm_xeon")}  # no baselines
    assert by["region2", "fm_xeon"]["Δ mean"] == "+3.00" and by["region2", "fm_xeon"]["gap"] == "18.00"
    assert by["random7", "fm_xeon"]["Δ mean"] == "+2.00" and by["random7", "fm_xeon"]["gap"] == "10.00"
    assert by["region2", "oracle_long"]["Δ mean"] == "+20.00"  # against sup_long: the same steps and machine


def test_a_recipe_is_read_from_the_cells_config_and_survives_settings_added_since(tmp_path):
    """Two labels trained the same way match whatever their machine, steps or paths; a setting a cell's config
    predates takes the value the code had then (`BEFORE`), so an old cell matches its re-run under new code."""
    from semiland.bench.sweep.layout import cell_recipe
    from semiland.config import Config

    def cell(name, method, **data):
        cfg = Config().to_dict()
        cfg["method"], cfg["data"] = method, {**cfg["data"], **data}
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(cfg))
        return cell_recipe(tmp_path / name)

    old = cell("old", {"name": "fixmatch", "threshold": 0.95}, split_file="/a/split.json")  # before `align` existed
    rerun = cell("rerun", {"name": "fixmatch", "threshold": 0.95, "align": False, "teacher": "self", "top_q": 0.0,
                           "burnin": 0.0}, split_file="/b/split.json")  # fmt: skip
    assert old == rerun and old.method == "fixmatch" and not old.oracle
    assert cell("aligned", {"name": "fixmatch", "threshold": 0.95, "align": True}) != old
    assert cell("sar", {"name": "fixmatch", "threshold": 0.95}, simulate_sar=True) != old  # another input
    assert cell("oracle", {"name": "supervised"}, oracle=True).oracle
    assert cell_recipe(tmp_path / "missing") is None


def test_the_lambda_curve_pools_seeds_per_registered_method_and_budget(tmp_path):
    """Variants of a method that differ in method.lambda_u (named any way) make one line against λ; a method
    with a single λ, supervised and the oracle make none."""
    from semiland.bench.sweep.curves import lambda_curve, write_curves

    rows = []
    for label, name, lam in [("fm_l05", "fixmatch", 0.5), ("fm", "fixmatch", 1.0), ("fm2", "fixmatch", 2.0),
                             ("cps", "cps", 1.0), ("supervised", "supervised", None)]:  # fmt: skip
        for seed in (0, 1):
            cell = tmp_path / label / "b" / f"seed{seed}"
            cell.mkdir(parents=True)
            method = {"name": name, **({"lambda_u": lam} if lam is not None else {})}
            (cell / "config.yaml").write_text(yaml.safe_dump({"method": method}))
            rows.append(CellRow.from_json({"method": label, "budget": "b", "seed": seed, "labeled_images": 2,
                                           "mIoU": 0.4 + 0.01 * seed + 0.1 * (lam or 0)}))  # fmt: skip
    methods = ["supervised", "fm_l05", "fm", "fm2", "cps"]
    points = lambda_curve(rows, methods, tmp_path)
    assert [(p["line"], p["x"], p["n"]) for p in points] == [("fixmatch", x, 2) for x in (0.5, 1.0, 2.0)]
    assert points[0]["mean"] == pytest.approx(45.5) and points[0]["std"] == pytest.approx(math.sqrt(0.5))
    figures = write_curves(rows, methods, tmp_path)
    assert [f for _, f in figures] == ["figures/curve_lambda.png"]  # one labeled count: no count curve
    assert (tmp_path / "figures/curve_lambda.csv").read_text().count("\n") == 4
