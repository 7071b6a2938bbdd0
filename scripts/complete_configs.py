"""Rewrite every config under configs/ with all keys written out (after a new key is added to a section).

Keeps each file's leading comment lines, its values and the comment at the end of a key's line (matched by
section and key); new keys get their defaults. Run:
    .venv/bin/python scripts/complete_configs.py
"""

import re
from pathlib import Path

from semiland.config import dump_yaml
from semiland.engine.run_config import load_config

SECTION, KEY = re.compile(r"^(\w+):\s*$"), re.compile(r"^  (\w+):.*?(\s+#.*)$")


def key_comments(text: str) -> dict[tuple[str, str], str]:
    """(section, key) → the comment ending that key's line, with the spaces before it."""
    comments, section = {}, ""
    for line in text.splitlines():
        if m := SECTION.match(line):
            section = m[1]
        elif m := KEY.match(line):
            comments[(section, m[1])] = m[2]
    return comments


def with_comments(text: str, comments: dict[tuple[str, str], str]) -> str:
    lines, section = [], ""
    for line in text.splitlines():
        if m := SECTION.match(line):
            section = m[1]
        elif (m := re.match(r"^  (\w+):", line)) and (section, m[1]) in comments:
            line += comments[(section, m[1])]
        lines.append(line)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for path in sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")):
        text = path.read_text()
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        path.write_text(header + with_comments(dump_yaml(load_config(path).to_dict()), key_comments(text)))
        print(path.name)
