"""What a running job tells its caller, and how the caller stops it.

The library never prints: every method calls ``callback(event)`` with a small dataclass after
each step, and the front end turns events into a progress bar (CLI), a log, or a stream (web).
Stopping is a :class:`CancelToken` that the loop checks before every step, so a web worker can
cancel a run as well as Ctrl-C can.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


class CancelToken:
    """Set from any thread (or a signal handler); the running loop stops before its next step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every running method reports after each unit of work (an iteration, a training step, a
    video frame): a front end that handles this base class handles every method."""

    work: float = 0.0
    """Fraction of the run's work done, 0..1: what a progress bar and an ETA should use."""
    elapsed: float = 0.0
    """Seconds since the run started."""
    losses: dict[str, float] = field(default_factory=dict)
    """Named loss terms of the last step ('content', 'style', 'tv'..., and 'total'), if any."""
    _render: Callable[[], Tensor | None] | None = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> str:
        """One line for a log or a status field ('step 3 of 100')."""
        return f"{self.work:.0%}"

    @property
    def final(self) -> bool:
        """True for an event a reporter should not drop (the last step, each video frame)."""
        return self.work >= 1.0

    def tensor(self) -> Tensor | None:
        """The current result, (1, 3, H, W) in [0, 1], computed when asked; None if the method has none."""
        return self._render() if self._render is not None else None

    def image(self) -> Any:
        """The current result as a PIL image (computed when asked), or None."""
        from .io.image import to_pil

        x = self.tensor()
        return None if x is None else to_pil(x)


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    """One optimization iteration, passed to the ``callback`` of :func:`impasto.stylize`. Its
    ``losses`` are the objective's named terms (unweighted) and 'total' (weighted) at the start of
    the step; its ``work`` weights iterations by the pixels they optimize (a full-size iteration
    counts 16 times a quarter-size one); ``elapsed`` includes loading and targets."""

    step: int
    """Iterations done so far (1-based)."""
    iterations: int
    """Iterations in the whole run (all scales)."""
    size: tuple[int, int]
    """(height, width) being optimized."""
    setup: float
    """Seconds from the start of the run to its first iteration (loading, network, targets)."""
    scale: int
    """Index of the current scale of the coarse-to-fine pyramid (0 = coarsest)."""
    scales: int
    """Number of scales."""

    @property
    def message(self) -> str:
        scale = f", scale {self.scale + 1} of {self.scales}" if self.scales > 1 else ""
        return f"step {self.step} of {self.iterations}{scale}"

    @property
    def final(self) -> bool:
        return self.step == self.iterations


@dataclass(frozen=True, kw_only=True)
class Preview(Event):
    """A first look, before a run's first step: the image it starts from, painted in one pass by
    ``method`` (``init="wct"``), which the optimization then refines. ``tensor()`` is that image."""

    method: str

    @property
    def message(self) -> str:
        return f"painted by {self.method} in one pass; refining"

    @property
    def final(self) -> bool:
        return True  # one event, worth showing at once


@dataclass(frozen=True, kw_only=True)
class TrainProgress(Event):
    """One training step of a fast model."""

    step: int
    steps: int
    images_per_second: float

    @property
    def message(self) -> str:
        return f"step {self.step} of {self.steps}, {self.images_per_second:.1f} img/s"

    @property
    def final(self) -> bool:
        return self.step == self.steps


@dataclass(frozen=True, kw_only=True)
class FrameProgress(Event):
    """One video frame done; ``tensor()`` is that frame as stylized."""

    frame: int
    """Frames done so far (1-based), resumed ones included."""
    frames: int | None
    """Frames in the run, if known."""
    resumed: int = 0
    """Frames taken from an earlier run's work folder."""

    @property
    def message(self) -> str:
        total = f" of {self.frames}" if self.frames else ""
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        return f"frame {self.frame}{total}{resumed}"

    @property
    def final(self) -> bool:
        return True  # frames are few and slow: every one is worth reporting


Callback = Callable[[Event], Any]
