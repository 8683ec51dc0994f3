"""Validators and helpers shared by every settings class; imports nothing of impasto but its errors.

Settings are frozen dataclasses of plain data (no images, no tensors), each beside its owner:
:class:`impasto.nets.NetworkConfig` (which loss network, where, at which precision),
:class:`impasto.losses.LossConfig` (the perceptual loss), and each method's own part
(:class:`impasto.optimize.OptimizeConfig`, :class:`impasto.fast.TrainingConfig`) with a
composite that holds the parts (:class:`impasto.optimize.StylizeConfig`). Validation lives in
``__post_init__`` and raises :class:`InputError` naming the *field* (``size``, not ``--size``), so a
web form or a JSON body is checked by the same code as the CLI; the front ends word it for their
users. :func:`options_for` routes flat ``name=value`` options to the part that owns each name.
The service's log settings live here too (:data:`LOG_LEVELS`, :func:`configure_logging`): the
command line reads them before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import sys
from collections.abc import Sequence
from typing import Any

from .errors import InputError

LOG_LEVELS = ("debug", "info", "warning", "error")
"""What ``impasto serve --log-level`` takes, for the server and its workers."""

PRECISIONS = ("auto", "fp32", "bf16")
DEVICE_CHOICES = ("cpu", "cuda", "mps", "auto")  # "cuda:1" and the like are accepted too

__all__ = [
    "DEVICE_CHOICES",
    "LOG_LEVELS",
    "PRECISIONS",
    "as_tuples",
    "choice",
    "configure_logging",
    "non_negative",
    "options_for",
    "parse_int",
    "positive",
    "positive_int",
]


def configure_logging(level: str) -> None:
    """The service's processes log to stderr under ``impasto.*``, one line per record with its time,
    level and process, at ``level`` and above (the library itself never configures logging)."""
    if level not in LOG_LEVELS:
        raise InputError(f"log level must be one of {', '.join(LOG_LEVELS)}; got {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("impasto")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def options_for(parts: Sequence[type], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Split flat ``name=value`` options into one dict per dataclass in ``parts``.

    Field names are unique across the parts of a composite config; an unknown name is refused
    with the list of valid ones.
    """
    owners = {f.name: i for i, part in enumerate(parts) for f in dataclasses.fields(part)}
    unknown = sorted(set(options) - set(owners))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(owners))}")
    split: list[dict[str, Any]] = [{} for _ in parts]
    for name, value in options.items():
        split[owners[name]][name] = value
    return split


# Validators shared by every config part; each names the field and the valid values.

ASCII_SPACE = " \t\r\n"
MAX_BLEND_WEIGHT = 1e6
"""The largest style blend weight: weights are ratios, and 1e308 overflowed their sum to inf, which
left no style at all."""


def blend_weights(name: str, weights: Any) -> None:
    """Blend weights: each a finite number from 0 to :data:`MAX_BLEND_WEIGHT`, not all 0."""
    if not weights or isinstance(weights, (str, bytes)):
        raise InputError(f"{name} must be numbers from 0 to {MAX_BLEND_WEIGHT:g}, not all 0", fields=(name,))
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
                or not 0 <= w <= MAX_BLEND_WEIGHT:
            raise InputError(f"{name} must be numbers from 0 to {MAX_BLEND_WEIGHT:g}, not all 0; got {w!r}",
                             fields=(name,))
    if sum(weights) <= 0:
        raise InputError(f"{name} must be numbers from 0 to {MAX_BLEND_WEIGHT:g}, not all 0; they sum to 0",
                         fields=(name,))

def parse_int(text: str) -> int:
    """An integer written in plain ASCII digits, with an optional leading minus (``int()`` also takes
    ``'+64'``, ``'1_28'`` and other scripts' digits, which no form or flag should). Only ASCII
    spaces around it are dropped (not a no-break space)."""
    stripped = text.strip(ASCII_SPACE)
    if not re.fullmatch(r"-?[0-9]{1,30}", stripped):
        raise ValueError(f"not a plain integer: {text[:40]!r}")
    return int(stripped)


_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def parse_float(text: str) -> float:
    """A finite number written in plain ASCII (``0.5``, ``-1e-3``): ``float()`` also takes other
    scripts' digits (``'٠.٥'``), ``'1_0'``, ``'nan'`` and ``'inf'``, which no form or flag should;
    only ASCII spaces around it are dropped (``'0.5\xa0'`` is refused)."""
    stripped = text.strip(ASCII_SPACE)
    if len(stripped) > 40 or not _FLOAT.fullmatch(stripped):
        raise ValueError(f"not a plain finite number: {text[:40]!r}")
    value = float(stripped)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text[:40]!r}")
    return value


def as_tuples(obj: Any, names: Sequence[str]) -> None:
    """Turn list values of frozen dataclass fields into tuples (hashable, immutable)."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, tuple):
            object.__setattr__(obj, name, tuple(value))


MAX_INT_OPTION = 2**31 - 1
"""The largest value of any integer option unless it has a tighter range: every integer has a
range, so none overflows the 64-bit arithmetic of the code it reaches (an option of 2**63 used to
kill a worker)."""


def positive_int(name: str, value: Any, maximum: int = MAX_INT_OPTION) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive integer; got {_shown(value)}", fields=(name,))
    if value > maximum:
        raise InputError(f"{name} must be from 1 to {maximum}; got {_shown(value)}", fields=(name,))


def non_negative_int(name: str, value: Any, maximum: int = MAX_INT_OPTION) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be an integer >= 0; got {_shown(value)}", fields=(name,))
    if value > maximum:
        raise InputError(f"{name} must be from 0 to {maximum}; got {_shown(value)}", fields=(name,))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number; got {value!r}", fields=(name,))


def non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0; got {value!r}", fields=(name,))


def choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; valid: {', '.join(choices)}", fields=(name,))
