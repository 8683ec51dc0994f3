"""The web service (``impasto serve``): a page and a REST API over the persistent job queue.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install 'impasto[serve]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Limits", "Settings", "create_app"]


def __getattr__(name: str) -> Any:  # lazy: `impasto --help` must not import FastAPI
    if name in ("Limits", "Settings"):
        from . import settings

        return getattr(settings, name)
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
