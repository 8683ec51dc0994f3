"""Snapshots of an optimization: where a run is (its scale, its step there, its image), so that a
run stopped by a crash, a kill -9 or a reboot continues from there instead of from the start.

:func:`impasto.optimize.pipeline.stylize` hands them out (``snapshot=``) and takes one back
(``resume=``); :func:`save_snapshot` and :func:`load_snapshot` keep one in a file, written
atomically, so the file is always a whole snapshot (the last one, or the one before it).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from ..io.atomic import atomic_path

VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """A run after ``step`` steps of scale ``scale`` (0 = the coarsest), whose size is ``size``."""

    scale: int
    step: int
    size: tuple[int, int]
    """(height, width) of that scale: a snapshot of another pyramid is refused."""
    image: Tensor
    """The iterate at that scale, (1, 3, H, W) float32 on the CPU, in the optimizer's space."""
    work: float
    """The fraction of the run's work done (what a job reports as ``resumed_from``)."""


def save_snapshot(snapshot: Snapshot, path: str | os.PathLike) -> None:
    """Write ``snapshot`` to ``path`` atomically (a failed write raises WriteError, keeping the old one)."""
    data = {"version": VERSION, "scale": snapshot.scale, "step": snapshot.step, "size": list(snapshot.size),
            "work": float(snapshot.work), "image": snapshot.image.detach().float().cpu().contiguous()}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_snapshot(path: str | os.PathLike) -> Snapshot | None:
    """The snapshot in ``path``, or None if there is none or it cannot be used (unreadable, another
    version): a run then starts from the beginning, which is always correct."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        image = data["image"]
        h, w = (int(v) for v in data["size"])
        if data["version"] != VERSION or not isinstance(image, Tensor) or image.shape != (1, 3, h, w) \
                or not torch.isfinite(image).all():
            return None
        return Snapshot(scale=int(data["scale"]), step=int(data["step"]), size=(h, w), image=image.float(),
                        work=float(data["work"]))
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file: not a snapshot to trust
        return None


class Snapshots(Protocol):
    """Where a run keeps its snapshots (see :class:`SnapshotFile`)."""

    every: float
    """Seconds between snapshots (0: at scale ends only)."""

    def load(self) -> Snapshot | None: ...

    def save(self, snapshot: Snapshot) -> None: ...

    def resumed(self, snapshot: Snapshot) -> None: ...


class SnapshotFile:
    """A run's snapshots in one file, each replacing the last atomically.

    ``load()`` the last one (None if none, or if it is unreadable); ``save(s)``; ``resumed(s)`` is
    called by the run that continues from ``s``, and sets :attr:`resumed_from` (its work fraction);
    ``remove()`` once the run's result is kept.
    """

    def __init__(self, path: str | os.PathLike, every: float = 5.0,
                 start_from: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.start_from = None if start_from is None else Path(start_from)
        """Read when ``path`` holds no snapshot yet (an earlier attempt's file); never written."""
        self.every = every
        """Seconds between snapshots (one is also saved at each scale's end; 0 = at scale ends only)."""
        self.resumed_from: float | None = None
        self.saved = 0
        self.seconds = 0.0
        """How many snapshots were written, and the seconds spent writing them."""

    def load(self) -> Snapshot | None:
        found = load_snapshot(self.path)
        if found is None and self.start_from is not None:
            found = load_snapshot(self.start_from)
        return found

    def save(self, snapshot: Snapshot) -> None:
        start = time.perf_counter()
        save_snapshot(snapshot, self.path)
        self.saved += 1
        self.seconds += time.perf_counter() - start

    def resumed(self, snapshot: Snapshot) -> None:
        self.resumed_from = snapshot.work

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
