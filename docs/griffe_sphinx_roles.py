"""A Griffe extension for the API reference: the docstrings' Sphinx roles become links.

impasto's docstrings name other objects the Sphinx way (``:class:`LoadedImage```,
``:func:`impasto.stylize```, ``:mod:`impasto.training```), which mkdocstrings would render as the
literal text ``:class:`` before the name. This turns each role into a cross-reference that
mkdocs-autorefs makes a link (``[`LoadedImage`][impasto.io.image.LoadedImage]``) when its target is
shown on the reference page, and into plain code otherwise (a link to a page that does not exist
would fail the strict build). A name is resolved as Python would see it from the docstring's
object (its own scope, its module's imports), or as a full dotted path; ``~`` shows its last part.
Loaded by ``mkdocs.yml`` (the python handler's ``extensions``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([\w.]+)(?:\(\))?`")
REFERENCE = Path(__file__).with_name("reference.md")


def _walk(obj: Any) -> Any:
    yield obj
    if obj.is_alias:
        return
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _canonical(obj: Any) -> str | None:
    try:
        return str(obj.final_target.path if obj.is_alias else obj.path)
    except Exception:  # an alias to something griffe did not load (a third-party object)
        return None


class SphinxRoles(griffe.Extension):
    """``:class:`X``` and the other roles as autorefs links, on every docstring of the package."""

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        documented = self._documented(pkg)
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(lambda m: self._link(m, obj, pkg, documented), obj.docstring.value)

    def _documented(self, pkg: Any) -> set[str]:
        """The canonical paths the reference page shows: each ``:::`` object and its public members
        that have a docstring (what mkdocstrings renders)."""
        shown: set[str] = set()
        for path in re.findall(r"^::: ([\w.]+)\s*$", REFERENCE.read_text(), re.M):
            found = self._lookup(path, pkg)
            if found is None:
                continue
            target = found.final_target if found.is_alias else found
            for member in _walk(target):
                # mkdocstrings shows public members that have a docstring (show_if_no_docstring is off)
                if member is target or (not member.name.startswith("_") and member.docstring is not None):
                    canonical = _canonical(member)
                    if canonical:
                        shown.add(canonical)
        return shown

    @staticmethod
    def _lookup(path: str, pkg: Any) -> Any:
        if path != pkg.path and not path.startswith(pkg.path + "."):
            return None
        try:
            return pkg if path == pkg.path else pkg[path[len(pkg.path) + 1:]]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None

    def _link(self, match: re.Match[str], obj: Any, pkg: Any, documented: set[str]) -> str:
        tilde, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if tilde else name
        target = self._lookup(name, pkg)
        if target is None:
            scope = obj if obj.is_class or obj.is_module else obj.parent
            while target is None and scope is not None:
                try:
                    target = self._lookup(scope.resolve(name.split(".")[0]) + name[len(name.split(".")[0]):], pkg)
                except (griffe.NameResolutionError, AttributeError, TypeError):
                    pass
                scope = scope.parent
        canonical = _canonical(target) if target is not None else None
        return f"[`{shown}`][{canonical}]" if canonical in documented else f"`{shown}`"
