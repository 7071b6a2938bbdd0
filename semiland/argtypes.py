"""Argument types and the parser of the command line: every bad option is one line, before any work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from semiland.errors import one_line


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are semiland's one line (argparse prints its usage block first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"semiland: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def at_least(low: int) -> Callable[[str], int]:
    """An int option that must be ≥ `low` (a batch of 0 tiles, a sub-tile of 0 px, … are refused up front)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int ≥ {low}"
    return parse


def positive(text: str) -> float:
    """A number > 0 (a scale, a factor)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def key_value(text: str) -> tuple[str, str]:
    """A `KEY=VALUE` option (GDAL's `--co COMPRESS=ZSTD`); the key upper-cased as GDAL spells it."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, e.g. COMPRESS=ZSTD; got {text!r}")
    return key.strip().upper(), value.strip()


def device_overrides(text: str) -> list[str]:
    """`--device auto | cpu | cuda | cuda:N` (as predict takes it) for the commands that train or evaluate: the
    `train.accelerator` / `train.devices` overrides it stands for."""
    name = text.strip().lower()
    if name in ("auto", "cpu"):
        return [f"train.accelerator={name}"]
    if name in ("cuda", "gpu"):
        return ["train.accelerator=gpu"]
    index = name.removeprefix("cuda:")
    if name.startswith("cuda:") and index.isdigit():
        return ["train.accelerator=gpu", f"train.devices=[{int(index)}]"]
    raise argparse.ArgumentTypeError(f"use auto, cpu, cuda or cuda:N, got {text!r}")
