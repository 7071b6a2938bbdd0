"""Write the published split files of the Dubai protocols, so that two users run the same images:

- configs/dubai/splits/folds/<budget>.json: every leave-one-tile-out fold of issue #40 (`bench sweep --folds
  region:2,random:7`), as the committed folds ran them (data.split_seed=0: the same images for every seed); the
  demo's split is region2-on-tile_3.json;
- configs/dubai/split-2img.json: the earlier method sweep's 2-image budget (configs/dubai/sweep.yaml: tile 4,
  validation tile 2; its 4-image budget is configs/dubai/split-4img.json).

A file is used with `data.split_mode=file data.split_file=<file>`. tests/test_realdata.py checks that the code
still makes these splits. Run (needs the Dubai data at ../shared/data/dubai_aerial or data.root):
    .venv/bin/python scripts/export_dubai_splits.py
"""

from pathlib import Path

from semiland.bench.folds import fold_budgets, parse_folds
from semiland.data.prepare import resolve_split
from semiland.engine.run_config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "dubai" / "demo.yaml"
FOLDS = "region:2,random:7"


def published() -> dict[Path, list[str]]:
    """Each published file → the overrides of configs/dubai/demo.yaml that make its split."""
    regions = [f"tile_{i}" for i in range(1, 9)]
    files = {
        REPO / "configs" / "dubai" / "splits" / "folds" / f"{name}.json": overrides
        for name, overrides in fold_budgets(regions, parse_folds(FOLDS)).items()
    }
    # the earlier sweep's split: the demo config with configs/dubai/sweep.yaml's regions (budget and seed the same)
    sweep = load_config(REPO / "configs" / "dubai" / "sweep.yaml").data
    files[REPO / "configs" / "dubai" / "split-2img.json"] = [
        f"data.{key}=[{','.join(getattr(sweep, key))}]" for key in ("labeled", "unlabeled", "val", "test")
    ]
    return files


def make(overrides: list[str], root: str = ""):
    cfg = load_config(CONFIG, [*overrides, *([f"data.root={root}"] if root else [])])
    return resolve_split(cfg)[1]


if __name__ == "__main__":
    for path, overrides in published().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        make(overrides).save(path)
        print(path.relative_to(REPO))
