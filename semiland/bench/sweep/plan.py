"""A sweep's plan: the `--methods` and `--budget` syntax, the cells they make (`RunSpec`: method label ×
budget × seed, plus the oracle shared by budgets of one training pool) and the config snapshot that pins the
protocol of a sweep folder.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from semiland.bench.sweep.layout import ORACLE, cell_folder
from semiland.config import dump_yaml
from semiland.engine.run_config import load_config
from semiland.errors import SemilandError
from semiland.io import atomic_write_text


@dataclass
class RunSpec:
    method: str  # a registered method, or "oracle"
    budget: str
    seed: int
    overrides: list[str]
    same_as: str | None = None  # oracle only: the budget whose oracle run (same training pool) this one is

    def folder(self, out: Path) -> Path:
        return cell_folder(out, self.method, self.budget, self.seed)

    @property
    def registered(self) -> str:
        """The registered method the cell trains (`registered_method` of its overrides)."""
        return registered_method(self.overrides)


def registered_method(overrides: list[str]) -> str:
    """The registered method a list of overrides trains: its last `method.name=` (`plan` puts the label's first,
    then the method spec's own; a later override wins, as in `load_config`)."""
    return [o.split("=", 1)[1] for o in overrides if o.startswith("method.name=")][-1]


def parse_methods(text: str, baseline: bool = True) -> dict[str, list[str]]:
    """'a,b:method.k=v,lab=c:method.j=w' → {label: overrides}, overrides starting with method.name=…;
    the label is the method's name unless given; supervised always comes first — unless `baseline` is False
    (`--no-baseline`: the methods name their own supervised, e.g. sup_long=supervised:train.steps=1400, which the
    summary pairs them with by config)."""
    methods: dict[str, list[str]] = {}
    for item in re.split(r",(?![^\[]*\])", text):  # commas inside [...] (list values) do not separate methods
        head, _, overrides = item.strip().partition(":")
        label, _, name = head.strip().rpartition("=")
        if not name:
            continue
        label = label.strip() or name.strip()
        if not re.fullmatch(r"[\w-]+", label):
            raise SemilandError(f"--methods label '{label}' must be letters, digits, _ or -")
        methods[label] = [f"method.name={name.strip()}", *shlex.split(overrides)]
    if baseline:
        return {"supervised": methods.pop("supervised", ["method.name=supervised"]), **methods}
    if "supervised" in methods:
        raise SemilandError("--no-baseline skips the `supervised` cells, and --methods names supervised: give one")
    if teacher := next((m for m, own in methods.items() if registered_method(own) == "self_training"), None):
        raise SemilandError(
            f"--methods {teacher}: self_training starts from the `supervised` cell, which --no-baseline skips"
        )
    return methods


def training_pool(config: Path, overrides: list[str], sets: list[str] = ()) -> frozenset[str]:
    """Image ids of labeled ∪ unlabeled under one budget (what its oracle is trained on); checks that each
    `--also-on` set has images with masks there before any run starts."""
    from semiland.data.prepare import resolve_split
    from semiland.engine.runner import evaluation_images

    spec, split = resolve_split(load_config(config, overrides))
    for on in sets:
        evaluation_images(spec, split, on)
    return frozenset([*split.labeled, *split.unlabeled])


def parse_budgets(items: list[str], default: bool = True) -> dict[str, list[str]]:
    """Named override sets; none given: one budget, "default" (unless `default` is False: --folds makes them)."""
    budgets: dict[str, list[str]] = {}
    for item in items:
        name, sep, overrides = item.partition("=")
        if not sep or not re.fullmatch(r"[\w-]+", name):
            raise SemilandError(f"--budget '{item}' must look like NAME=\"section.key=value …\"")
        budgets[name] = shlex.split(overrides)
    return budgets or ({"default": []} if default else {})


def plan(
    methods: dict[str, list[str]],
    budgets: dict[str, list[str]],
    seeds: list[int],
    oracle: bool,
    pools: dict[str, frozenset[str]] | None = None,
) -> list[RunSpec]:
    """Runs in order budget → seed → method (partial sweeps are whole seeds of the first budgets)."""
    pools = pools or {}
    first_with_pool = {}
    for budget in budgets:
        first_with_pool.setdefault(pools.get(budget, budget), budget)
    runs = []
    for budget, extra in budgets.items():
        for seed in seeds:
            for method, own in methods.items():
                runs.append(
                    RunSpec(method, budget, seed, [*extra, f"method.name={method}", *own, f"train.seed={seed}"])
                )
            if oracle:
                first = first_with_pool[pools.get(budget, budget)]
                m = ["method.name=supervised", "data.oracle=true", f"train.seed={seed}"]
                runs.append(RunSpec(ORACLE, budget, seed, [*extra, *m], same_as=None if first == budget else first))
    return runs


def snapshot_config(config: Path, out: Path) -> Path:
    """The sweep reads its config once: the first call writes it, resolved, to OUT/sweep_config.yaml, and every
    run reads that copy, so editing the original mid-sweep cannot mix protocols (a later call with another
    config is refused). Keys added to semiland since then take their defaults on both sides of the check."""
    resolved = load_config(config).to_dict()
    snap = out / "sweep_config.yaml"
    if snap.is_file():
        if load_config(snap).to_dict() != resolved:
            raise SemilandError(f"{out} holds a sweep made with another config ({snap}); use a new -o, or that config")
    else:
        atomic_write_text(snap, f"# resolved from {config} when this sweep started\n" + dump_yaml(resolved))
    return snap
