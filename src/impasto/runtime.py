"""The process and the device: allocator tuning for long CPU runs, device choice, precision.

Nothing here runs at import; the CLI and the benchmarks call :func:`tune_allocator`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

import torch

from .config import NetworkConfig
from .errors import InputError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Keep glibc from returning large blocks to the OS after every iteration.

    Each iteration allocates and frees the same activation-sized buffers (50 MB each at 512 px).
    By default glibc serves them with fresh mmap()s, so every iteration pays page faults on first
    touch; measured at 512 px on a 2-core CPU this costs about 15% of an iteration. Raising the
    mmap and trim thresholds lets freed blocks be reused. Peak memory is unchanged (the same
    blocks are reused); only the return of memory to the OS is deferred. Returns True if applied.
    Safe to call more than once; does nothing off glibc.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(1 << 30)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1)) == 1 and ok
    _done = ok
    return ok


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must be available."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available; use device cpu or auto")
    if name.startswith("mps") and not mps:
        raise InputError(f"device {name!r} requested but MPS is not available; use device cpu or auto")
    return torch.device(name)


def autocast_dtype(network: NetworkConfig, device: torch.device) -> torch.dtype | None:
    """bfloat16 for 'bf16', and for 'auto' on a CUDA GPU that supports it; None = float32."""
    if network.precision == "bf16":
        return torch.bfloat16
    if network.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or refuse with the install command that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"this needs the optional package {module!r}: pip install 'impasto[{extra}]'") from None
