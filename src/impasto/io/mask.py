"""Mask files -> (1, 1, H, W) tensors in [0, 1], checked against the content they apply to.

What masks mean (style regions, the keep region) is in :mod:`impasto.ops.regions`; how they are
brought to each layer's resolution is in :mod:`impasto.nets.vgg`.
"""

from __future__ import annotations

from torch import Tensor

from ..errors import InputError
from ..ops.color import luminance
from .image import ImageLike, load_image

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
