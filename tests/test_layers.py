"""The package's import graph: every import runs down the layers (or within one), and no module imports
itself back through others — read from the source, so it stays true (docs/design.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "semiland"

# low → high; a module may import from its own layer or any lower one
LAYERS = [
    {"version", "errors", "io", "argtypes", "config", "paths", "console"},  # foundations
    {"data", "losses"},
    {"models"},
    {"methods"},
    {"engine"},
    {"inference", "analysis", "report", "selftrain"},
    {"bench", "demo", "api"},
    {"cli", "__main__", "semiland"},  # the package itself: the public facade, re-exporting the API lazily
]
LEVEL = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module → the semiland modules it imports (anywhere in the file, function-level imports too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "semiland":
                # `from semiland.x import y`: the module y where it is one, else x
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                          for a in node.names}  # fmt: skip
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "semiland"}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    return LEVEL[parts[1] if len(parts) > 1 else "semiland"]


def test_every_module_has_a_layer():
    assert [m for m in imports() if (m.split(".") + ["semiland"])[1] not in LEVEL and m != "semiland"] == []


def test_no_import_runs_up_the_layers():
    upward = [f"{m} → {d}" for m, deps in imports().items() for d in deps if layer(d) > layer(m)]
    assert upward == []


def test_no_import_circles():
    graph, circles = imports(), []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                circles.append(" → ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []
