"""What the service is configured with: its limits and settings (plain data, no FastAPI).

Kept apart from :mod:`impasto.serve.app` so that ``impasto serve --help`` (which shows the limits'
defaults) and every other command build their parsers without importing the ``serve`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    max_styles: int = 4
    max_active: int = 64
    """Most jobs queued or running at once; more get 429."""


@dataclass(frozen=True)
class Settings:
    data: Path
    token: str | None = None
    limits: Limits = Limits()
    device: str | None = None
    """Device for every job (None: the config default, the CPU)."""
    worker: bool = True
    """Start the worker process (tests of the API alone turn it off)."""
    keep_days: float = 30.0
    """Finished jobs (their files and rows) are deleted this many days after they end; 0 = never."""
