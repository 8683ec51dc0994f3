"""The perceptual loss's settings: weights, layers, and the kind of style statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import as_tuples, blend_weights, choice, non_negative, positive, positive_int
from ..errors import InputError
from ..nets.config import NetworkConfig
from ..nets.vgg import CONTENT_LAYERS, check_layers
from .basic import NORMALIZATIONS
from .style import STYLE_LOSSES

# --strength s in [0, 1] maps to style_weight = STRENGTH_MAX ** s (s = 0: no style at all).
# Geometric, because the look changes with the ratio of the weights, not their difference: each
# 0.2 step multiplies the style weight by about 4. The default style_weight 15 is strength 0.39.
STRENGTH_MAX = 1000.0
DEFAULT_STYLE_WEIGHT = 15.0
MAX_STYLE_COPIES = 16
"""The most rotated or scaled copies of each style image (each costs a pass of the network)."""
MAX_STYLE_SCALE = 8.0


def strength_to_style_weight(strength: float) -> float:
    return 0.0 if strength == 0 else STRENGTH_MAX**strength


MAX_MRF_STRIDE = 64
"""Style patches sampled every N positions: past 64 a style image gives almost no patches."""


@dataclass(frozen=True)
class LossConfig:
    """The perceptual loss: alpha * content + beta * style + gamma * TV (plus any extra terms)."""

    content_weight: float = 1.0
    """alpha: weight of the content loss (relative squared error of the content activations)."""
    style_weight: float | None = None
    """beta: weight of the style loss (mean relative squared error of the Gram matrices);
    None = 15, or what ``strength`` gives."""
    strength: float | None = None
    """0..1 single style knob; sets the style weight to 1000 ** strength (exclusive with style_weight)."""
    tv_weight: float = 1.0
    """gamma: weight of the total-variation (smoothness) loss on the image."""
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] | None = None
    """None = the style loss's own default (gram, meancov: relu1_1..relu5_1; mrf: relu3_1, relu4_1)."""
    style_loss: str = "gram"
    """'gram' (Gatys), 'meancov' (Wasserstein-2 between feature Gaussians) or 'mrf' (Li & Wand patches)."""
    mrf_stride: int = 2
    """MRF: stride at which style patches are sampled (1 = all of them; slower)."""
    style_layer_weights: tuple[float, ...] | None = None
    """One weight per style layer; None = auto (each layer's loss relative to its target, averaged)."""
    style_layer_factors: tuple[float, ...] | None = None
    """One factor per style layer multiplying its auto weight: the losses stay relative to their
    targets, one layer counts more (``1,1,1,1,3``: relu5_1 three times). Not with style_layer_weights."""
    style_blend_weights: tuple[float, ...] | None = None
    """One weight per style image; None = equal. Normalized to sum to 1."""
    normalization: str = "chw"
    """Gram/loss normalization: 'chw' (Gram / C*H*W, mean squared error) or 'paper' (1/(4 N^2 M^2))."""
    style_rotations: tuple[float, ...] = ()
    """Augment the style with copies rotated by these angles (degrees)."""
    style_scales: tuple[float, ...] = ()
    """Augment the style with copies scaled by these factors."""
    style_scale: float = 1.0
    """Style image's long edge relative to the output's long edge."""

    def __post_init__(self) -> None:
        as_tuples(self, ("content_layers", "style_layers", "style_layer_weights", "style_layer_factors",
                         "style_blend_weights", "style_rotations", "style_scales"))
        for name in ("content_weight", "tv_weight"):
            non_negative(name, getattr(self, name))
        if self.style_weight is not None:
            non_negative("style_weight", self.style_weight)
        if self.strength is not None:
            if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) \
                    or not 0 <= self.strength <= 1:
                raise InputError(f"strength must be a number from 0 to 1; got {self.strength!r}", fields=("strength",))
            if self.style_weight is not None:
                raise InputError("give either strength or style_weight, not both", fields=("strength", "style_weight"))
        choice("style_loss", self.style_loss, tuple(STYLE_LOSSES))
        positive_int("mrf_stride", self.mrf_stride, MAX_MRF_STRIDE)
        for name in ("style_rotations", "style_scales"):
            if len(getattr(self, name)) > MAX_STYLE_COPIES:
                raise InputError(f"{name}: at most {MAX_STYLE_COPIES} copies; got {len(getattr(self, name))}",
                                 fields=(name,))
        for angle in self.style_rotations:
            if not isinstance(angle, (int, float)) or not math.isfinite(angle):
                raise InputError(f"style_rotations: each must be a number of degrees; got {angle!r}",
                                 fields=("style_rotations",))
        for factor in self.style_scales:
            positive("style_scales", factor)
            if factor > MAX_STYLE_SCALE:
                raise InputError(f"style_scales must each be at most {MAX_STYLE_SCALE:g}; got {factor!r}",
                                 fields=("style_scales",))
        positive("style_scale", self.style_scale)
        if self.style_scale > MAX_STYLE_SCALE:
            raise InputError(f"style_scale must be at most {MAX_STYLE_SCALE:g}; got {self.style_scale!r}",
                             fields=("style_scale",))
        if self.content_weight == 0 and self.effective_style_weight == 0:
            raise InputError("content_weight and style_weight are both 0: nothing to optimize",
                             fields=("content_weight", "style_weight"))
        if not self.content_layers and not self.style_layer_names:
            raise InputError("no content layers and no style layers: nothing to optimize")
        choice("normalization", self.normalization, NORMALIZATIONS)
        if self.style_layer_weights is not None and self.style_layer_factors is not None:
            raise InputError("give style_layer_weights (absolute) or style_layer_factors (times the auto "
                             "weights), not both", fields=("style_layer_weights", "style_layer_factors"))
        for name in ("style_layer_weights", "style_layer_factors"):
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) != len(self.style_layer_names):
                raise InputError(f"{len(values)} {name.replace('_', ' ')} for {len(self.style_layer_names)} "
                                 "style layers; give one per layer", fields=(name,))
            for w in values:
                non_negative(name, w)
        if self.style_blend_weights is not None:
            blend_weights("style_blend_weights", self.style_blend_weights)

    @property
    def effective_style_weight(self) -> float:
        """beta as used: style_weight, or 1000 ** strength, or the default 15."""
        if self.strength is not None:
            return strength_to_style_weight(self.strength)
        return DEFAULT_STYLE_WEIGHT if self.style_weight is None else float(self.style_weight)

    @property
    def style_layer_names(self) -> tuple[str, ...]:
        """The style layers in use: the given ones, or the style loss's defaults."""
        if self.style_layers is not None:
            return self.style_layers
        return STYLE_LOSSES[self.style_loss].default_layers

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the network must compute."""
        return self.content_layers + self.style_layer_names

    def check_network(self, network: NetworkConfig) -> None:
        """Refuse layers the network does not have (a weights file is checked once it is read)."""
        if network.arch is not None:
            check_layers(self.layers, network.arch)

    def check_styles(self, n_styles: int) -> None:
        """Validate what depends on the number of style images."""
        if n_styles < 1:
            raise InputError("at least one style image is needed")
        if self.style_blend_weights is not None and len(self.style_blend_weights) != n_styles:
            raise InputError(
                f"{len(self.style_blend_weights)} style blend weights for {n_styles} style images; "
                "give one per style image", fields=("style_blend_weights",)
            )
