"""Color transforms for color preservation (Gatys, Bethge, Hertzmann & Shechtman, 2016).

* ``luminance``: style transfer runs on luminance only; the result's luminance is recombined
  with the content's chrominance (YIQ space, as in the paper).
* ``histogram``: before optimizing, the style image's colors are mapped so that their mean and
  covariance match the content's (the paper's "color histogram matching", linear variant).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .stats import mean_cov, sym_power

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights: the Y of YIQ, and every luminance impasto computes (flow, metrics)."""
# NTSC YIQ (the paper's choice of luminance/chrominance space).
_RGB_TO_YIQ = torch.tensor([LUMA, [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
PRESERVE_COLOR_CHOICES = ("luminance", "histogram")


def _apply_matrix(m: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(image), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    return _apply_matrix(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return _apply_matrix(torch.linalg.inv(_RGB_TO_YIQ.double()).float(), image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel of (N, 3, H, W) RGB, (N, 1, H, W), in image's dtype."""
    r, g, b = LUMA
    return r * image[:, 0:1] + g * image[:, 1:2] + b * image[:, 2:3]


def luminance_as_rgb(image: Tensor, *, like: Tensor | None = None) -> Tensor:
    """Grey RGB image of ``image``'s luminance.

    With ``like``, the luminance is shifted and scaled to ``like``'s mean and standard deviation
    (the paper's luminance matching of the style image to the content).
    """
    y = luminance(image)
    if like is not None:
        ref = luminance(like)
        y = (y - y.mean()) / y.std().clamp_min(1e-6) * ref.std() + ref.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def recombine_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    """The stylized image's luminance with the content's I and Q channels."""
    yiq = torch.cat([luminance(stylized), rgb_to_yiq(content)[:, 1:]], 1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def match_color(source: Tensor, reference: Tensor) -> Tensor:
    """Map ``source``'s colors so that their mean and covariance equal ``reference``'s.

    x' = C_r^{1/2} C_s^{-1/2} (x - mu_s) + mu_r; clamped to [0, 1].
    """
    mu_s, cov_s = mean_cov(source.double())
    mu_r, cov_r = mean_cov(reference.double())
    transform = sym_power(cov_r[0], 0.5, 1e-8) @ sym_power(cov_s[0], -0.5, 1e-8)
    x = source.double().reshape(3, -1)
    out = transform @ (x - mu_s[0, :, None]) + mu_r[0, :, None]
    return out.reshape(source.shape).to(source.dtype).clamp(0, 1)


# --- color preservation, the one home of its modes -------------------------------------------------
# None: colors as the method makes them; "luminance": the method works on luminance only and the
# photo's chrominance comes back at the end; "histogram": the styles' colors are matched to the
# photo's first (the optimization only).

def seen(image: Tensor, mode: str | None) -> Tensor:
    """What the losses see of the photo (or an image in its place: the init, a warped frame)."""
    return luminance_as_rgb(image) if mode == "luminance" else image


def style_for(style: Tensor, content: Tensor, mode: str | None) -> Tensor:
    """A style image as the losses see it, given the photo."""
    if mode == "histogram":
        return match_color(style, content)
    if mode == "luminance":
        return luminance_as_rgb(style, like=content)
    return style


def restore(output: Tensor, content: Tensor, mode: str | None) -> Tensor:
    """The result in the colors the mode keeps: the photo's chrominance for luminance."""
    return recombine_luminance(output, content) if mode == "luminance" else output


def keep_structure(image: Tensor, photo: Tensor, amount: float, radius: int) -> Tensor:
    """``image`` (N, 3, H, W) with its coarse light and dark (its luminance blurred over ``radius`` px)
    moved by ``amount`` (0..1) towards the photo's, the photo's luminance first given the image's
    mean and spread, so the painting's tones and colours stay and only where they fall follows the
    photo: a horizon, a roof line, a face's shading. The finer band (the brush strokes) is the
    image's own. Added equally to R, G and B; clamped to [0, 1]."""
    from .geometry import box_mean

    if amount <= 0:
        return image
    y, p = luminance(image), luminance(photo.to(image))
    y_mean, y_std = y.mean((-2, -1), keepdim=True), y.std((-2, -1), keepdim=True)
    p_mean, p_std = p.mean((-2, -1), keepdim=True), p.std((-2, -1), keepdim=True)
    p = (p - p_mean) / p_std.clamp_min(1e-4) * y_std + y_mean

    def blur(t: Tensor) -> Tensor:  # two box passes: close to a Gaussian, no ringing
        return box_mean(box_mean(t, radius), radius)

    return (image + amount * (blur(p) - blur(y))).clamp(0, 1)
