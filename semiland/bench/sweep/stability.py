"""How stable each sweep cell trained: the summary's "Training alarms" table (issue #6 asks of the generative
methods "whether they beat supervised and how stable they were").

A method with instability signals (`Method.alarms`: the adversarial discriminator's accuracy and loss, the GAN's
real / fake accuracy and generator loss, …) has the engine warn once per alarm when it fires and record it in
the cell's `warnings.json`. Per budget and method this table says which alarms fired, in how many seeds and
at which step, and where each watched value ended (its mean over the last `TAIL` logged steps, per seed): an
alarm that fired at step 58 and a value still past its limit at the end say the state lasted. Reads finished
cells' files only (`warnings.json`, `config.yaml`, `logs/metrics.csv`), so it runs beside a sweep still training.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from semiland.bench.sweep.layout import ORACLE, CellRow, cell_folder, cell_method, cell_run
from semiland.bench.sweep.tables import Table
from semiland.engine.run_folder import read_log
from semiland.methods import METHODS
from semiland.report.run_report import run_warnings

TAIL = 300  # training steps at the end whose logged values say where a watched quantity ended


def _watched_keys(run: Path) -> list[str]:
    """The alarm keys of the method a cell trained (its resolved config's method.name: `cell_method`)."""
    cls = METHODS.get(cell_method(run).get("name"))
    return list(dict.fromkeys(a.key for a in cls.alarms)) if cls else []


def _tail_mean(series: list[tuple[float, float]]) -> float | None:
    """Mean of the values logged in the last TAIL steps of a (step, value) series; None when empty."""
    if not series:
        return None
    last = series[-1][0]
    return statistics.mean(v for s, v in series if s > last - TAIL)


def cell_stability(run: Path) -> dict[str, Any]:
    """One cell's alarms ({"step", "key", "message"} each) and each watched key's mean over its last TAIL steps."""
    keys = _watched_keys(run)
    log = read_log(run / "logs" / "metrics.csv") if keys else {}
    return {"fired": run_warnings(run), "tail": {k: _tail_mean(log.get(f"train/{k}", [])) for k in keys}}


def stability(rows: list[CellRow], out: Path) -> list[dict[str, Any]]:
    """Per budget and method whose method watches something: seeds, each alarm's seeds and first steps, and
    each watched key's end value per seed."""
    found = []
    for budget in dict.fromkeys(r.budget for r in rows):
        cells = [r for r in rows if r.budget == budget and not r.same_as and r.method != ORACLE]
        for method in dict.fromkeys(r.method for r in cells):
            seeds = sorted(r.seed for r in cells if r.method == method)
            runs = {s: cell_stability(cell_run(cell_folder(out, method, budget, s))) for s in seeds}
            if not any(c["tail"] or c["fired"] for c in runs.values()):
                continue  # a method without alarms (the discriminative ones): nothing to say
            alarms: dict[str, dict[int, int]] = {}  # message → {seed: first step it fired}
            for s, c in runs.items():
                for w in c["fired"]:
                    alarms.setdefault(w["message"], {}).setdefault(s, w["step"])
            keys = list(dict.fromkeys(k for c in runs.values() for k in c["tail"]))
            tails = {k: {s: runs[s]["tail"].get(k) for s in seeds} for k in keys}
            found.append({"budget": budget, "method": method, "seeds": seeds, "alarms": alarms, "tails": tails})
    return found


def stability_table(found: list[dict[str, Any]]) -> Table:
    def alarm_text(message: str, at: dict[int, int], n: int) -> str:
        what = message.split(":", 1)[0]  # the condition; the advice after the colon is in the run's report
        steps = " / ".join(f"{at[s]} (seed {s})" for s in sorted(at))
        return f"{what}: {len(at)}/{n} seeds, first at step {steps}"

    def tail_text(key: str, by_seed: dict[int, float | None]) -> str:
        vals = " / ".join("–" if v is None else f"{v:.3g}" for v in by_seed.values())
        return f"{key} {vals}"

    rows = [
        [
            f["budget"],
            f["method"],
            str(len(f["seeds"])),
            "; ".join(alarm_text(m, at, len(f["seeds"])) for m, at in f["alarms"].items()) or "none",
            "; ".join(tail_text(k, v) for k, v in f["tails"].items()) or "–",
        ]
        for f in found
    ]
    caption = (
        f"Training alarms (each cell's warnings.json: an alarm warns once, at the step given) and where each watched "
        f"value ended (mean over the last {TAIL} steps, seed by seed)"
    )
    return caption, ["budget", "method", "seeds", "alarms fired", "watched values at the end"], rows
