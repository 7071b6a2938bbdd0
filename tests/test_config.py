import pytest

from semiland.config import load_config, parse_overrides
from semiland.errors import SemilandError

from .conftest import REPO


def test_shipped_configs_are_complete_and_valid():
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        cfg = load_config(path)
        assert cfg.method["name"]
        # complete: every key of every section is written in the file
        import yaml

        raw = yaml.safe_load(path.read_text())
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
