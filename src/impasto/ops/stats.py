"""Means, covariances and powers of symmetric matrices: shared by color matching (of pixels) and
the mean/covariance style loss (of feature vectors)."""

from __future__ import annotations

import torch
from torch import Tensor


def mean_cov(x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(Weighted) means (N, C) and covariances (N, C, C) of the C-vectors of (N, C, H, W) maps,
    in x's floating dtype (float32 for lower precisions); ``mask`` (N or 1, 1, H, W) weights them."""
    n, c, h, w = x.shape
    dtype = x.dtype if x.dtype == torch.float64 else torch.float32
    v = x.permute(0, 2, 3, 1).reshape(n, h * w, c).to(dtype)  # free for channels-last
    if mask is None:
        mu = v.mean(1)
        vc = v - mu[:, None]
        return mu, vc.transpose(1, 2) @ vc / (h * w)
    weights = mask.expand(n, 1, h, w).reshape(n, h * w, 1).to(v)
    total = weights.sum(1).clamp_min(1e-8)  # (N, 1)
    mu = (weights * v).sum(1) / total
    vc = v - mu[:, None]
    return mu, (vc * weights).transpose(1, 2) @ vc / total[:, :, None]


def sym_power(matrix: Tensor, power: float, floor: float = 0.0) -> Tensor:
    """``matrix ** power`` for symmetric PSD matrices (..., C, C), in float64, through
    ``torch.linalg.eigh``; eigenvalues below ``floor`` are raised to it first (needed for negative
    powers)."""
    vals, vecs = torch.linalg.eigh(matrix.double())
    return (vecs * vals.clamp_min(floor).pow(power)[..., None, :]) @ vecs.transpose(-1, -2)
