"""Where semiland finds the files it ships beside the package: the repository's `configs/` (semiland is
installed editable from a clone, `pip install -e .`, so the folder is next to the package)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
