"""Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

* Style masks: one greyscale (or binary) image per style; style i applies where its mask is white.
  Soft and overlapping masks blend: where masks sum to more than 1 they are divided by their sum.
  Pixels no mask covers receive no style and stay close to the content.
* Keep mask: white where the content must stay unstylized. It is removed from every style mask,
  and the final image is the content there (a soft mask blends the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .geometry import resize, spatial_size


def region_masks(
    style_masks: Sequence[Tensor] | None, keep: Tensor | None, size: tuple[int, int], n_styles: int
) -> list[Tensor | None]:
    """Per-style region weights at image size ``size`` (None = the whole image, unmasked)."""
    if style_masks is None and keep is None:
        return [None] * n_styles
    if style_masks is None:
        masks = [torch.ones(1, 1, *size)] * n_styles
    else:
        masks = [resize(m, size) for m in style_masks]
        total = torch.stack(masks).sum(0).clamp_min(1.0)
        masks = [m / total for m in masks]
    if keep is not None:
        free = 1.0 - resize(keep, size)
        masks = [m * free for m in masks]
    return list(masks)


def restore_kept(image: Tensor, content: Tensor, keep: Tensor) -> Tensor:
    """``image`` with the content put back where ``keep`` is white (softly for soft masks)."""
    hw = spatial_size(image)
    keep = resize(keep, hw)
    return keep * resize(content, hw) + (1 - keep) * image
