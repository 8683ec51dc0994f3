"""Mean/covariance style loss: the 2-Wasserstein distance between Gaussians fitted to features.

W2^2(N(mu_x, S_x), N(mu_s, S_s)) = |mu_x - mu_s|^2 + tr S_x + tr S_s - 2 tr (S_s^1/2 S_x S_s^1/2)^1/2

S_s^1/2 is computed once per target (eigendecomposition, float64); the trace of the square root is
the sum of the square roots of the eigenvalues of a symmetric PSD matrix, computed with
``torch.linalg.eigvalsh`` in float64 (its gradient is V diag(g) V^T, well defined even when
eigenvalues repeat). Divided by the channel count, so that it reads as a per-channel distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .style import StyleLossKind, register_style_loss


@dataclass(frozen=True)
class GaussianTarget:
    mean: Tensor  # (C,)
    cov: Tensor  # (C, C)
    cov_sqrt: Tensor  # (C, C), S_s^1/2
    cov_trace: float


def mean_cov(features: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(Weighted) mean (C,) and covariance (C, C) of the feature vectors of a (1, C, H, W) map."""
    c = features.shape[1]
    x = features.permute(0, 2, 3, 1).reshape(-1, c).float()  # (HW, C), free for channels-last
    if mask is None:
        mu = x.mean(0)
        xc = x - mu
        return mu, xc.T @ xc / x.shape[0]
    w = mask.reshape(-1, 1).to(x)
    total = w.sum().clamp_min(1e-8)
    mu = (w * x).sum(0) / total
    xc = x - mu
    return mu, (xc * w).T @ xc / total


def sym_sqrt(matrix: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh(matrix.double())
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def wasserstein2(mu_x: Tensor, cov_x: Tensor, target: GaussianTarget) -> Tensor:
    """Squared W2 distance between N(mu_x, cov_x) and the target Gaussian."""
    root = target.cov_sqrt.to(cov_x)
    m = (root @ cov_x @ root).double()
    m = (m + m.T) / 2
    eigs = torch.linalg.eigvalsh(m)
    floor = 1e-10 * float(target.cov_trace) + 1e-12  # keeps d sqrt / d eig finite at 0
    cross = eigs.clamp_min(floor).sqrt().sum()
    mean_term = (mu_x - target.mean.to(mu_x)).square().sum()
    return mean_term + cov_x.trace() + target.cov_trace - 2 * cross.to(cov_x.dtype)


@register_style_loss
class MeanCovLoss(StyleLossKind):
    name = "meancov"
    weight_scale = 0.5

    def target(self, style_features: list[Tensor]) -> GaussianTarget:
        c = style_features[0].shape[1]
        x = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, c) for f in style_features]).double()
        mu = x.mean(0)
        xc = x - mu
        cov = xc.T @ xc / x.shape[0]
        return GaussianTarget(mu.float(), cov.float(), sym_sqrt(cov).float(), float(cov.trace()))

    def loss(self, features: Tensor, target: GaussianTarget, mask: Tensor | None = None) -> Tensor:
        mu, cov = mean_cov(features, mask)
        return wasserstein2(mu, cov, target) / features.shape[1]

    def scale(self, target: GaussianTarget) -> float:
        return (float(target.mean.square().sum()) + target.cov_trace) / target.mean.shape[0]
