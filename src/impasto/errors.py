"""Exceptions raised by impasto.

The library never prints and never exits; it raises these. The CLI maps them to exit codes:
``InputError`` (and its subclasses) is a usage error (exit 2), everything else a runtime failure
(exit 1).
"""

from __future__ import annotations

from typing import Any


class ImpastoError(Exception):
    """Base class of every error impasto raises on purpose."""


class InputError(ImpastoError, ValueError):
    """A value or file given by the user is not acceptable (bad option, bad image, bad path)."""


class ImageError(InputError):
    """An image file could not be read: missing, not an image, truncated, or too large."""


class NonFiniteLossError(ImpastoError, RuntimeError):
    """The loss became NaN or infinite during optimization; nothing is written."""


class StylizeInterrupted(KeyboardInterrupt):
    """Raised when a run is interrupted (Ctrl-C); ``image`` holds the result so far.

    It subclasses KeyboardInterrupt so that code which does not care keeps the usual behaviour,
    while the CLI catches it and saves the partial image.
    """

    def __init__(self, image: Any, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.image = image
        self.step = step
