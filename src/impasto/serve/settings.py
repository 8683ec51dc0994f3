"""What the service is configured with: its limits and settings (plain data, no FastAPI).

Kept apart from :mod:`impasto.serve.app` so that ``impasto serve --help`` (which shows the limits'
defaults) and every other command build their parsers without importing the ``serve`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..jobs.database import LEASE, QUEUE_ENV

__all__ = ["QUEUE_ENV", "Limits", "Settings"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_upload_mb: float = 25.0
    """Largest request body (all files together)."""
    max_input_pixels: int = 40_000_000
    """Largest image an upload may decode to (decompression bombs are refused from the header)."""
    max_size: int = 2048
    """Largest output long edge."""
    max_iterations: int = 1000
    """Most iterations per scale."""
    max_video_seconds: float = 20.0
    """Longest video a job may stylize."""
    max_video_frames: int = 600
    """Most frames a video job may have (20 s at 30 fps): seconds alone let a 1000 fps clip through."""
    max_work: float = 400.0
    """Most work one job may ask for, in megapixel-iterations summed over its scales (the defaults at
    512 px are about 6.5, at 2048 px about 85)."""
    max_video_work: float = 4000.0
    """Most work one video job may ask for, in megapixel-iterations (its first frame as an image, then
    each later frame at its size times its iterations: 600 frames at 512 px are about 1,600, at
    2048 px about 25,000)."""
    max_styles: int = 4
    max_active: int = 64
    """Most jobs queued or running at once; more get 429."""


@dataclass(frozen=True)
class Settings:
    data: Path
    token: str | None = None
    queue: str | None = None
    """The job queue's database: a ``postgresql://`` URL shared by every machine, or None for SQLite in ``data``."""
    lease: float = LEASE
    """Seconds a worker's claim holds its job between heartbeats (a dead worker's job is requeued after it)."""
    limits: Limits = Limits()
    device: str | None = None
    """Device for every job (None: the config default, the CPU); a comma-separated list
    (``cuda:0,cuda:1``) gives the workers their devices in turn."""
    worker: bool = True
    """Start the worker processes (tests of the API alone turn it off)."""
    workers: int = 1
    """How many worker processes run jobs side by side (one per GPU, say); 0: the web process alone,
    with workers started elsewhere (``impasto worker``) on the same queue."""
    keep_days: float = 30.0
    """Finished jobs (their files and rows) are deleted this many days after they end; 0 = never."""
    snapshot_every: float = 5.0
    """Seconds between an optimize job's snapshots (also one at each scale's end); 0 = scale ends only."""
    log_level: str = "info"
    """The workers' log level (debug, info, warning, error), as the server's."""

    def devices(self) -> list[str | None]:
        """The device of each worker, in order."""
        given: list[str | None] = [d.strip() for d in (self.device or "").split(",") if d.strip()]
        given = given or [None]
        return [given[i % len(given)] for i in range(self.workers)]
