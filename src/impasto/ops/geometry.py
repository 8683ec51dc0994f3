"""Geometry on image tensors (N, C, H, W): sizes, resizing, rotation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def spatial_size(image: Tensor) -> tuple[int, int]:
    """(height, width) of an (..., H, W) tensor."""
    return int(image.shape[-2]), int(image.shape[-1])


def fit_long_edge(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """(h, w) scaled so that the longer side is ``long_edge``, aspect ratio kept (each side >= 1)."""
    h, w = size
    scale = long_edge / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a (N, C, H, W) tensor to (h, w): antialiased bicubic, clamped to [0, 1]."""
    if spatial_size(image) == tuple(size):
        return image
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 1)


def upsample_with_detail(coarse: Tensor, reference: Tensor) -> Tensor:
    """``coarse`` resized to ``reference``'s size, plus the band of detail that ``reference`` has and
    a copy of it at ``coarse``'s size lacks (one level of a Laplacian pyramid), in [0, 1].

    Between the scales of the coarse-to-fine pyramid, a plain upsample leaves the new, finer band
    empty; the style loss then fills it in its fastest direction, the gradient, which max pooling
    makes periodic on the network's 2- and 4-pixel lattice (a fine crosshatch in flat regions).
    Starting the band from the photo's own detail instead removes the grid and keeps edges sharp.
    """
    size = spatial_size(reference)
    detail = reference - resize(resize(reference, spatial_size(coarse)), size)
    return (resize(coarse, size) + detail).clamp_(0, 1)


def rotate(image: Tensor, degrees: float) -> Tensor:
    """Rotate a (N, C, H, W) tensor about its centre; exact for multiples of 90 degrees.

    Other angles resample bilinearly with reflected borders, keeping the size (the corners are
    mirrored content rather than black, which would add false style statistics).
    """
    turns = degrees / 90.0
    if turns == round(turns):
        return torch.rot90(image, round(turns) % 4, dims=(-2, -1))
    theta = torch.tensor(degrees * math.pi / 180.0)
    c, s = torch.cos(theta).item(), torch.sin(theta).item()
    h, w = image.shape[-2:]
    aff = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(aff.expand(image.shape[0], 2, 3), list(image.shape), align_corners=False)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.clamp_(0, 1)


def box_mean(x: Tensor, radius: int) -> Tensor:
    """The mean over each pixel's (2r+1)^2 window of ``x`` (N, C, H, W), windows cut at the borders
    (the mean of the pixels that are there), by cumulative sums: O(1) a pixel whatever the radius."""
    if radius <= 0:
        return x
    k = 2 * radius + 1

    def along(t: Tensor, dim: int) -> Tensor:
        n = t.shape[dim]
        c = torch.cumsum(torch.nn.functional.pad(t, _pad_for(dim, radius + 1, radius)), dim)
        return c.narrow(dim, k, n) - c.narrow(dim, 0, n)

    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    summed = along(along(x, -1), -2)
    count = along(along(ones, -1), -2)
    return summed / count


def _pad_for(dim: int, before: int, after: int) -> tuple[int, ...]:
    return (before, after, 0, 0) if dim == -1 else (0, 0, before, after)


def guided_filter(guide: Tensor, src: Tensor, radius: int, eps: float) -> Tensor:
    """He et al.'s guided filter (ECCV 2010) with a one-channel ``guide`` (N, 1, H, W): ``src`` (N, C,
    H, W) smoothed where the guide is flat and kept sharp along the guide's edges."""
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(src, radius)
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)
