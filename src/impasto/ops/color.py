"""Color transforms for color preservation (Gatys, Bethge, Hertzmann & Shechtman, 2016).

* ``luminance``: style transfer runs on luminance only; the result's luminance is recombined
  with the content's chrominance (YIQ space, as in the paper).
* ``histogram``: before optimizing, the style image's colors are mapped so that their mean and
  covariance match the content's (the paper's "color histogram matching", linear variant).
"""

from __future__ import annotations

import torch
from torch import Tensor

# NTSC YIQ (the paper's choice of luminance/chrominance space).
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
PRESERVE_COLOR_CHOICES = ("luminance", "histogram")


def _apply_matrix(m: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(image), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    return _apply_matrix(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return _apply_matrix(torch.linalg.inv(_RGB_TO_YIQ.double()).float(), image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel, (N, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


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


def _mean_cov(image: Tensor) -> tuple[Tensor, Tensor]:
    x = image.double().reshape(3, -1)
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    return mu, xc @ xc.T / x.shape[1]


def _sym_power(cov: Tensor, power: float) -> Tensor:
    """cov^power for a symmetric PSD matrix, through torch.linalg.eigh (eigenvalues floored)."""
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8) ** power
    return vecs @ torch.diag(vals) @ vecs.T


def match_color(source: Tensor, reference: Tensor) -> Tensor:
    """Map ``source``'s colors so that their mean and covariance equal ``reference``'s.

    x' = C_r^{1/2} C_s^{-1/2} (x - mu_s) + mu_r; clamped to [0, 1].
    """
    mu_s, cov_s = _mean_cov(source)
    mu_r, cov_r = _mean_cov(reference)
    transform = _sym_power(cov_r, 0.5) @ _sym_power(cov_s, -0.5)
    x = source.double().reshape(3, -1)
    out = transform @ (x - mu_s) + mu_r
    return out.reshape(source.shape).to(source.dtype).clamp(0, 1)
