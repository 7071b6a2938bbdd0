"""ClassTable: class names, colours and the ignore index; RGB-coded and index masks → class indices."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semiland.errors import SemilandError
from semiland.io import read_text_file

IGNORE_INDEX = 255  # one ignore index everywhere (masks are stored as uint8-compatible int64)

RGB = tuple[int, int, int]


def hex_color(rgb: RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 → (...) int32 code r<<16 | g<<8 | b, so a colour lookup is one searchsorted."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@dataclass(frozen=True)
class ClassTable:
    """K classes with display colours; masks map to indices 0..K-1, ignored pixels to `ignore_index`.

    RGB masks: a pixel whose colour is `colors[k]` is class k; a colour in `ignore_colors` is ignored;
    any other colour is an error naming the file and the colour. Index masks (one band of integers):
    raw value `values[k]` is class k (default k), values in `ignore_values` are ignored.
    """

    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_colors: tuple[RGB, ...] = ()
    values: tuple[int, ...] | None = None  # raw index-mask value of each class; None = 0..K-1
    ignore_values: tuple[int, ...] = (IGNORE_INDEX,)
    ignore_index: int = IGNORE_INDEX
    ignored_names: tuple[str, ...] = field(default=())  # names of ignored classes, for reports

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise SemilandError(f"class table has {len(self.names)} names but {len(self.colors)} colours")
        if len(set(self.colors)) != len(self.colors):
            raise SemilandError("class table has two classes with the same colour")
        if not self.names:
            raise SemilandError("class table is empty: at least one class must not be ignored")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def raw_values(self) -> tuple[int, ...]:
        return self.values if self.values is not None else tuple(range(self.num_classes))

    def decode(self, mask: np.ndarray, source: str | Path = "mask") -> np.ndarray:
        """RGB (H, W, 3) or index (H, W) mask → int64 (H, W) class indices with `ignore_index`."""
        if mask.ndim == 3 and mask.shape[-1] in (3, 4):
            return self._decode_rgb(mask[..., :3], source)
        if mask.ndim == 2:
            return self._decode_values(mask, source)
        raise SemilandError(f"{source}: a mask must be RGB (H, W, 3) or one band of class values, got {mask.shape}")

    def _decode_rgb(self, rgb: np.ndarray, source: str | Path) -> np.ndarray:
        codes = _pack(rgb)
        table = [(c, k) for k, c in enumerate(self.colors)] + [(c, self.ignore_index) for c in self.ignore_colors]
        keys = np.array([_pack(np.array(c, dtype=np.uint8)) for c, _ in table])
        out_of = np.array([k for _, k in table], dtype=np.int64)
        order = np.argsort(keys)
        keys, out_of = keys[order], out_of[order]
        pos = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
        known = keys[pos] == codes
        if not known.all():
            bad = np.unique(codes[~known])
            colours = ", ".join(hex_color(((c >> 16) & 255, (c >> 8) & 255, c & 255)) for c in bad[:5])
            raise SemilandError(
                f"{source}: {int((~known).sum())} pixels have colours not in the class table ({colours}"
                f"{', …' if len(bad) > 5 else ''}); add them to the classes or to data.ignore_classes"
            )
        return out_of[pos]

    def _decode_values(self, values: np.ndarray, source: str | Path) -> np.ndarray:
        if np.issubdtype(values.dtype, np.floating):
            if not np.all(np.isfinite(values) | np.isnan(values)):
                raise SemilandError(f"{source}: mask has infinite values")
            nan = np.isnan(values)
            values = np.where(nan, self.ignore_values[0] if self.ignore_values else -1, values).astype(np.int64)
        out = np.full(values.shape, -1, dtype=np.int64)
        for k, v in enumerate(self.raw_values):
            out[values == v] = k
        for v in self.ignore_values:
            out[values == v] = self.ignore_index
        if (out < 0).any():
            bad = np.unique(values[out < 0])
            raise SemilandError(
                f"{source}: mask values {bad[:5].tolist()} are not in the class table "
                f"(classes use {list(self.raw_values)}, ignored {list(self.ignore_values)})"
            )
        return out

    def colorize(self, index: np.ndarray) -> np.ndarray:
        """(H, W) class indices → (H, W, 3) uint8 colours; ignored pixels black."""
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: self.num_classes] = np.array(self.colors, dtype=np.uint8)
        return palette[np.clip(index, 0, 255).astype(np.uint8)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "colors": [list(c) for c in self.colors],
            "ignore_colors": [list(c) for c in self.ignore_colors],
            "values": list(self.values) if self.values is not None else None,
            "ignore_values": list(self.ignore_values),
            "ignore_index": self.ignore_index,
            "ignored_names": list(self.ignored_names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassTable:
        return cls(
            names=tuple(d["names"]),
            colors=tuple(tuple(c) for c in d["colors"]),
            ignore_colors=tuple(tuple(c) for c in d.get("ignore_colors", [])),
            values=tuple(d["values"]) if d.get("values") is not None else None,
            ignore_values=tuple(d.get("ignore_values", [IGNORE_INDEX])),
            ignore_index=d.get("ignore_index", IGNORE_INDEX),
            ignored_names=tuple(d.get("ignored_names", [])),
        )

    @staticmethod
    def _check_ignore(names: list[str], ignore: list[str]) -> None:
        unknown = [n for n in ignore if n not in names]
        if unknown:
            raise SemilandError(f"ignore_classes {unknown} are not class names; classes are {names}")

    @classmethod
    def from_values(
        cls,
        rows: list[tuple[str, RGB, int]],
        ignore: list[str],
        ignore_values: tuple[int, ...],
        unnamed_ignored: tuple[str, ...] = (),
    ) -> ClassTable:
        """Index masks: (name, display colour, raw value) rows; rows named in `ignore` and the raw
        `ignore_values` (named `unnamed_ignored` in reports) are ignored."""
        cls._check_ignore([n for n, _, _ in rows], ignore)
        kept = [(n, c, v) for n, c, v in rows if n not in ignore]
        return cls(
            names=tuple(n for n, _, _ in kept),
            colors=tuple(c for _, c, _ in kept),
            values=tuple(v for _, _, v in kept),
            ignore_values=ignore_values + tuple(v for n, _, v in rows if n in ignore),
            ignored_names=(*unnamed_ignored, *ignore),
        )

    @classmethod
    def from_rows(cls, rows: list[tuple[str, RGB]], ignore: list[str]) -> ClassTable:
        """Build from (name, colour) rows; rows whose name is in `ignore` become ignore colours."""
        cls._check_ignore([n for n, _ in rows], ignore)
        kept = [(n, c) for n, c in rows if n not in ignore]
        return cls(
            names=tuple(n for n, _ in kept),
            colors=tuple(c for _, c in kept),
            ignore_colors=tuple(c for n, c in rows if n in ignore),
            ignored_names=tuple(ignore),
        )

    @classmethod
    def from_csv(cls, path: Path, ignore: list[str]) -> ClassTable:
        """A `name,r,g,b` CSV (extra columns allowed), e.g. the Dubai `class_colors.csv`."""
        if not path.is_file():
            raise SemilandError(f"class colour table {path} not found")
        reader = csv.DictReader(read_text_file(path, "class table").splitlines())
        header = [h.strip() for h in reader.fieldnames or []]
        if not {"name", "r", "g", "b"} <= set(header):
            raise SemilandError(
                f"class table {path} must start with the header row name,r,g,b (found {','.join(header) or 'nothing'})"
            )
        reader.fieldnames = header
        rows = []
        for line, r in enumerate(reader, 2):
            try:
                rgb = tuple(int(str(r[c]).strip()) for c in "rgb")
            except ValueError:
                raise SemilandError(
                    f"{path}, line {line}: r, g, b must be whole numbers, got {[r[c] for c in 'rgb']}"
                ) from None
            if not all(0 <= v <= 255 for v in rgb):
                raise SemilandError(f"{path}, line {line}: colour {list(rgb)} is outside 0-255")
            rows.append((str(r["name"]).strip(), (rgb[0], rgb[1], rgb[2])))
        return cls.from_rows(rows, ignore)
