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
    """A value or file given by the user is not acceptable (bad option, bad image, bad path).

    ``fields`` names the config fields the message mentions (``size``, ``style_weight``), so that
    each front end can word them for its users (the CLI as ``--size``, a web form as its label).
    """

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class ImageError(InputError):
    """An image file could not be read: missing, not an image, truncated, or too large."""


class NonFiniteLossError(ImpastoError, RuntimeError):
    """The loss became NaN or infinite during optimization; nothing is written."""


class OutOfMemory(ImpastoError, MemoryError):
    """A size did not fit in the device's memory; the message names the size, the device and what
    to try. Nothing is written."""


class ImageTooLarge(ImageError):
    """An image has more pixels than the limit it is read under (a decompression bomb, or just too big)."""


class ImageTooComplex(ImageError):
    """An image file's structure is beyond what real encoders write (a flood of PNG chunks, thousands
    of JPEG scans): refused from a bounded walk of its headers, before any decoder spends time on it."""


class WriteError(ImpastoError, OSError):
    """An output could not be written (no space left, a read-only folder, a folder that vanished).

    Nothing is left behind: writes are atomic, so the target path holds its old file or none. The
    message is one line that names the target, not the temporary file; ``errno`` is the system's.
    """

    def __init__(self, path: Any, cause: OSError) -> None:
        why = cause.strerror or (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(cause.errno, f"cannot write {str(path)!r}: {why}")
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


class Interrupted(KeyboardInterrupt):
    """Raised when a run of any method is interrupted (Ctrl-C) or cancelled (a :class:`CancelToken`).

    ``partial`` is the result so far as a (1, 3, H, W) tensor in [0, 1], already finished (colors
    recombined, kept region restored), or None where a method has no partial result (training, a
    video: its frames are kept on disk). ``alpha`` is the content's alpha channel or None; a front
    end renders them (``impasto.io.to_pil(stop.partial, stop.alpha)``). ``step`` is where it
    stopped; ``cancelled`` tells a token from Ctrl-C. It subclasses KeyboardInterrupt so that code
    which does not care keeps the usual behaviour.
    """

    def __init__(self, partial: Any, step: int, *, cancelled: bool = False, alpha: Any = None) -> None:
        super().__init__(f"{'cancelled' if cancelled else 'interrupted'} at step {step}")
        self.partial = partial
        self.step = step
        self.cancelled = cancelled
        self.alpha = alpha

    @property
    def image(self) -> Any:
        """The former name of :attr:`partial`."""
        return self.partial


StylizeInterrupted = Interrupted
"""The former name of :class:`Interrupted`."""
