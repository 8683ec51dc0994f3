"""The process and the device: allocator tuning for long CPU runs, device choice, precision.

Nothing here runs at import; the CLI and the benchmarks call :func:`tune_allocator`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import torch

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


MULTI_DEVICE = ("impasto stylize with the optimization (a print-size image's tiles) and impasto serve "
                "(one worker each)")
"""What takes a device list."""


def resolve_devices(names: str) -> list[torch.device]:
    """A comma-separated device list (``cuda:0,cuda:1``, ``cpu,cpu``), each entry as :func:`resolve_device`."""
    entries = [e.strip() for e in str(names).split(",")]
    if not all(entries):
        raise InputError(f"device list {names!r} has an empty entry; give e.g. cuda:0,cuda:1", fields=("device",))
    return [resolve_device(e) for e in entries]


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must be available (for ``cuda:N``,
    N must be one of this machine's GPUs). Checked before any work, with one line naming the device."""
    name = str(name).strip()  # as each entry of a list is: one parser for every command
    if "," in name:
        raise InputError(f"a device list ({name}) is taken by {MULTI_DEVICE}; this takes one device",
                         fields=("device",))
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps else torch.device("cpu")
    kind, _, index = str(name).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise InputError(f"unknown device {name!r}; valid: cpu, cuda, cuda:N, mps, auto", fields=("device",))
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available; use device cpu or auto",
                         fields=("device",))
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise InputError(f"device {name!r}: this machine has {n} CUDA device{'s' if n != 1 else ''} "
                         f"(cuda:0 to cuda:{n - 1})", fields=("device",))
    if kind == "mps" and not mps:
        raise InputError(f"device {name!r} requested but MPS is not available; use device cpu or auto",
                         fields=("device",))
    return torch.device(name)


@functools.cache
def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (decides ``precision="auto"`` on the CPU).

    Why: oneDNN runs bfloat16 convolutions on AMX tiles (Intel Xeon since Sapphire Rapids) or
    AVX512-BF16 dot products (Intel Cooper Lake, AMD Zen 4 and later), and on Arm's BF16
    instructions (Apple M2 and later, Neoverse V1/N2, Graviton 3). There they run 3-6x faster than
    float32 (measured on a 2-core Xeon with AMX: 935-2267 against 291-399 GFLOP/s for a 3x3
    convolution's forward and backward). Every other CPU emulates bfloat16 with conversions,
    slower than float32, so 'auto' keeps float32 there. The answer is what the CPU reports: its
    feature flags as torch reads them (x86), /proc/cpuinfo (Linux on Arm), or sysctl (macOS).
    """
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "x86", "i686", "i386"):
        cpu = torch.cpu
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    if machine in ("arm64", "aarch64"):
        return _arm_bf16()
    return False


def _arm_bf16() -> bool:
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5)
        except (OSError, subprocess.SubprocessError):
            return False
        return out.stdout.strip() == "1"
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("Features") and "bf16" in line.split() for line in fh)
    except OSError:
        return False


class SlowPrecisionWarning(UserWarning):
    """bfloat16 was asked for on a device that only emulates it."""


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: bfloat16, or None for float32.

    ``precision`` is 'fp32', 'bf16' or 'auto': bfloat16 on a CUDA GPU that supports it and on a
    CPU with bfloat16 units (:func:`cpu_has_bf16_units`), float32 elsewhere. 'bf16' where it would
    be emulated is honoured, with a :class:`SlowPrecisionWarning`.
    """
    if precision == "fp32":
        return None
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        native = cpu_has_bf16_units()
    else:  # MPS and others: float32 unless asked
        native = False
    if precision == "bf16":
        if not native:
            where = "this CPU has no bfloat16 units (AMX, AVX512-BF16 or Arm BF16)" if device.type == "cpu" \
                else f"{device.type} does not run bfloat16 natively"
            warnings.warn(f"precision bf16 is emulated here and slower than fp32: {where}",
                          SlowPrecisionWarning, stacklevel=2)
        return torch.bfloat16
    return torch.bfloat16 if native else None


AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")
"""The device types with an autocast."""


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> Any:
    """Mixed precision in ``dtype`` on ``device`` (autocast), or no context at all for None (float32).

    ``dtype=None`` opens nothing, rather than a disabled autocast: so that code runs on any device
    (the ``meta`` device that the device tests use has no autocast), and float32 pays for no
    context. Inside an outer autocast, a region that must be float32 uses :func:`no_autocast`."""
    if dtype is None:
        return contextlib.nullcontext()
    # no cast cache: it saves nothing here (each leaf is cast once per region), and a CUDA graph's
    # capture needs it off
    return torch.autocast(torch.device(device).type, dtype=dtype, cache_enabled=False)


def no_autocast(device: torch.device | str) -> Any:
    """Leave an outer autocast on ``device`` for a float32 region (nothing to do where none is on)."""
    kind = torch.device(device).type
    if kind in AUTOCAST_DEVICES and torch.is_autocast_enabled(kind):
        return torch.autocast(kind, enabled=False)
    return contextlib.nullcontext()


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or refuse with the install command that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"this needs the optional package {module!r}: pip install 'impasto[{extra}]'") from None


@dataclass(frozen=True)
class Ranks:
    """This process's place in a distributed run (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK)."""

    world: int = 1
    rank: int = 0
    local: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes samples, checkpoints and the model."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        try:
            return cls(int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
                       int(os.environ.get("LOCAL_RANK", "0")))
        except ValueError:
            raise InputError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None


def join(ranks: Ranks, device: torch.device, batch_size: int) -> torch.device:
    """This rank's device (``device``, or in a run on GPUs the rank's own GPU); in a distributed run,
    the process group (NCCL on GPUs, gloo on CPUs). Training of any kind calls it once."""
    if ranks.world == 1:
        return device
    if batch_size % ranks.world:
        raise InputError(f"batch_size {batch_size} is not divisible by the {ranks.world} processes of this run; "
                         f"give a multiple of {ranks.world}", fields=("batch_size",))
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", ranks.local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _OWNED_GROUPS.append(True)  # taken down at the end (see leave)
    return device


_OWNED_GROUPS: list[bool] = []


def leave(ranks: Ranks) -> None:
    """End a distributed run together: wait for every rank (rank 0 writes the files last), then take
    down the process group :func:`join` made, so that no rank exits while a peer still talks to it
    (gloo aborts a process whose peer vanished mid-teardown)."""
    if ranks.world == 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        if _OWNED_GROUPS:
            _OWNED_GROUPS.clear()
            dist.destroy_process_group()


def all_finite(tensors: Any) -> torch.Tensor:
    """Whether every value of ``tensors`` (an iterable of tensors: gradients, parameters) is finite,
    as a bool tensor on their device: no host sync until the caller reads it."""
    found = [t.detach() for t in tensors if t is not None]
    if not found:
        return torch.ones((), dtype=torch.bool)
    return torch.stack(torch._foreach_norm(found)).isfinite().all()


def check_finite(module: torch.nn.Module, what: str) -> None:
    """Refuse to write ``what`` from weights that are not finite (the last good file stays): one
    check for every trainer's checkpoints and results."""
    from .errors import NonFiniteLossError

    if not bool(all_finite(module.parameters())):
        raise NonFiniteLossError(f"the weights are not finite: no {what} written; the last checkpoint is kept "
                                 "(try a lower lr)")
