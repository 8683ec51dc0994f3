"""A set of trained decoders (one per level) and its file.

The file is ``torch.save`` of plain data, read with ``weights_only=True`` (no pickled code runs):
format name and version, the levels, the width, how it was trained, and the weights in float16.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..io.atomic import atomic_path
from .decoder import LEVELS, Decoder

FORMAT = "impasto-decoders"
VERSION = 1
SHIPPED = "impasto.universal.models"


class DecoderSet(nn.Module):
    """Decoders by level; ``forward({level: features})`` decodes each."""

    def __init__(self, decoders: Mapping[str, Decoder], width: float, training: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.decoders = nn.ModuleDict(dict(decoders))
        self.width = width
        self.training_record: dict[str, Any] = dict(training or {})

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(level for level in LEVELS if level in self.decoders)

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {level: self.decoders[level](f) for level, f in features.items()}

    def save(self, path: str | os.PathLike) -> None:
        """Write the file atomically (weights in float16)."""
        data = {"format": FORMAT, "version": VERSION, "levels": list(self.levels), "width": self.width,
                "training": dict(self.training_record),
                "state_dict": {k: v.detach().cpu().half() for k, v in self.decoders.state_dict().items()}}
        with atomic_path(path) as tmp:
            torch.save(data, tmp)


def shipped_decoders() -> Path | None:
    """The decoder file shipped with impasto, if there is one."""
    try:
        folder = resources.files(SHIPPED)
    except ModuleNotFoundError:
        return None
    found = [Path(str(e)) for e in folder.iterdir() if e.name.endswith(".pt")]
    return found[0] if found else None


def load_decoders(path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> DecoderSet:
    """A decoder file (default: the shipped one); :class:`InputError` for anything that is not one."""
    if path is None:
        path = shipped_decoders()
        if path is None:
            raise InputError("no decoders are shipped with this impasto; train some with benchmarks/train_decoders.py")
    name = repr(str(path))
    if not os.path.isfile(path):
        raise InputError(f"no such decoder file: {name}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"not an impasto decoder file (or truncated): {name} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not an impasto decoder file: {name}")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise InputError(f"decoder file {name} has format version {data.get('version')}, newer than this impasto "
                         f"reads ({VERSION}); upgrade impasto")
    levels, width = data.get("levels"), data.get("width")
    if not (isinstance(levels, list) and levels and all(lv in LEVELS for lv in levels)
            and isinstance(width, (int, float)) and isinstance(data.get("state_dict"), dict)):
        raise InputError(f"decoder file {name} is incomplete (levels, width or weights missing)")
    decoders = DecoderSet({lv: Decoder(lv, float(width)) for lv in levels}, float(width), data.get("training"))
    try:
        decoders.decoders.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    except (RuntimeError, AttributeError) as exc:
        raise InputError(f"decoder file {name} does not match its levels and width: "
                         f"{str(exc).splitlines()[0]}") from None
    return decoders.eval().requires_grad_(False).to(device)
