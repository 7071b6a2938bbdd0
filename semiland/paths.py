"""Where semiland finds the files it ships: the configs are package data (`semiland/configs/`, installed with
the package, so `--config dubai/region` works outside a checkout); the repository's `configs/` is a link to
them for the commands in the docs."""

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"
