"""The feature transforms of universal style transfer: whitening and colouring (WCT, Li et al.,
NeurIPS 2017) and adaptive instance normalization (AdaIN, Huang & Belongie 2017).

A photo's features at one VGG layer, (C, H, W), are made to have a style's statistics:

* WCT: centre them, whiten them (their covariance becomes the identity: the photo's own
  correlations, which carry its texture and colour, are removed, its layout stays), then colour
  them with the style's covariance and add the style's mean;
* AdaIN: only each channel's mean and standard deviation are the style's.

A style's statistics (:class:`StyleStats`) are computed once per style image and layer, and
reused for any number of photos. Both transforms blend with the photo's own features by
``alpha`` (0: the photo, 1: the full transform), and both take an optional mask: only the masked
pixels are transformed, with statistics of the masked pixels alone (one style per region).

Numerics: the (C, pixels) work is float32, one matrix product each way; only the small (C, C)
covariances are decomposed in float64 (``eigh``), which is fast at these sizes (512 x 512 at
most) and keeps small eigenvalues honest (float64 throughout took 4 of a 512 px run's 7 s). Every
eigenvalue is clamped to at least ``EIG_FLOOR`` times the largest (and an absolute floor), so a
flat or nearly flat image (a singular covariance) whitens and colours to finite values, never
NaN: a flat style colours the photo to its flat colour, a flat photo region stays flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

EIG_FLOOR = 1e-5
"""Eigenvalues below this fraction of the largest are clamped (the directions a covariance barely
has are not amplified into noise when whitening)."""
ABS_FLOOR = 1e-8
"""And below this absolute value (a covariance that is all zero: a flat image)."""


@dataclass(frozen=True)
class StyleStats:
    """A style's statistics at one layer: its mean (C, 1), its colouring matrix Cov^(1/2) (C, C) for
    WCT, and its channel standard deviations (C, 1) for AdaIN."""

    mean: Tensor
    color: Tensor
    std: Tensor

    def to(self, device: torch.device | str) -> StyleStats:
        return StyleStats(self.mean.to(device), self.color.to(device), self.std.to(device))


def _flat(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """(C, N) float32 features of the pixels (in the mask, if one: a (H, W) weight in [0, 1]
    thresholded at 0.5)."""
    f = features.reshape(features.shape[-3], -1).float()
    if mask is None:
        return f, None
    keep = mask.reshape(-1) > 0.5
    return f[:, keep], keep


def _sym_power(cov: Tensor, power: float) -> Tensor:
    """cov^power for a symmetric positive semi-definite (C, C) matrix, eigenvalues clamped."""
    values, vectors = torch.linalg.eigh(cov)
    floor = torch.clamp(values.max() * EIG_FLOOR, min=ABS_FLOOR)
    values = values.clamp_min(floor)
    return (vectors * values.pow(power)) @ vectors.T


def _moments(f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(mean (C, 1) float32, covariance (C, C) float64, the centred features (C, N) float32)."""
    n = f.shape[1]
    mean = f.mean(1, keepdim=True)
    centred = f - mean
    return mean, (centred @ centred.T).double() / max(n - 1, 1), centred


def style_stats(features: Tensor, mask: Tensor | None = None) -> StyleStats:
    """The statistics of a style's features (1 or no batch dim, C, H, W) (of the masked pixels only)."""
    f, _ = _flat(features, mask)
    if f.shape[1] == 0:
        raise ValueError("the style's mask selects no pixel at this layer")
    mean, cov, _ = _moments(f)
    std = cov.diagonal().clamp_min(0).sqrt()[:, None]
    return StyleStats(mean.float(), _sym_power(cov, 0.5).float(), std.float())


def wct(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """The photo's features (1, C, H, W) whitened and coloured with ``style``, blended by ``alpha``."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    _, cov, centred = _moments(f)
    transform = (style.color.double() @ _sym_power(cov, -0.5)).float()  # colour after whitening: one (C, C)
    return _put_back(content, transform @ centred + style.mean.float(), keep, alpha)


def adain(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """The photo's features (1, C, H, W) with each channel's mean and std the style's, blended by ``alpha``."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    mean = f.mean(1, keepdim=True)
    centred = f - mean
    std = centred.square().mean(1, keepdim=True).sqrt().clamp_min(1e-5)
    return _put_back(content, centred * (style.std.float() / std) + style.mean.float(), keep, alpha)


def _put_back(content: Tensor, transformed: Tensor, keep: Tensor | None, alpha: float) -> Tensor:
    """The transformed (C, N) pixels blended with the photo's by ``alpha``, in the photo's shape."""
    flat = content.reshape(content.shape[-3], -1).float()
    if keep is None:
        out = transformed if alpha == 1.0 else torch.lerp(flat, transformed, alpha)
    else:
        out = flat.clone()
        out[:, keep] = torch.lerp(flat[:, keep], transformed, alpha)
    return out.to(content.dtype).reshape(content.shape)
