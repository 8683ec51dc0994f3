"""The registry of methods, by name.

Built in: ``optimize`` and one method per shipped fast model, plus any model file by its path.
Plug-ins call :func:`register` when imported. impasto imports the modules named by the entry-point
group ``impasto.methods`` of installed packages (an entry point may also name a :class:`Method`
instance) and by the ``IMPASTO_PLUGINS`` environment variable (comma-separated module names),
once, at the first lookup: so the service's worker processes and a batch's pool processes see
the same methods as the process that started them.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import InputError
from .base import Method

PLUGINS_ENV = "IMPASTO_PLUGINS"
"""The environment variable naming plug-in modules to import (comma-separated)."""
ENTRY_POINTS = "impasto.methods"
"""The entry-point group whose modules (or Method instances) are plug-ins."""

_registry: dict[str, Method] = {}
_builtin: set[str] = set()
_resolvers: list[Callable[[str], Method | None]] = []
_lock = threading.RLock()
_loaded = False


def register(method: Method, *, replace: bool = False) -> Method:
    """Make ``method`` available by its name; refuses a name already taken unless ``replace``, and
    a built-in method's name always (a plug-in never silently changes what ``optimize`` means)."""
    if not method.name or not isinstance(method.name, str):
        raise ValueError("a method needs a name")
    with _lock:
        if method.name in _builtin:
            raise ValueError(f"{method.name!r} is a built-in method; a plug-in's method needs a name of its own")
        if method.name in _registry and not replace:
            raise ValueError(f"a method named {method.name!r} is already registered")
        _registry[method.name] = method
    return method


def _register_builtin(method: Method) -> None:
    with _lock:
        _registry[method.name] = method
        _builtin.add(method.name)


def unregister(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def add_resolver(resolve: Callable[[str], Method | None]) -> None:
    """``resolve(name)`` returns a method for names no one registered (a fast model's file), or None."""
    with _lock:
        _resolvers.append(resolve)


def load_plugins() -> None:
    """Import the built-in methods, then the plug-ins (entry points, ``$IMPASTO_PLUGINS``), once."""
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        from importlib.metadata import entry_points

        from .fast_models import model_file, shipped
        from .optimization import OptimizeMethod
        from .universal import UniversalMethod

        _register_builtin(OptimizeMethod(methods=available))  # init may name any method
        _register_builtin(UniversalMethod())
        for method in shipped():
            _register_builtin(method)
        add_resolver(model_file)
        for entry in entry_points(group=ENTRY_POINTS):
            where = f"the plug-in {entry.value!r} (entry point {entry.name!r} of {_package(entry)})"
            with _one_line(where):
                loaded = entry.load()
                if isinstance(loaded, Method) and _registry.get(loaded.name) is not loaded:
                    register(loaded)  # (a module that registered it on import has done so already)
        for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
            with _one_line(f"the plug-in {module!r} named in ${PLUGINS_ENV}"):
                importlib.import_module(module)


def _package(entry: Any) -> str:
    dist = getattr(entry, "dist", None)
    return f"the package {dist.name!r}" if dist is not None else "an installed package"


@contextmanager
def _one_line(where: str) -> Iterator[None]:
    """Whatever a plug-in raises while it loads (a missing module, its own bug, a name clash) is one
    line naming the plug-in: :class:`InputError`, exit 2 on the command line."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        why = (str(exc).strip().splitlines() or [""])[0][:200]
        raise InputError(f"cannot load {where}: {type(exc).__name__}" + (f": {why}" if why else "")) from None


def get_method(name: str, *, model_files: bool = True) -> Method:
    """The method called ``name``: a registered one, or one a resolver finds (a model file).

    ``model_files=False`` looks up registered names only and never touches the file system: what a
    remote client names (the service's ``method`` field, a queued job) must not open server files."""
    load_plugins()
    with _lock:
        if name in _registry:
            return _registry[name]
        resolvers = list(_resolvers) if model_files else []
    for resolve in resolvers:
        found = resolve(name)
        if found is not None:
            return found
    also = " (or a fast model's file)" if model_files else ""
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise InputError(f"unknown method {shown!r}; valid: {', '.join(available())}{also}", fields=("method",))


def available() -> dict[str, Method]:
    """Every registered method by name, the optimization first."""
    load_plugins()
    with _lock:
        return dict(sorted(_registry.items(), key=lambda kv: (kv[0] != "optimize", kv[0])))
