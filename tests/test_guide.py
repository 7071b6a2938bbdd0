"""Every command in docs/guide.md runs (issue #9: the guide cannot rot).

The `bash` blocks of the guide run in order, in one working folder holding `mydata/` (a generated dataset in
the folder layout the guide describes), `mypairs/` (the same scenes as optical + SAR pairs in the paired
layout) and `configs/` (the repository's), through the real `semiland`
entry point. Training commands get SHORTEN appended (later overrides win): a few steps of a tiny network
on small crops; nothing else about the commands is changed.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import rasterio

from semiland.cli import main
from semiland.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "guide.md"
SHORTEN = ["train.steps=2", "train.val_every=2", "train.progress=false", "model.arch=tiny_unet", "model.width=8",
           "data.crop_size=32", "data.batch_size=2", "data.unlabeled_batch_size=2", "data.eval_tile=64"]  # fmt: skip
TRAINING = ("fit --config", "bench sweep", "self-train")


def guide_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_guide_shows_commands():
    commands = guide_commands()
    assert len(commands) >= 10 and all(c.startswith("semiland ") for c in commands), commands


def paired_copy(folder: Path, out: Path) -> None:
    """`folder`'s scenes in the paired layout: optical = its images, SAR = two bands simulated from each (dB,
    float32, the same grid), masks = its masks; a NaN patch in one SAR raster, as real chips have."""
    from semiland.data.paired import simulated_sar
    from semiland.data.raster import read_image

    out.mkdir(parents=True)
    shutil.copy(folder / "classes.csv", out / "classes.csv")
    for region in sorted(p for p in folder.iterdir() if p.is_dir()):
        shutil.copytree(region / "images", out / region.name / "optical")
        shutil.copytree(region / "masks", out / region.name / "masks")
        (out / region.name / "sar").mkdir()
        for image in sorted((region / "images").glob("*.tif")):
            sar = simulated_sar(read_image(image), image.name)
            data = sar.data.copy()
            if image.name == "scene_000.tif":
                data[:, :4, :4] = np.nan
            profile = {**sar.profile, "driver": "GTiff", "count": data.shape[0], "dtype": "float32", "nodata": None}
            with rasterio.open(out / region.name / "sar" / image.name, "w", **profile) as dst:
                dst.write(data)


def test_every_guide_command_runs(tmp_path, monkeypatch):
    generate(tmp_path / "mydata", regions=4, images=2, size=64, bands=3)
    paired_copy(tmp_path / "mydata", tmp_path / "mypairs")
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    for command in guide_commands():
        argv = shlex.split(command)[1:]
        if any(" ".join(argv).startswith(t) for t in TRAINING):
            argv += SHORTEN
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = stop.code
        assert code == 0, f"`{command}` exited {code}:\n{err.getvalue()[-2000:]}"
    # what the guide promises the commands leave behind
    assert (tmp_path / "runs" / "first" / "report.html").is_file()
    assert (tmp_path / "analysis" / "report.html").is_file()
    assert (tmp_path / "advice" / "suggested_split.json").is_file()
    assert sorted(p.name for p in (tmp_path / "maps").glob("*.tif")) == [
        "scene_000_classes.tif",
        "scene_001_classes.tif",
    ]
    assert (tmp_path / "maps-extra" / "scene_000_entropy.tif").is_file()
    assert (tmp_path / "maps-extra" / "scene_000_classes.tif.aux.xml").is_file()  # the class names for GIS
    assert (tmp_path / "runs" / "sweep" / "summary.md").is_file()
    assert sorted(p.name for p in (tmp_path / "maps-sar").glob("*.tif")) == [
        "scene_000_classes.tif",
        "scene_001_classes.tif",
    ]
    assert sorted(p.name for p in (tmp_path / "maps-sar-branch").glob("*.tif")) == [
        "scene_000_classes.tif",
        "scene_001_classes.tif",
    ]
    report = (tmp_path / "runs" / "dllr" / "report.html").read_text()
    assert "figures/method_signals.png" in report and "sar alone" in report  # DLLR's signals and each branch alone
    assert set(json.loads((tmp_path / "runs" / "dllr" / "test" / "metrics.json").read_text())["heads"]) == {
        "optical",
        "sar",
    }
    shutil.rmtree(tmp_path / "runs")


def test_the_guides_python_runs(tmp_path, monkeypatch):
    """The guide's "From Python" block, executed as written in a folder holding `mydata/` and `configs/`;
    training is shortened as for the commands (SHORTEN appended to the overrides)."""
    import semiland.api

    generate(tmp_path / "mydata", regions=4, images=2, size=64, bands=3)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    load_config = semiland.api.load_config
    monkeypatch.setattr(semiland.api, "load_config", lambda path, overrides: load_config(path, [*overrides, *SHORTEN]))
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2  # the API, then TorchGeo datasets as a source (one scope, as in a notebook)
    scope: dict = {}
    with redirect_stdout(io.StringIO()):
        for block in blocks:
            exec(compile(block, "guide.md", "exec"), scope)  # noqa: S102 - the repository's own guide
    assert scope["classes"].shape == (64, 64) and scope["probs"].shape == (5, 64, 64)
    assert (tmp_path / "runs" / "python" / "report.html").is_file() and scope[
        "run"
    ].result.task.method.name == "fixmatch"
    assert len(list((tmp_path / "mydata-torchgeo" / "extra" / "images").glob("*.tif"))) == 8  # 2 scenes × 4 tiles
    assert (tmp_path / "mydata-torchgeo" / "classes.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "maps-python").glob("*.tif")) == [
        "scene_000_classes.tif",
        "scene_001_classes.tif",
    ]


DOC_PAGES = [REPO / "README.md", *sorted(GUIDE.parent.glob("*.md"))]
# (page, target, anchor) of every relative link to a Markdown page or a section: "x.md", "x.md#a", "#a"
DOC_LINKS = [
    (page, target, anchor)
    for page in DOC_PAGES
    for target, anchor in re.findall(r"\]\(((?!https?:)[^)#]*?\.md|)(?:#([^)]+))?\)", page.read_text(encoding="utf-8"))
    if target or anchor
]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize(("page", "target", "anchor"), DOC_LINKS, ids=[f"{p.name}->{t}#{a}" for p, t, a in DOC_LINKS])
def test_doc_links_name_a_page_and_heading(page, target, anchor):
    """Links between the docs (benchmarks.md#…, guide.md, #…) keep working when a page is split or a heading
    renamed: the test says which link broke."""
    linked = (page.parent / target) if target else page
    assert linked.is_file(), f"{page.name}: {target} does not exist"
    if anchor:
        headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), flags=re.M)
        assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}#{anchor} names no heading"
