"""Content, Gram and TV losses: each a plain function, plus a small module that stores its target as a buffer.

Normalizations (``normalization=``):

* ``"chw"`` (default): Gram matrices divided by C*H*W; losses are means of squared differences.
* ``"paper"``: Gatys et al. (2016), eq. 4-5: E_l = 1/(4 N^2 M^2) * sum (G - A)^2 with raw Grams, and
  content loss 1/2 * sum (F - P)^2. Since 1/(4 N^2 M^2) sum (G - A)^2 = 1/4 sum (G/NM - A/NM)^2,
  the Gram itself is always computed divided by C*H*W (N = C filters, M = H*W positions), which
  keeps it size independent and safe in float16 (neural-style-pt issue 97); only the reduction
  differs.

Layer weights default to ``None`` (auto): each layer's loss is divided by the loss of an all-zero
prediction against its target, i.e. it becomes a *relative* squared error, and layers are averaged.
That makes every layer count alike whatever its scale, and makes the content and style weights
plain ratios (departure from the paper, whose per-layer weights were tuned for raw magnitudes).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..runtime import no_autocast

NORMALIZATIONS = ("chw", "paper")


def _upcast(t: Tensor) -> Tensor:
    """Half-precision tensors to float32; float32/float64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")


@contextlib.contextmanager
def _bf16_matmul(enabled: bool) -> Iterator[None]:
    """Let oneDNN run float32 matmuls on bfloat16 units, accumulating in float32.

    Used only where the float32 inputs hold bfloat16 values exactly (features that came out of a
    bfloat16 network, upcast): rounding them to bfloat16 then loses nothing, the products are
    exact in float32 and the sums are float32, so the Gram matrix is the float32 one, 2.2x faster
    (measured for relu1_1 at 512 px: 4.7 against 10.4 ms).
    """
    backend = getattr(torch.backends.mkldnn, "matmul", None)
    if not enabled or backend is None or not hasattr(backend, "fp32_precision"):
        yield
        return
    # the setting is process-wide: threads that optimize tiles side by side share it (the first in
    # sets it, the last out restores it)
    with _BF16_LOCK:
        if _BF16_USERS[0] == 0:
            _BF16_USERS[1] = backend.fp32_precision
            backend.fp32_precision = "bf16"
        _BF16_USERS[0] += 1
    try:
        yield
    finally:
        with _BF16_LOCK:
            _BF16_USERS[0] -= 1
            if _BF16_USERS[0] == 0:
                backend.fp32_precision = _BF16_USERS[1]


_BF16_LOCK = threading.Lock()
_BF16_USERS: list[Any] = [0, None]  # [threads inside, the setting before the first]


class _Gram(torch.autograd.Function):
    """G = M^T M / k for M of shape (N, HW, C), with a one-matmul backward.

    Autograd's own backward of bmm(M^T, M) does two matmuls and an add; since G is symmetric in
    its factors, dM = M (dG + dG^T) / k needs one (about 5% of an iteration at 512 px on CPU).
    ``low``: M holds bfloat16 values (upcast features of a bfloat16 network), so both matmuls may
    run on the CPU's bfloat16 units (see :func:`_bf16_matmul`); G stays float32, and the gradient
    goes back into bfloat16 activations anyway.
    """

    @staticmethod
    def forward(ctx, m: Tensor, k: float, low: bool = False) -> Tensor:
        ctx.save_for_backward(m)
        ctx.k, ctx.low = k, low
        with _bf16_matmul(low and m.device.type == "cpu"):
            return torch.bmm(m.transpose(1, 2), m) / k

    @staticmethod
    def backward(ctx, grad: Tensor):
        (m,) = ctx.saved_tensors
        with _bf16_matmul(ctx.low and m.device.type == "cpu"):
            return torch.bmm(m, (grad + grad.transpose(1, 2)) / ctx.k), None, None


