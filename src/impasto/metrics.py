"""A fixed ruler for judging any stylized image, whatever produced it.

Both distances use the embedded VGG19 (Caffe weights, max pooling) at the output's size, and are
relative, so that no single layer dominates:

* content distance: |F(x) - F(c)|^2 / |F(c)|^2 at relu4_2, the content resized to the output;
* style distance: the mean over relu1_1..relu5_1 of |G(x) - G(s)|^2 / |G(s)|^2, each Gram divided
  by C*H*W (so it does not depend on size), the style resized to the output's long edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .io.image import ImageLike, load_image
from .losses.basic import gram_matrix
from .nets.vgg import CONTENT_LAYERS, STYLE_LAYERS, VGGFeatures, build_extractor
from .ops.geometry import fit_long_edge, resize, spatial_size

CONTENT_LAYER = CONTENT_LAYERS[0]


@dataclass(frozen=True)
class Distances:
    content: float
    style: float


def ruler() -> VGGFeatures:
    return build_extractor((CONTENT_LAYER, *STYLE_LAYERS))


@torch.no_grad()
def distances(output: ImageLike, content: ImageLike, style: ImageLike,
              extractor: VGGFeatures | None = None) -> Distances:
    """Content and style distances of ``output`` (see the module docstring)."""
    ex = extractor or ruler()
    x = load_image(output).flat_rgb()
    hw = spatial_size(x)
    c = resize(load_image(content).flat_rgb(), hw)
    s_img = load_image(style)
    s = resize(s_img.flat_rgb(), fit_long_edge(s_img.size, max(hw)))
    fx, fc, fs = ex(x, (CONTENT_LAYER, *STYLE_LAYERS)), ex(c, (CONTENT_LAYER,)), ex(s, STYLE_LAYERS)
    content_d = float((fx[CONTENT_LAYER] - fc[CONTENT_LAYER]).square().sum() / fc[CONTENT_LAYER].square().sum())
    style_d = []
    for layer in STYLE_LAYERS:
        gx, gs = gram_matrix(fx[layer]), gram_matrix(fs[layer])
        style_d.append(float((gx - gs).square().sum() / gs.square().sum()))
    return Distances(content_d, sum(style_d) / len(style_d))
