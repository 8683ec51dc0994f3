"""The package's layers, as ``docs/development.md`` states them. What these tests prove:

* every import goes down the rows of :data:`LAYERS`, never up, and never sideways between two
  units of one row (a row's units are independent of each other);
* no cycle of any length, between units or between modules (a subpackage's ``__init__``
  re-exporting its own modules aside);
* the drivers (video, jobs, serve) know the methods only through the registry (``methods``): none
  imports a method's own package (optimize, fast, universal). The command line may: ``impasto
  train``, ``export`` and ``apply`` are the fast models' own commands, ``stylize`` has the
  optimization's flags;
* ``from ..ops import color`` is an edge to the module ``impasto.ops.color``, not to the package.

Every import counts, at module level or inside a function (a lazy import is still a dependency);
only ``if TYPE_CHECKING:`` blocks are left out, since they never run. Imports made by string
(``importlib.import_module``, entry points) are not seen: the registry's plug-ins are loaded so.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "impasto"
LAYERS = [
    {"errors"},
    {"config", "runtime"},
    {"ops", "nets", "gallery"},
    {"io"},
    {"progress"},
    {"losses"},
    {"metrics"},
    {"training"},
    {"optimize", "fast", "universal"},
    {"methods"},
    {"video"},
    {"jobs"},
    {"serve"},
    {"cli"},
    {"__init__", "__main__"},
]
METHODS, DRIVERS = {"optimize", "fast", "universal"}, {"video", "jobs", "serve"}
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def unit(module: str) -> str:
    """The layer unit of ``impasto.X.Y``: X (a subpackage or a top-level module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str, path: Path, known: set[str] | None = None) -> list[tuple[str, int]]:
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
            mods = known if known is not None else set(modules())
            for a in node.names:  # `from ..ops import color`: the module impasto.ops.color
                name = f"{target}.{a.name}"
                found.append((name if name in mods or node.module is None or target.count(".") == 0 else target,
                              node.lineno))
    return found


def graph() -> dict[str, set[tuple[str, str, int]]]:
    """unit -> {(imported unit, importing module, line)} across units."""
    edges: dict[str, set[tuple[str, str, int]]] = {}
    mods = modules()
    for module, path in mods.items():
        for target, line in imports(module, path, set(mods)):
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
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_modules():
    """No cycle of modules of any length, even lazily (a cycle that only works because one side
    imports inside a function is still a cycle); a package's __init__ re-exporting its modules aside."""
    mods = modules()
    edges = {m: {t for t, _ in imports(m, p, set(mods)) if t in mods and t != m and unit_package(t) != m}
             for m, p in mods.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as a closed path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def unit_package(module: str) -> str:
    """A subpackage's __init__ re-exports its modules; that pair is not a cycle."""
    return module.rsplit(".", 1)[0]


def test_no_imports_between_units_of_one_row():
    sideways = [f"{module}:{line} imports impasto.{b} from impasto.{a}, in the same row"
                for a, targets in graph().items() for b, module, line in sorted(targets) if RANK[b] == RANK[a]]
    assert not sideways, "\n".join(sideways)


def test_drivers_reach_the_methods_only_through_the_registry():
    direct = [f"{module}:{line} imports impasto.{b}" for a, targets in graph().items() if a in DRIVERS
              for b, module, line in sorted(targets) if b in METHODS]
    assert not direct, "\n".join(direct)


def test_the_cycle_finder_finds_long_cycles_and_only_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk finds relative, absolute and lazy imports (a check that cannot pass vacuously)."""
    src = tmp_path / "impasto" / "ops"
    src.mkdir(parents=True)
    path = src / "x.py"
    path.write_text("from ..jobs import recipe\nimport impasto.cli\ndef f():\n    from ..serve.app import create_app\n"
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..video import io\n")
    got = {unit(t) for t, _ in imports("impasto.ops.x", path)}
    assert got == {"jobs", "cli", "serve"}
    # `from ..ops import color` names the module, `from ..ops import resize` (a function) the package
    path.write_text("from ..ops import color, resize\n")
    assert sorted(t for t, _ in imports("impasto.ops.x", path, {"impasto.ops", "impasto.ops.color"})) == \
        ["impasto.ops", "impasto.ops.color"]


def test_the_registry_holds_no_video_algorithm():
    """``methods/`` is a thin registry: the optical flow, the warping and the temporal term are used
    in the methods' own packages and ``ops`` (Ruder et al.'s frames in ``optimize/video.py``, the
    flow blend of the one-pass methods in ``ops/flow.py``), never called from a registry module."""
    algorithm = {"reliable_flow", "warp", "dis_flow", "reliability", "TemporalTerm"}
    calls = []
    for module, path in sorted(modules().items()):
        if unit(module) != "methods":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in algorithm:
                    calls.append(f"{module}:{node.lineno} calls {name}")
    assert not calls, calls


def test_the_readme_states_these_layers():
    """The README's list of layers is this file's LAYERS, row for row (it had drifted: `io` and
    `progress` as one row, `video` and `jobs` as one, the service and the command line as one)."""
    import re

    text = (PACKAGE.parents[1] / "README.md").read_text()
    sentence = re.search(r"imports only go down the layers, from the bottom: (.*?)\.\s*Units named", text, re.S)
    assert sentence, "the README's sentence on the layers is missing"
    rows = [set(re.findall(r"`(\w+)`", part)) for part in sentence[1].replace("\n", " ").split(";")]
    assert rows == [row for row in LAYERS if row != {"__init__", "__main__"}]
