"""The API reference (docs/reference.md) covers the public API, and its cross-references are links."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types

import pytest

from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "reference.md"


def _import(path: str):
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def documented() -> tuple[set[int], set[str]]:
    """The objects the reference page shows (a module shows its public members), by id; and the
    dotted paths of its data (constants are not unique objects)."""
    ids, paths = set(), set()
    for path in re.findall(r"^::: ([\w.]+)\s*$", REFERENCE.read_text(), re.M):
        obj = _import(path)
        ids.add(id(obj))
        paths.add(path)
        if isinstance(obj, types.ModuleType):
            ids.update(id(v) for k, v in vars(obj).items() if not k.startswith("_")
                       and getattr(v, "__module__", None) == obj.__name__)
    return ids, paths


@pytest.mark.parametrize("package", ["impasto", "impasto.methods"])
def test_the_reference_covers_every_public_name(package):
    """Every name in ``impasto.__all__`` and the plug-in API (``impasto.methods.__all__``) has its
    entry: ``impasto.stylize`` (the registry's front door) was missing, the optimization's own
    ``stylize`` standing in for it."""
    ids, paths = documented()
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        if name == "__version__":
            continue
        obj = getattr(module, name)
        if isinstance(obj, (str, int, float)):  # data: documented by the path that defines it
            if not any(p.endswith("." + name) and _import(p) == obj for p in paths):
                missing.append(name)
        elif id(obj) not in ids:
            missing.append(name)
    assert not missing, f"add to docs/reference.md: {missing}"


def test_sphinx_roles_render_as_links(tmp_path):
    """``:class:`LoadedImage``` rendered as the literal text ':class:' before the name; the Griffe
    extension (docs/griffe_sphinx_roles.py) makes each a link where its target is on the page."""
    pytest.importorskip("mkdocs", reason="needs the docs extra")
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    html = (site / "reference" / "index.html").read_text()
    assert not re.search(r":(class|func|meth|mod|data|attr|exc):", html)
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="#impasto.io.image.LoadedImage">'
                     r"<code>LoadedImage</code></a>", html)
