"""Style losses behind one interface, and their registry.

A style loss is a class with three methods, registered with ``@register_style_loss``:

* ``target(style_features)`` -> the statistics of one style image at one layer, computed once
  (``style_features`` is a list: the style image and any augmented copies of it), as a dict of
  tensors whose first dimension is 1. The objective keeps them as registered buffers, so
  ``.to(device)`` moves them; :func:`stack_targets` makes per-sample targets (first dimension N)
  for a batch whose images each have their own style;
* ``per_sample(features, target, mask)`` -> the loss of each image, (N,) (``loss`` is its mean over
  the batch); ``features`` is
  (N, C, H, W), ``target`` has first dimension 1 (shared) or N (one per image), ``mask``
  (1 or N, 1, H, W) in [0, 1] restricts it to a region of the image (None = everywhere);
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
from typing import ClassVar

import torch
from torch import Tensor

from ..errors import InputError
from ..nets.vgg import STYLE_LAYERS
from .basic import gram_matrix, style_loss

Target = dict[str, Tensor]


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
    default_layers: ClassVar[tuple[str, ...]] = STYLE_LAYERS
    weight_scale: ClassVar[float] = 1.0
    trains: ClassVar[bool] = True
    """Whether a feed-forward network can be trained with it (a batch's statistics at once)."""
    bytes_per_pixel: ClassVar[int] = 3600
    """Peak resident bytes per output pixel of one forward/backward pass through the default layers
    (activations and their gradients through relu5_1, the image copies), for the memory plan:
    measured with ``python benchmarks/core.py --losses`` at 512x512 on a CPU, minus about 400 MiB
    of interpreter, torch and weights, rounded up for safety."""
    help: ClassVar[str] = ""
    """One line for ``--help`` and the docs."""

    def __init__(self, options: StyleLossOptions | None = None) -> None:
        self.options = options or StyleLossOptions()

    def target(self, style_features: list[Tensor]) -> Target:
        raise NotImplementedError

    def per_sample(self, features: Tensor, target: Target, mask: Tensor | None = None) -> Tensor:
        """The loss of each image of the batch, (N,)."""
        raise NotImplementedError

    def loss(self, features: Tensor, target: Target, mask: Tensor | None = None) -> Tensor:
        return self.per_sample(features, target, mask).mean()

    def scale(self, target: Target) -> float:
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
    bytes_per_pixel = 3200  # 1127 MiB peak at 512x512
    help = "Gram matrices (Gatys)"

    def target(self, style_features: list[Tensor]) -> Target:
        return {"gram": torch.stack([gram_matrix(f) for f in style_features]).mean(0)}

    def per_sample(self, features: Tensor, target: Target, mask: Tensor | None = None) -> Tensor:
        return style_loss(gram_matrix(features, mask), target["gram"], self.options.normalization, per_sample=True)

    def scale(self, target: Target) -> float:
        gram = target["gram"]
        return float(style_loss(torch.zeros_like(gram), gram, self.options.normalization))


def stack_targets(targets: list[Target]) -> Target:
    """Per-sample targets: the targets of N styles stacked along the first dimension."""
    return {k: torch.cat([t[k] for t in targets]) for k in targets[0]}
