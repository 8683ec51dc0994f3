"""A few public-domain paintings shipped with impasto (see SOURCES.md here), by name.

The names are the style names of the shipped fast model, so one name picks the same painting for
either method: the image for optimization, the learned style for the model.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import InputError


def paintings() -> dict[str, Path]:
    """Name -> file of every gallery painting."""
    folder = resources.files(__name__)
    return {Path(e.name).stem: Path(str(e)) for e in sorted(folder.iterdir(), key=lambda e: e.name)
            if e.name.endswith(".jpg")}


def painting(name: str) -> Path:
    found = paintings()
    if name not in found:
        raise InputError(f"unknown gallery painting {name!r}; valid: {', '.join(found)}", fields=("style",))
    return found[name]
