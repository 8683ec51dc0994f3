"""The package's layers: imports only go down, and no two subpackages import each other.

The order (README, "Layout"): errors -> config, runtime -> ops, nets -> io, progress -> losses,
metrics -> the methods' own packages (optimize, fast) -> methods (the registry) -> video, jobs ->
serve, cli. Every import counts, at module level or inside a function (a lazy import is still a
dependency); only ``if TYPE_CHECKING:`` blocks are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "impasto"
LAYERS = [
    {"errors"},
    {"config", "runtime"},
    {"ops", "nets", "gallery"},
    {"io", "progress"},
    {"losses", "metrics"},
    {"optimize", "fast", "universal"},
    {"methods"},
    {"video", "jobs"},
    {"serve", "cli"},
    {"__init__", "__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def unit(module: str) -> str:
    """The layer unit of ``impasto.X.Y``: X (a subpackage or a top-level module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported impasto module, line) for every import in the file, TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "impasto"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "impasto":
                continue
            if node.module is None or target.count(".") == 0:  # `from . import x`: x is a module
                found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((target, node.lineno))
    return found


def graph() -> dict[str, set[tuple[str, str, int]]]:
    """unit -> {(imported unit, importing module, line)} across units."""
    edges: dict[str, set[tuple[str, str, int]]] = {}
    for module, path in modules().items():
        for target, line in imports(module, path):
            a, b = unit(module), unit(target)
            if a != b:
                edges.setdefault(a, set()).add((b, module, line))
    return edges


def test_every_unit_has_a_layer():
    missing = sorted({unit(m) for m in modules()} - set(RANK))
    assert not missing, f"add these to LAYERS (and the README's layout): {missing}"


def test_imports_only_go_down_the_layers():
    upward = [f"{module}:{line} imports impasto.{b} (layer {RANK[b]}) from layer {RANK[a]}"
              for a, targets in graph().items() for b, module, line in sorted(targets) if RANK[b] > RANK[a]]
    assert not upward, "\n".join(upward)


def test_no_cycle_between_subpackages():
    edges = {a: {b for b, _, _ in targets} for a, targets in graph().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]) if nxt in path
                            else f"import cycle through {nxt}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_no_cycle_between_modules():
    """No two modules depend on each other, even lazily (a cycle that only works because one side
    imports inside a function is still a cycle)."""
    mods = modules()
    edges = {m: {t for t, _ in imports(m, p) if t in mods and t != m} for m, p in mods.items()}
    pairs = sorted(f"{a} <-> {b}" for a, ts in edges.items() for b in ts
                   if a < b and a in edges.get(b, set()) and not (a == unit_package(b) or b == unit_package(a)))
    assert not pairs, "\n".join(pairs)


def unit_package(module: str) -> str:
    """A subpackage's __init__ re-exports its modules; that pair is not a cycle."""
    return module.rsplit(".", 1)[0]


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk finds relative, absolute and lazy imports (a check that cannot pass vacuously)."""
    src = tmp_path / "impasto" / "ops"
    src.mkdir(parents=True)
    path = src / "x.py"
    path.write_text("from ..jobs import recipe\nimport impasto.cli\ndef f():\n    from ..serve.app import create_app\n"
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..video import io\n")
    got = {unit(t) for t, _ in imports("impasto.ops.x", path)}
    assert got == {"jobs", "cli", "serve"}
