"""Rewrite every config under configs/ with all keys written out (after a new key is added to a section).

Keeps each file's leading comment lines and its values; new keys get their defaults. Comments at the end of a
line are lost (the files are dumped again): for one new key, adding its line to each file's section by hand
(as session 21 did for train.deterministic) keeps them. Run:
    .venv/bin/python scripts/complete_configs.py
"""

from pathlib import Path

from semiland.config import dump_yaml, load_config

for path in sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")):
    header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
    path.write_text(header + dump_yaml(load_config(path).to_dict()))
    print(path.name)
