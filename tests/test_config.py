import dataclasses

import pytest

from semiland.config import parse_overrides
from semiland.engine.run_config import config_from_dict, load_config
from semiland.errors import SemilandError

from .conftest import REPO


def test_shipped_configs_are_complete_and_valid():
    import yaml

    for path in sorted((REPO / "configs").rglob("*.yaml")):
        cfg = load_config(path)  # valid, and no key written twice (the loader refuses that: test_a_key_written_twice_…)
        assert cfg.method.name
        raw = yaml.safe_load(path.read_text())  # complete: every key of every section is written in the file
        for section, values in cfg.to_dict().items():
            assert set(values) <= set(raw[section]), f"{path}: {section} lacks {set(values) - set(raw[section])}"


def test_unknown_key_suggests_closest(tmp_path):
    with pytest.raises(SemilandError, match="did you mean 'crop_size'"):
        load_config(None, ["data.crop_sise=64"])
    with pytest.raises(SemilandError, match="unknown config section 'trian'.*'train'"):
        load_config(None, ["trian.steps=3"])


def test_wrong_type_and_method_keys():
    with pytest.raises(SemilandError, match="train.steps' must be int"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(SemilandError, match="unknown method 'fixmatchh'"):
        load_config(None, ["method.name=fixmatchh"])
    with pytest.raises(SemilandError, match="unknown config key 'method.tau'"):
        load_config(None, ["method.tau=0.9"])


def test_overrides_are_yaml_typed():
    assert parse_overrides(["data.labeled=[tile_1, tile_2]", "optim.lr=1e-3", "data.oracle=true"]) == {
        "data": {"labeled": ["tile_1", "tile_2"], "oracle": True},
        "optim": {"lr": "1e-3"},
    }
    cfg = load_config(None, ["optim.lr=1", "train.devices=2"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == 1e-3  # YAML 1.1 would keep "1e-3" a string
    with pytest.raises(SemilandError, match="optim.lr' must be float"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(SemilandError, match="section.key=value"):
        parse_overrides(["steps=3"])


def test_bad_yaml_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(SemilandError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(SemilandError, match="not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.eval_overlap=1", "'data.eval_overlap' must be in [0, 1)"),
        ("model.width=0", "'model.width' must be in [1, 1024]"),
        ("optim.lr=.nan", "'optim.lr' must be in (0, 10]"),
        ("data.crop_size=1000000", "'data.crop_size' must be in [8, 16384]"),
        ("optim.betas=[0.9,1.5]", "'optim.betas' must be in [0, 1)"),
        ("train.seed=-1", "'train.seed' must be in [0,"),
    ],
)
def test_numbers_out_of_range_are_one_line(override, message):
    with pytest.raises(SemilandError) as err:
        load_config(None, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_method_fields_have_ranges_too():
    with pytest.raises(SemilandError, match=r"'method.threshold' must be in \[0, 1\], got 2.0"):
        load_config(None, ["method.name=fixmatch", "method.threshold=2"])
    with pytest.raises(SemilandError, match="'method.lambda_max' must be in"):  # undeclared: finite and >= 0
        load_config(None, ["method.name=s4net", "method.lambda_max=-1"])


def test_a_section_that_is_not_a_mapping_is_one_line():
    for raw in ({"data": "dubai"}, {"method": ["fixmatch"]}, {"train": 3}):
        with pytest.raises(SemilandError, match="must be a mapping"):
            config_from_dict(raw)


def test_error_lines_escape_line_breaks_in_user_text():
    from semiland.errors import one_line

    assert one_line("key 'a\x85b\nc' bad") == "key 'a\\x85b\\nc' bad"


def test_switching_method_drops_the_files_own_method_settings():
    """`method.name=X` on a config written for method Y: Y's keys would be unknown to X; X starts from its
    defaults (plus method.* overrides). The same name keeps the file's settings."""
    path = REPO / "configs" / "sen1floods11" / "smoke.yaml"  # a dllr config with every dllr key
    assert dataclasses.asdict(load_config(path, ["method.name=supervised"]).method) == {"name": "supervised"}
    kept = load_config(path, ["method.name=dllr", "method.masking=false"]).method
    assert kept.masking is False and kept.keep_threshold == load_config(path).method.keep_threshold
    assert load_config(path, ["method.name=fixmatch", "method.threshold=0.8"]).method.threshold == 0.8


def test_a_key_written_twice_is_refused_in_one_line(tmp_path):
    """YAML keeps the last of two equal keys silently; semiland says where they are instead."""
    path = tmp_path / "twice.yaml"
    path.write_text("data:\n  crop_size: 64\nmodel:\n  width: 8\ndata:\n  batch_size: 2\n")
    with pytest.raises(SemilandError, match=r"is not valid YAML: the key 'data' is written twice \(lines 1 and 5\)"):
        load_config(path)
    path.write_text("data:\n  crop_size: 64\n  crop_size: 32\n")
    with pytest.raises(SemilandError, match="'crop_size' is written twice"):
        load_config(path)


def test_a_shipped_config_by_name_from_any_folder(tmp_path, monkeypatch):
    from semiland.errors import SemilandError

    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert load_config("dubai/region", ["method.name=fixmatch"]).method.name == "fixmatch"
    assert load_config("dubai/demo.yaml", ["train.steps=3"]).train.steps == 3
    with pytest.raises(SemilandError, match=r"dubai/regio not found.*dubai/region"):
        load_config("dubai/regio")
    # a shipped config is a protocol: a method's name as a config says how to choose the method
    with pytest.raises(SemilandError, match=r"dubai/fixmatch not found.*method.name=fixmatch"):
        load_config("dubai/fixmatch")
    with pytest.raises(SemilandError, match=r"nowhere.yaml not found.*datasets of .*dubai"):
        load_config("nowhere.yaml")


def test_the_configs_ship_inside_the_package(tmp_path):
    """A wheel of semiland holds every shipped config and split file (package data), so `--config dubai/region`
    works where semiland is installed without a checkout; the repository's configs/ is a link to them."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a copy: setuptools leaves build/ where it builds
    shutil.copytree(REPO / "semiland", source / "semiland", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=source, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("semiland-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("semiland/configs/")}
    in_repo = {
        f"semiland/configs/{p.relative_to(REPO / 'configs')}" for p in (REPO / "configs").rglob("*") if p.is_file()
    }
    assert in_repo and shipped == in_repo
    assert (REPO / "configs").resolve() == REPO / "semiland" / "configs"