def gram_matrix(features: Tensor, mask: Tensor | None = None) -> Tensor:
    """Channel correlations of ``features`` (N, C, H, W) -> (N, C, C), divided by C*H*W.

    With ``mask`` (N or 1, 1, H, W) of weights in [0, 1], the guided Gram of Gatys et al. (2017):
    sum_p m_p f_p f_p^T / (C * sum_p m_p), i.e. the statistics of the masked region only.
    Computed in float32 even under autocast, so half-precision features cannot overflow it.
    """
    n, c, h, w = features.shape
    # (N, HW, C) is a free view of a channels-last tensor, and its gradient comes back
    # channels-last too, so it adds to the conv path's gradient without a strided copy.
    low = features.dtype == torch.bfloat16
    m = _upcast(features.permute(0, 2, 3, 1).reshape(n, h * w, c))
    with no_autocast(m.device):
        if mask is None:
            return _Gram.apply(m, float(c * h * w), low)
        weights = mask.expand(n, 1, h, w).reshape(n, h * w, 1).to(m)
        return _Gram.apply(m * weights.sqrt(), 1.0) / (c * weights.sum(1, keepdim=True).clamp_min(1e-8))


def _reduce(diff: Tensor, normalization: str, paper_scale: float, per_sample: bool = False) -> Tensor:
    _check_normalization(normalization)
    sq = _upcast(diff).square()
    if per_sample:  # one value per image of the batch
        sq = sq.flatten(1)
        return sq.mean(1) if normalization == "chw" else paper_scale * sq.sum(1)
    return sq.mean() if normalization == "chw" else paper_scale * sq.sum()


def content_loss(features: Tensor, target: Tensor, normalization: str = "chw", *, per_sample: bool = False) -> Tensor:
    """Squared distance between activations: mean (chw) or 1/2 * sum (paper, eq. 1); with
    ``per_sample``, one value per image of the batch, (N,)."""
    return _reduce(features - target, normalization, 0.5, per_sample)


def style_loss(gram: Tensor, target_gram: Tensor, normalization: str = "chw", *, per_sample: bool = False) -> Tensor:
    """Squared distance between normalized Grams: mean (chw) or 1/4 * sum (paper, eq. 4); with
    ``per_sample``, one value per image of the batch, (N,)."""
    return _reduce(gram - target_gram, normalization, 0.25, per_sample)


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: mean squared difference between horizontal and vertical neighbours."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.square().mean() + dy.square().mean()


def lattice_loss(image: Tensor, period: int = 4, window: int = 8) -> Tensor:
    """The power of the part of ``image`` (N, C, H, W) that repeats on a ``period``-pixel grid.

    A fast network's decoder paints at a quarter of the resolution, upsampled twice: the cheap way
    for it to add the fine texture a style's relu1_1 Gram asks for is one small pattern repeated
    on its 4-pixel output grid, a regular crosshatch (README, "The hatch"). This measures that
    pattern locally: the horizontal and vertical neighbour differences (so that smooth ramps and
    flat colour count for nothing) are split into their period x period phases, each phase is
    averaged over ``window`` x ``window`` cells, and what varies between the phases is the grid.
    The mean square of it, per channel and window, over both directions. Natural texture does
    not repeat on the grid and averages out (about 1/window^2 of its power is left); a grid
    locked to the pixel lattice keeps all of its own. Crops smaller than one window give 0.
    """
    cell = period * window
    total = image.new_zeros(())
    for diff in (image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]):
        n, c, h, w = diff.shape
        h, w = h // cell * cell, w // cell * cell
        if not h or not w:
            continue
        d = _upcast(diff[..., :h, :w]).reshape(n, c, h // period, period, w // period, period)
        phases = d.permute(0, 1, 3, 5, 2, 4).reshape(n, c * period * period, h // period, w // period)
        means = torch.nn.functional.avg_pool2d(phases, window).reshape(n, c, period * period, h // cell, w // cell)
        total = total + (means - means.mean(2, keepdim=True)).square().mean()
    return total


def relative_weight(target: Tensor, loss_fn, normalization: str) -> float:
    """The auto layer weight: 1 / loss(0, target), so the weighted loss is a relative error."""
    base = float(loss_fn(torch.zeros_like(target), target, normalization))
    return 1.0 / max(base, 1e-12)


class ContentLoss(nn.Module):
    """Content loss against a fixed target activation (a buffer: ``.to(device)`` moves it).

    The target is (1, C, H, W), shared by every image of a batch, or (N, C, H, W), one per image.
    """

    target: Tensor
    weight: float

    def __init__(self, target: Tensor, *, weight: float | None = None, normalization: str = "chw"):
        super().__init__()
        _check_normalization(normalization)
        self.register_buffer("target", target.detach().float())
        self.normalization = normalization
        self.weight = relative_weight(self.target, content_loss, normalization) if weight is None else weight

    def forward(self, features: Tensor) -> Tensor:
        return self.weight * content_loss(features, self.target, self.normalization)
