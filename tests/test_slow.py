"""Slow tier (off by default; `make test-slow`): short training runs on synthetic scenes that must learn."""

import json

import pytest
import yaml

from semiland.cli import main

from .conftest import tiny_config

pytestmark = pytest.mark.slow


def _train(tmp_path, method: str, split: dict, steps: int = 300, extra: dict | None = None) -> float:
    """tiny_unet (width 16), `steps` steps of 8 × 64² crops on 6 regions × 4 synthetic scenes of 128 px."""
    from semiland.data.synthetic import generate

    root = generate(tmp_path / "d", regions=6, images=4, size=128, bands=3)
    cfg = tiny_config(
        root,
        data={
            "synthetic_regions": 6,
            "synthetic_images": 4,
            "synthetic_size": 128,
            "crop_size": 64,
            "batch_size": 8,
            "unlabeled_batch_size": 8,
            "eval_tile": 128,
            **split,
        },
        model={"arch": "tiny_unet", "width": 16},
        method={"name": method, **(extra or {})},
        optim={"lr": 0.005},
        train={"steps": steps, "val_every": 100},
    )
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["fit", "--config", str(path), "-o", str(tmp_path / method)]) == 0
    return json.loads((tmp_path / method / "test" / "metrics.json").read_text())["mIoU"]


def test_supervised_learns_synthetic_scenes(tmp_path):
    miou = _train(
        tmp_path, "supervised", {"labeled": ["region_0", "region_1"], "val": ["region_4"], "test": ["region_5"]}
    )
    # Stated threshold (docs/benchmarks.md): > 0.85 mIoU after 300 steps (measured 0.958); chance ≈ 0.2.
    assert miou > 0.85, miou


# 2 labeled scenes (count split, seeded), 2 validation, 6 test scenes, the other 14 unlabeled.
TWO_LABELED = {"split_mode": "count", "labeled": 2, "val": 2, "test": 6}


@pytest.fixture(scope="module")
def supervised_two_labeled(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("sup"), "supervised", TWO_LABELED)


# FixMatch's default strong view (per-band gain / bias / noise) failed here: 57.67 vs supervised 57.77 (session
# 4), 48.41 vs 58.35 (session 5, one thread, loaded machine), building and road collapsing. The synthetic
# classes differ mainly by their spectra (data/synthetic.py), and per-band gain and bias change band ratios,
# so the strong view trained the network to ignore the one cue that separates them. With the strong view's
# photometric changes off (CutMix only: method.photometric=0, blur_p=0) FixMatch reached 61.69 vs 58.35
# (session 5, same conditions). The tier tests that configuration, as a user with spectrally defined
# classes should run it; the default's failure is documented in docs/benchmarks.md.
# Its targets use batch statistics (method.target_bn=batch, the default): with running statistics FixMatch
# scored 54.51 vs supervised 58.35 here (session 6).
FIXMATCH_SPECTRAL = {"photometric": 0.0, "blur_p": 0.0}


@pytest.mark.parametrize(("method", "extra"), [("fixmatch", FIXMATCH_SPECTRAL), ("s4net", {})])
def test_semi_supervised_beats_supervised_with_two_labeled_images(method, extra, supervised_two_labeled, tmp_path):
    miou = _train(tmp_path, method, TWO_LABELED, extra=extra)
    print(f"\n{method}: test mIoU {miou:.4f}, supervised {supervised_two_labeled:.4f}")  # for docs/benchmarks.md
    assert miou > supervised_two_labeled, (method, miou, supervised_two_labeled)


@pytest.mark.parametrize("method", ["adversarial", "gan", "vae"])
def test_generative_methods_stay_finite(method, tmp_path):
    """The generative family's known weakness is stability: a short run must end with finite losses and a
    usable map (the engine stops on the first non-finite loss, so reaching the test set means it stayed finite)."""
    miou = _train(tmp_path, method, TWO_LABELED, steps=100)
    assert miou is not None and 0 < miou <= 1
