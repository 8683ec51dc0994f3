"""A fixed ruler for judging any stylized image, whatever produced it.

Both distances use the embedded VGG19 (Caffe weights, max pooling) at the output's size, and are
relative, so that no single layer dominates:

* content distance: |F(x) - F(c)|^2 / |F(c)|^2 at relu4_2, the content resized to the output;
* style distance: the mean over relu1_1..relu5_1 of |G(x) - G(s)|^2 / |G(s)|^2, each Gram divided
  by C*H*W (so it does not depend on size), the style resized to the output's long edge.

And one that the content distance misses, whether the photo's main shapes survive
(:func:`structure`): relu4_2 sees textures and parts, not a lost ridge line or horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .io.image import ImageLike, load_image
from .losses.basic import gram_matrix
from .nets.vgg import CONTENT_LAYERS, STYLE_LAYERS, VGGFeatures, build_extractor
from .ops.color import luminance
from .ops.geometry import fit_long_edge, resize, spatial_size

CONTENT_LAYER = CONTENT_LAYERS[0]


@dataclass(frozen=True)
class Distances:
    content: float
    style: float
    style_layers: dict[str, float] = field(default_factory=dict)
    """The style distance of each layer (``style`` is their mean): where a style is missed."""


def ruler(device: str | torch.device = "cpu") -> VGGFeatures:
    """The loss network the distances use, on ``device`` (the distances run where it is)."""
    return build_extractor((CONTENT_LAYER, *STYLE_LAYERS), device=device)


@torch.no_grad()
def distances(output: ImageLike, content: ImageLike, style: ImageLike,
              extractor: VGGFeatures | None = None) -> Distances:
    """Content and style distances of ``output`` (see the module docstring)."""
    ex = extractor or ruler()
    device = ex.mean.device
    x = load_image(output).flat_rgb().to(device)
    hw = spatial_size(x)
    c = resize(load_image(content).flat_rgb(), hw).to(device)
    s_img = load_image(style)
    s = resize(s_img.flat_rgb(), fit_long_edge(s_img.size, max(hw))).to(device)
    fx, fc, fs = ex(x, (CONTENT_LAYER, *STYLE_LAYERS)), ex(c, (CONTENT_LAYER,)), ex(s, STYLE_LAYERS)
    content_d = float((fx[CONTENT_LAYER] - fc[CONTENT_LAYER]).square().sum() / fc[CONTENT_LAYER].square().sum())
    style_d = {}
    for layer in STYLE_LAYERS:
        gx, gs = gram_matrix(fx[layer]), gram_matrix(fs[layer])
        style_d[layer] = float((gx - gs).square().sum() / gs.square().sum())
    return Distances(content_d, sum(style_d.values()) / len(style_d), style_d)


def lattice_peaks(image: ImageLike, periods: tuple[int, ...] = (2, 4)) -> dict[int, float]:
    """How strongly ``image`` repeats with the loss network's pooling lattice (a regular grid).

    For each period p, the spectral power of the image's fine detail (luminance minus a 5x5 box
    blur, Hann-windowed) at the frequencies of a p-pixel grid (horizontal, vertical, diagonal),
    divided by the median power around them. About 1-5 for clean images (a JPEG's 8-pixel blocks
    raise it too); a visible crosshatch on the 2- or 4-pixel lattice scores well above 10.
    """
    x = load_image(image).flat_rgb()
    y = luminance(x.double())
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(y, (2, 2, 2, 2), mode="replicate"), 5, 1)
    h, w = spatial_size(y)
    window = torch.hann_window(h, periodic=False, dtype=torch.float64)[:, None] * \
        torch.hann_window(w, periodic=False, dtype=torch.float64)[None, :]
    power = torch.fft.fft2((y - blur)[0, 0] * window).abs().square()
    out = {}
    for p in periods:
        ratios = []
        for fy, fx in ((0, w / p), (h / p, 0), (h / p, w / p)):
            iy, ix = round(fy) % h, round(fx) % w
            peak = max(float(power[(iy + dy) % h, (ix + dx) % w]) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            ring = [float(power[(iy + dy) % h, (ix + dx) % w]) for dy in range(-6, 7) for dx in range(-6, 7)
                    if max(abs(dy), abs(dx)) >= 4]
            ratios.append(peak / max(sorted(ring)[len(ring) // 2], 1e-30))
        out[p] = sum(ratios) / len(ratios)
    return out


STRUCTURE_EDGE = 64
"""Long edge at which :func:`structure` compares: coarse enough that brush strokes and texture
average out, fine enough to hold a horizon, a roof line, a ridge."""


def _gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """|grad| of the luminance of a (1, 3, H, W) image, by central differences (replicate edges)."""
    p = torch.nn.functional.pad(luminance(image.double()), (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return (gx.square() + gy.square()).sqrt()


@torch.no_grad()
def structure(output: ImageLike, content: ImageLike, edge: int = STRUCTURE_EDGE) -> float:
    """How much of the photo's coarse structure ``output`` keeps: the Pearson correlation of the
    luminance gradient magnitudes of both images, each resized (antialiased) to ``edge`` px on its
    long side. 1 for the photo itself, near 0 for an unrelated image, and about 0.3 for a stylized
    picture whose ridge lines and outlines dissolved into texture (the README has the figures).
    """
    x = load_image(output).flat_rgb()
    size = fit_long_edge(spatial_size(x), edge)
    a = _gradient_magnitude(resize(x, size)).flatten()
    b = _gradient_magnitude(resize(load_image(content).flat_rgb(), size)).flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0
