"""Jobs: a recipe (method + options) run on a photo, in a batch over folders or in a service's queue.

* :mod:`.recipe`: :class:`Recipe` (pure data) and :class:`Runner` (keeps networks loaded);
* :mod:`.batch`: folder -> folder, resumable, on one process, a process pool or Ray;
* :mod:`.store`: the service's persistent queue (SQLite plus files);
* :mod:`.worker`: the process that runs the service's queued jobs.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"BatchReport": "batch", "run_batch": "batch", "OPTIMIZE": "recipe", "Recipe": "recipe",
          "Runner": "recipe", "JobStore": "store"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:  # lazy: `impasto --help` must not import torch
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
