"""The feature transforms of universal style transfer: whitening and colouring (WCT, Li et al.,
NeurIPS 2017) and adaptive instance normalization (AdaIN, Huang & Belongie 2017).

A photo's features at one VGG layer, (C, H, W), are made to have a style's statistics:

* WCT: centre them, whiten them (their covariance becomes the identity: the photo's own
  correlations, which carry its texture and colour, are removed, its layout stays), then colour
  them with the style's covariance and add the style's mean;
* AdaIN: only each channel's mean and standard deviation are the style's;
* OST (Lu et al. 2019, the default): the style's mean and covariance, as WCT gives, through the
  linear map that moves the features least (optimal transport between the two Gaussians), so
  more of the photo survives;
* EFDM (Zhang et al. 2022): each channel's whole histogram is the style's (sort-based matching);
* rotated histograms (Risser 2020): EFDM repeated in random orthogonal bases, which moves the
  channels' joint distribution towards the style's.

``benchmarks/experiments/transforms.py`` measured them on tuning pairs: OST kept the most of the
photo and the most of the painting together (docs/universal.md has the table).

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


MAX_SAMPLES = 16384
"""A style's feature pixels kept for the histogram transforms (EFDM, rotated histograms): at most
this many, drawn at random with a fixed seed; a 1,024-quantile histogram of them is exact to well
under a quantile step."""


@dataclass(frozen=True)
class StyleStats:
    """A style's statistics at one layer: its mean (C, 1), its channel standard deviations (C, 1) for
    AdaIN, its covariance (C, C, float64) for the optimal transport map and WCT's colouring matrix,
    and a sample of its feature pixels (C, M) for the histogram transforms."""

    mean: Tensor
    std: Tensor
    cov: Tensor | None = None
    samples: Tensor | None = None
    color: Tensor | None = None
    """Computed from ``cov`` when WCT first asks (:meth:`coloring`): an eigendecomposition the
    other transforms do without."""

    def to(self, device: torch.device | str) -> StyleStats:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return StyleStats(self.mean.to(device), self.std.to(device), move(self.cov), move(self.samples),
                          move(self.color))

    def coloring(self) -> Tensor:
        """Cov^(1/2), the colouring matrix of WCT (computed once)."""
        if self.color is None:
            object.__setattr__(self, "color", _sym_power(self.need("cov", "wct"), 0.5).float())
        assert self.color is not None
        return self.color

    def need(self, what: str, transform: str) -> Tensor:
        value = getattr(self, what)
        if value is None:
            raise ValueError(f"these style statistics have no {what}, which the {transform} transform needs; "
                             "compute them with style_stats")
        return value


def _flat(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """(C, N) float32 features of the pixels (in the mask, if one: a (H, W) weight in [0, 1]
    thresholded at 0.5)."""
    f = features.reshape(features.shape[-3], -1).float()
    if mask is None:
        return f, None
    keep = mask.reshape(-1) > 0.5
    return f[:, keep], keep


def _sym_powers(cov: Tensor, powers: tuple[float, ...], floored: bool = True) -> list[Tensor]:
    """cov^p for each p, for a symmetric positive semi-definite (C, C) matrix, from one eigendecomposition,
    eigenvalues clamped (with ``floored=False`` only at 0, for a positive power of a matrix whose small
    eigenvalues are real)."""
    values, vectors = torch.linalg.eigh(cov)
    floor = torch.clamp(values.max() * EIG_FLOOR, min=ABS_FLOOR) if floored else values.new_zeros(())
    values = values.clamp_min(floor)
    return [(vectors * values.pow(p)) @ vectors.T for p in powers]


def _sym_power(cov: Tensor, power: float, floored: bool = True) -> Tensor:
    return _sym_powers(cov, (power,), floored)[0]


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
    if f.shape[1] > MAX_SAMPLES:
        pick = torch.randperm(f.shape[1], generator=torch.Generator().manual_seed(0))[:MAX_SAMPLES]
        samples = f[:, pick.to(f.device)]
    else:
        samples = f
    return StyleStats(mean.float(), std.float(), cov, samples.contiguous())


def wct(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """The photo's features (1, C, H, W) whitened and coloured with ``style``, blended by ``alpha``."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    _, cov, centred = _moments(f)
    transform = (style.coloring().double() @ _sym_power(cov, -0.5)).float()  # colour after whitening: one (C, C)
    return _put_back(content, transform @ centred + style.mean.float(), keep, alpha)


