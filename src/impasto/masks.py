"""Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

* Style masks: one greyscale (or binary) image per style; style i applies where its mask is white.
  Soft and overlapping masks blend: where masks sum to more than 1 they are divided by their sum.
  Pixels no mask covers receive no style and stay close to the content.
* Keep mask: white where the content must stay unstylized. It is removed from every style mask,
  and the final image is the content there (a soft mask blends the two).

Masks are brought to each layer's resolution by the same number of 2x2 poolings as the network
applies before that layer (average pooling, floor sizes like the network's), so a mask and the
features it weights always have the same size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .color import luminance
from .errors import InputError
from .features import layer_names
from .image import ImageLike, load_image, resize

ASPECT_TOLERANCE = 0.02  # relative difference of width/height ratios accepted between mask and content


def load_mask(src: ImageLike, content_hw: tuple[int, int], *, what: str, max_pixels: int) -> Tensor:
    """A mask as (1, 1, H, W) in [0, 1], checked against the content's aspect ratio."""
    loaded = load_image(src, max_pixels=max_pixels)
    grey = luminance(loaded.rgb).clamp(0, 1)
    if loaded.alpha is not None:
        grey = grey * loaded.alpha
    (mh, mw), (ch, cw) = loaded.size, content_hw
    if abs((mw / mh) / (cw / ch) - 1) > ASPECT_TOLERANCE:
        raise InputError(
            f"{what} is {mw}x{mh} but the content is {cw}x{ch}: aspect ratios differ by more than "
            f"{ASPECT_TOLERANCE:.0%}"
        )
    if float(grey.max()) < 1 / 255:
        raise InputError(f"{what} is all black: it selects no region")
    return grey


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


def pools_before(layer: str, arch: str = "vgg19") -> int:
    names = layer_names(arch)
    return sum(1 for n in names[: names.index(layer)] if n.startswith("pool"))


def layer_mask(mask: Tensor, layer: str, arch: str = "vgg19") -> Tensor:
    """``mask`` at the resolution of ``layer``'s features (same floor sizes as the network)."""
    for _ in range(pools_before(layer, arch)):
        mask = F.avg_pool2d(mask, 2)
    return mask


def layer_size(hw: tuple[int, int], layer: str, arch: str = "vgg19") -> tuple[int, int]:
    h, w = hw
    for _ in range(pools_before(layer, arch)):
        h, w = h // 2, w // 2
    return h, w
