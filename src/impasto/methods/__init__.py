"""Methods as plug-ins: the :class:`Method` protocol (:mod:`.base`) and the registry (:mod:`.registry`).

Built in: ``optimize`` (:mod:`.optimization`) and one method per shipped fast model, plus any
model file by its path (:mod:`.fast_models`). Below ``jobs``, ``video`` and ``serve``, above the
methods' own packages (``optimize``, ``fast``).
"""

from .base import DEFAULT_VIDEO_SIZE, FramePainter, Method, Painter, ResumeFile
from .registry import PLUGINS_ENV, add_resolver, available, get_method, load_plugins, register, unregister

__all__ = ["DEFAULT_VIDEO_SIZE", "PLUGINS_ENV", "FramePainter", "Method", "Painter", "ResumeFile", "add_resolver",
           "available", "get_method", "load_plugins", "register", "unregister"]
