"""Style losses behind one interface, and their registry.

A style loss is a class with three methods, registered with ``@register_style_loss``:

* ``target(style_features)`` -> the statistics of one style image at one layer, computed once
  (``style_features`` is a list: the style image and any augmented copies of it);
* ``loss(features, target, mask)`` -> a scalar; ``mask`` (N, 1, H, W) in [0, 1] restricts it to a
  region of the image (None = everywhere);
* ``scale(target)`` -> the loss of a blank image, so that the auto layer weight 1/scale turns the
  loss into a relative error comparable across layers and kinds.

``weight_scale`` calibrates a kind against the Gram loss, so that one ``--style-weight`` (or
``--strength``) gives a similar amount of stylization whatever the loss: relative errors of
different statistics do not fall at the same rate, nor over the same number of iterations. Set
by eye on the example pair at 512 px with the default schedule (mrf 0.27 and meancov 0.5 against
gram at the default weight 15); see the README's comparison (benchmarks/readme_examples.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import InputError
from .basic import gram_matrix, style_loss

GRAM_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class StyleLossOptions:
    """Settings shared by the style losses (each kind reads the ones it needs)."""

    normalization: str = "chw"
    patch_size: int = 3
    """MRF: side of the neural patches."""
    patch_stride: int = 2
    """MRF: stride at which style patches are sampled (1 = every patch; 2 = a quarter of them)."""
    chunk: int = 1024
    """MRF: style patches matched per convolution, bounding the memory of the matching."""


class StyleLossKind:
    """Base class; see the module docstring."""

    name: ClassVar[str]
    default_layers: ClassVar[tuple[str, ...]] = GRAM_LAYERS
    weight_scale: ClassVar[float] = 1.0

    def __init__(self, options: StyleLossOptions | None = None) -> None:
        self.options = options or StyleLossOptions()

    def target(self, style_features: list[Tensor]) -> Any:
        raise NotImplementedError

    def loss(self, features: Tensor, target: Any, mask: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def scale(self, target: Any) -> float:
        raise NotImplementedError

    def check(self, layer: str, image_hw: tuple[int, int], style_hw: tuple[int, int]) -> None:
        """Raise InputError if ``layer`` at these feature sizes cannot hold this loss."""


STYLE_LOSSES: dict[str, type[StyleLossKind]] = {}


def register_style_loss(cls: type[StyleLossKind]) -> type[StyleLossKind]:
    """Class decorator: make ``cls`` selectable by its ``name`` (``--style-loss NAME``)."""
    STYLE_LOSSES[cls.name] = cls
    return cls


def get_style_loss(name: str, options: StyleLossOptions | None = None) -> StyleLossKind:
    if name not in STYLE_LOSSES:
        raise InputError(f"unknown style loss {name!r}; valid: {', '.join(STYLE_LOSSES)}")
    return STYLE_LOSSES[name](options)


@register_style_loss
class GramLoss(StyleLossKind):
    """Gatys et al. (2016): squared distance between (guided) Gram matrices."""

    name = "gram"

    def target(self, style_features: list[Tensor]) -> Tensor:
        return torch.stack([gram_matrix(f) for f in style_features]).mean(0)

    def loss(self, features: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return style_loss(gram_matrix(features, mask), target, self.options.normalization)

    def scale(self, target: Tensor) -> float:
        return float(style_loss(torch.zeros_like(target), target, self.options.normalization))
