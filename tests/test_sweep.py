import json

import yaml

from semiland.cli import main

from .conftest import tiny_config


def test_sweep_runs_summarises_and_resumes(tmp_path, capsys):
    from semiland.data.synthetic import generate

    root = generate(tmp_path / "d", regions=5, images=2, size=64, bands=3)
    cfg = tiny_config(
        root,
        data={"synthetic_regions": 5, "val": ["region_3"], "test": ["region_4"]},
        train={"steps": 2, "val_every": 2},
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    out = tmp_path / "sweep"
    args = [
        "bench",
        "sweep",
        "--config",
        str(path),
        "--methods",
        "fixmatch",
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
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert len(rows) == 2 * 2 * 3  # budgets × seeds × (supervised, fixmatch, oracle)
    assert {r["labeled_images"] for r in rows if r["budget"] == "one" and r["method"] == "supervised"} == {2}
    assert {r["labeled_images"] for r in rows if r["method"] == "oracle"} == {4, 6}  # labeled + unlabeled tiles
    summary = (out / "summary.md").read_text()
    assert "| one | fixmatch | 2 |" in summary and "oracle" in summary and (out / "summary.html").is_file()
    assert not list(out.rglob("*.ckpt"))  # sweeps keep metrics, not checkpoints
    # resumable: a second call redoes nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    capsys.readouterr()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == stamps
