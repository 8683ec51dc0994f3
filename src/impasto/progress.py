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


@dataclass(frozen=True)
class Progress:
    """One event per iteration, passed to the ``callback`` of :func:`impasto.stylize`."""

    step: int
    """Iterations done so far (1-based)."""
    iterations: int
    """Iterations in the whole run (all scales)."""
    losses: dict[str, float]
    """The objective's named terms (unweighted: 'content', 'style', 'tv', and any extra terms)
    and 'total' (weighted), at the start of this step."""
    elapsed: float
    """Seconds since the run started (loading and targets included)."""
    size: tuple[int, int]
    """(height, width) being optimized."""
    setup: float
    """Seconds from the start of the run to its first iteration (loading, network, targets)."""
    scale: int
    """Index of the current scale of the coarse-to-fine pyramid (0 = coarsest)."""
    scales: int
    """Number of scales."""
    work: float
    """Fraction of the run's work done, 0..1 (iterations weighted by the pixels they optimize, so a
    full-size iteration counts 16 times a quarter-size one): what an ETA should use."""
    _render: Callable[[], Tensor] = field(repr=False, compare=False)

    def tensor(self) -> Tensor:
        """The current image as it would be output, (1, 3, H, W) in [0, 1] (computed when asked)."""
        return self._render()

    def image(self) -> Any:
        """The current image as a PIL image (computed when asked)."""
        from .io.image import to_pil

        return to_pil(self._render())


Callback = Callable[[Progress], Any]
