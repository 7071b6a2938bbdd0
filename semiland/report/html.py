"""A self-contained run report: metrics tables and figures, the figures embedded in the one HTML file (so it can
be mailed or attached) and also kept as PNG files beside it."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semiland.io import atomic_write_text

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.6em 0 1.4em}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.4em 0}
.note{color:#555;font-size:0.92em}.swatch{display:inline-block;width:0.9em;height:0.9em;border:1px solid #888;vertical-align:middle;margin-right:4px}
"""


@dataclass
class Report:
    title: str
    intro: list[str] = field(default_factory=list)  # paragraphs (plain text, escaped)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # run label → test metrics
    extra_rows: dict[str, dict[str, str]] = field(default_factory=dict)  # run label → extra summary columns
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, relative path)
    colors: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)  # (class, colour)
    details: dict[str, str] = field(default_factory=dict)  # key → value (data, split, machine, command)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # (caption, header, rows)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _image_source(root: Path | None, rel: str) -> str:
    """The figure as a data URI (embedded) where its file is found under `root`, else its relative path."""
    path = root / rel if root is not None else None
    if path is None or not path.is_file():
        return rel
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
    return f"data:{mime.get(path.suffix.lower(), 'image/png')};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render(report: Report, root: Path | None = None) -> str:
    """The report as one HTML page; figures under `root` (the report's folder) are embedded."""
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(report.title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{e(report.title)}</h1>",
    ]
    parts += [f"<p>{e(p)}</p>" for p in report.intro]
    if report.results:
        extra_cols = sorted({k for row in report.extra_rows.values() for k in row})
        parts.append(
            "<h2>Test metrics</h2><table><tr><th>run</th><th>mIoU</th><th>OA</th><th>kappa</th><th>mean F1</th>"
        )
        parts.append("".join(f"<th>{e(c)}</th>" for c in extra_cols) + "</tr>")
        for label, m in report.results.items():
            extra = report.extra_rows.get(label, {})
            parts.append(
                f"<tr><td>{e(label)}</td><td>{_pct(m['mIoU'])}</td><td>{_pct(m['OA'])}</td><td>{_pct(m['kappa'])}</td>"
                f"<td>{_pct(m['mF1'])}</td>" + "".join(f"<td>{e(extra.get(c, ''))}</td>" for c in extra_cols) + "</tr>"
            )
        parts.append("</table><h2>Per-class IoU (%)</h2><table><tr><th>class</th>")
        labels = list(report.results)
        parts.append("".join(f"<th>{e(label)}</th>" for label in labels) + "<th>test pixels</th></tr>")
        colours = dict(report.colors)
        for name in report.results[labels[0]]["classes"]:
            swatch = f"<span class='swatch' style='background:rgb{colours[name]}'></span>" if name in colours else ""
            cells = "".join(f"<td>{_pct(report.results[label]['per_class'][name]['IoU'])}</td>" for label in labels)
            support = report.results[labels[0]]["per_class"][name]["support"]
            parts.append(f"<tr><td>{swatch}{e(name)}</td>{cells}<td>{support}</td></tr>")
        parts.append("</table>")
    for caption, head, rows in report.tables:
        parts.append(f"<h2>{e(caption)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    for caption, rel in report.figures:
        # embedded; data-file names the PNG kept beside the report (full size: wide figures shrink to the page)
        src = _image_source(root, rel)
        parts.append(f"<h2>{e(caption)}</h2><img src='{e(src)}' alt='{e(caption)}' data-file='{e(rel)}'>")
    if report.details:
        parts.append("<h2>Details</h2><table>")
        parts += [f"<tr><td>{e(k)}</td><td style='text-align:left'>{e(v)}</td></tr>" for k, v in report.details.items()]
        parts.append("</table>")
    parts.append(
        "<p class='note'>Made by semiland. mIoU is the macro mean over classes present in the evaluation; "
        "ignored pixels never count.</p></body></html>"
    )
    return "\n".join(parts)


def write_report(report: Report, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, render(report, path.parent))
    return path
