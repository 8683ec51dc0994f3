"""Mean/covariance style loss: the 2-Wasserstein distance between Gaussians fitted to features.

W2^2(N(mu_x, S_x), N(mu_s, S_s)) = |mu_x - mu_s|^2 + tr S_x + tr S_s - 2 tr (S_s^1/2 S_x S_s^1/2)^1/2

S_s^1/2 is computed once per target (eigendecomposition, float64); the trace of the square root is
the sum of the square roots of the eigenvalues of a symmetric PSD matrix, computed with
``torch.linalg.eigvalsh`` in float64 (its gradient is V diag(g) V^T, well defined even when
eigenvalues repeat). Divided by the channel count, so that it reads as a per-channel distance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.stats import mean_cov, sym_power
from .style import StyleLossKind, Target, register_style_loss


def sym_sqrt(matrix: Tensor) -> Tensor:
    """Square roots of symmetric PSD matrices (..., C, C), in float64."""
    return sym_power(matrix, 0.5)


def wasserstein2(mu_x: Tensor, cov_x: Tensor, target: Target) -> Tensor:
    """Squared W2 distances (N,) between N(mu_x, cov_x) and the target Gaussians."""
    root = target["cov_sqrt"].to(cov_x)
    m = (root @ cov_x @ root).double()
    m = (m + m.transpose(-1, -2)) / 2
    eigs = torch.linalg.eigvalsh(m)
    floor = 1e-10 * target["cov_trace"].double()[:, None] + 1e-12  # keeps d sqrt / d eig finite at 0
    cross = torch.maximum(eigs, floor).sqrt().sum(-1)
    mean_term = (mu_x - target["mean"].to(mu_x)).square().sum(-1)
    trace_x = cov_x.diagonal(dim1=-2, dim2=-1).sum(-1)
    return mean_term + trace_x + target["cov_trace"].to(cov_x) - 2 * cross.to(cov_x.dtype)


@register_style_loss
class MeanCovLoss(StyleLossKind):
    name = "meancov"
    weight_scale = 0.5
    bytes_per_pixel = 3600  # 1298 MiB peak at 512x512
    help = "mean and covariance (Wasserstein-2)"

    def target(self, style_features: list[Tensor]) -> Target:
        c = style_features[0].shape[1]
        x = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, c) for f in style_features]).double()
        mu = x.mean(0)
        xc = x - mu
        cov = xc.T @ xc / x.shape[0]
        return {"mean": mu.float()[None], "cov_sqrt": sym_sqrt(cov).float()[None],
                "cov_trace": cov.trace().float()[None]}

    def per_sample(self, features: Tensor, target: Target, mask: Tensor | None = None) -> Tensor:
        mu, cov = mean_cov(features, mask)
        return wasserstein2(mu, cov, target) / features.shape[1]

    def scale(self, target: Target) -> float:
        mean, trace = target["mean"][0], target["cov_trace"][0]
        return float(mean.square().sum() + trace) / mean.shape[0]