def adain(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """The photo's features (1, C, H, W) with each channel's mean and std the style's, blended by ``alpha``."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    mean = f.mean(1, keepdim=True)
    centred = f - mean
    # the unbiased (n - 1) variance, as the style's std (from its covariance): one convention, so the
    # result's std is the style's exactly
    std = (centred.square().sum(1, keepdim=True) / max(f.shape[1] - 1, 1)).sqrt().clamp_min(1e-5)
    return _put_back(content, centred * (style.std.float() / std) + style.mean.float(), keep, alpha)


def ost(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Lu et al. 2019's closed-form optimal style transfer: the linear map between the photo's and the
    style's Gaussians that moves the features least (the Monge map
    T = Σc^-1/2 (Σc^1/2 Σs Σc^1/2)^1/2 Σc^-1/2). It lands on the style's covariance exactly, as WCT
    does, but WCT's whitening rotates the features freely; this map keeps them as near the photo's
    as that allows, so more of the photo's layout survives."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    _, cov, centred = _moments(f)
    root, inv_root = _sym_powers(cov, (0.5, -0.5))
    middle = root @ style.need("cov", "ost").double() @ root
    # the middle's own small eigenvalues are real (the product of two spectra): no relative floor there
    transform = (inv_root @ _sym_power((middle + middle.T) / 2, 0.5, floored=False) @ inv_root).float()
    return _put_back(content, transform @ centred + style.mean.float(), keep, alpha)


def _match_sorted(f: Tensor, sorted_style: Tensor) -> Tensor:
    """Each row of ``f`` (C, N) given the values of the sorted row of ``sorted_style`` (C, M) at its own
    ranks (M quantiles read at N evenly spaced points, linearly interpolated): exact histogram
    matching per channel, which keeps each pixel's rank, so the photo's order of light and dark."""
    n, m = f.shape[1], sorted_style.shape[1]
    if m == n:
        values = sorted_style
    else:
        pos = (torch.arange(n, device=f.device, dtype=torch.float32) + 0.5) * (m / n) - 0.5
        pos = pos.clamp(0, m - 1)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=m - 1)
        frac = (pos - lo)[None]
        values = sorted_style[:, lo] * (1 - frac) + sorted_style[:, hi] * frac
    order = f.argsort(dim=1)
    out = torch.empty_like(f)
    out.scatter_(1, order, values.to(f.dtype))
    return out


def efdm(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Exact feature distribution matching (Zhang et al., CVPR 2022): each channel of the photo's
    features takes the style's values at the same ranks (sort-based histogram matching), so every
    moment of each channel is the style's, not only its mean and spread (AdaIN); channels are
    matched one by one, so their correlations stay the photo's."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    return _put_back(content, _match_sorted(f, style.need("samples", "efdm").sort(dim=1).values), keep, alpha)


ROTATIONS = 4
"""Random rotations of the feature space per call of :func:`rotated_histograms`."""


def rotated_histograms(content: Tensor, style: StyleStats, alpha: float = 1.0, mask: Tensor | None = None,
                       rotations: int = ROTATIONS, seed: int = 0) -> Tensor:
    """Risser's optimal textures (2020): histogram matching per channel repeated in randomly rotated
    bases, which moves the joint distribution of the channels towards the style's (sliced optimal
    transport), not only each channel's. Seeded, so a photo paints the same way twice: each rotation
    matches the current features' projections to those of the style's sample."""
    f, keep = _flat(content, mask)
    if f.shape[1] == 0:
        return content
    samples = style.need("samples", "histogram").float()
    c = f.shape[0]
    gen = torch.Generator().manual_seed(seed)
    x = f
    for _ in range(rotations):
        q, _ = torch.linalg.qr(torch.randn(c, c, generator=gen, dtype=torch.float64))
        r = q.float().to(f.device)
        projected = r.T @ x
        matched = _match_sorted(projected, (r.T @ samples).sort(dim=1).values)
        x = x + r @ (matched - projected)
    return _put_back(content, x, keep, alpha)


def _put_back(content: Tensor, transformed: Tensor, keep: Tensor | None, alpha: float) -> Tensor:
    """The transformed (C, N) pixels blended with the photo's by ``alpha``, in the photo's shape."""
    flat = content.reshape(content.shape[-3], -1).float()
    if keep is None:
        out = transformed if alpha == 1.0 else torch.lerp(flat, transformed, alpha)
    else:
        out = flat.clone()
        out[:, keep] = torch.lerp(flat[:, keep], transformed, alpha)
    return out.to(content.dtype).reshape(content.shape)
