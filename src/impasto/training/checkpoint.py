"""One checkpoint format for every trainer: what a run needs to go on (``OUTPUT.ckpt``).

``{"format": "impasto-checkpoint", "version": 2, "kind": "fast" | "decoders", "step", "seconds",
"skipped_steps", "config" (the run's flat settings), "model" (the trained module's state),
"optimizer", "extra" (the trainer's own: a fast model's style names)}``, read with
``weights_only`` (no pickled code runs). The two formats before it (the fast models' version 1,
``net`` and ``styles`` at the top; the decoders' ``impasto-decoders-checkpoint``) are read too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..io.atomic import atomic_path
from ..runtime import check_finite
from .loop import LoopState

FORMAT = "impasto-checkpoint"
VERSION = 2
_DECODERS_V1 = "impasto-decoders-checkpoint"

RESUMABLE = frozenset({"steps", "max_minutes", "checkpoint_every", "sample_every", "workers", "device", "precision",
                       "seed", "max_skipped"})
"""Settings a resumed run may change: how long and how often, where and how fast, not what it learns."""


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where the run writing ``output`` keeps its checkpoint."""
    return Path(str(output) + ".ckpt")


def save_checkpoint(path: Path, *, kind: str, state: LoopState, config: dict[str, Any], net: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None) -> None:
    """Write the checkpoint atomically; refused (the old one kept) if a weight is not finite."""
    check_finite(net, "checkpoint")
    data = {"format": FORMAT, "version": VERSION, "kind": kind, "step": state.step, "seconds": state.seconds,
            "skipped_steps": list(state.skipped_steps), "config": config, "model": net.state_dict(),
            "optimizer": optimizer.state_dict(), "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def read_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """A checkpoint's contents in this version's layout (older formats converted), read without
    running pickled code; refused with one line if it is not a readable checkpoint (of ``kind``)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read checkpoint {str(path)!r} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, _DECODERS_V1):
        raise InputError(f"not an impasto checkpoint: {str(path)!r}")
    if data["format"] == _DECODERS_V1:
        data = {**data, "kind": "decoders", "model": data.pop("decoders"), "extra": {}}
    elif data.get("version", 1) == 1:  # the fast models' first format
        data = {**data, "kind": "fast", "model": data.pop("net"), "extra": {"styles": data.pop("styles")}}
    if kind is not None and data["kind"] != kind:
        raise InputError(f"checkpoint {str(path)!r} is a {data['kind']} checkpoint, not a {kind} one")
    seconds = float(data.get("seconds", 0.0))
    data["seconds"] = 0.0 if math.isnan(seconds) else seconds
    data.setdefault("skipped_steps", [])
    return data


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def check_resume(path: Path, saved: dict[str, Any], now: dict[str, Any], *, what: str = "train a new model") -> None:
    """Refuse to resume with settings other than the checkpoint's (beyond :data:`RESUMABLE`), naming them."""
    differ = sorted(k for k in now if k not in RESUMABLE and k in saved and _plain(saved[k]) != _plain(now[k]))
    if differ:
        def shown(value: Any) -> str:
            return "default" if value is None else repr(value)

        said = ", ".join(f"{k} {shown(saved[k])} (now {shown(now[k])})" for k in differ)
        raise InputError(f"checkpoint {str(path)!r} was trained with other settings: {said}; give the same "
                         f"settings to resume, or {what}", fields=tuple(differ))


def resume(path: Path, *, kind: str, state: LoopState, config: dict[str, Any], net: torch.nn.Module,
           optimizer: torch.optim.Optimizer, what: str = "train a new model") -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``net``, ``optimizer`` and ``state`` after checking its
    settings; returns it (for the trainer's own ``extra``)."""
    if not path.exists():
        raise InputError(f"nothing to resume: no checkpoint {str(path)!r}", fields=("resume",))
    data = read_checkpoint(path, kind)
    check_resume(path, data.get("config", {}), config, what=what)
    net.load_state_dict(data["model"])
    optimizer.load_state_dict(data["optimizer"])
    state.step, state.seconds = int(data["step"]), float(data["seconds"])
    state.skipped_steps = [int(s) for s in data["skipped_steps"]]
    return data
