"""The feed-forward style network: Johnson et al. (2016)'s residual transformer with Dumoulin et
al. (2017)'s conditional instance normalization, so that one network holds many styles.

* Reflection padding before every convolution (no dark borders), instance normalization after
  every convolution but the last, ReLU.
* Downsampling by strided convolutions (``downsample="blur"``: each after a 3x3 binomial blur,
  so the stride samples a low-passed signal and aliases less: Zhang 2019, "Making convolutional
  networks shift-invariant again"); upsampling by nearest-neighbour resize followed by a
  convolution instead of a transposed convolution, which gives no checkerboard (Odena et al. 2016).
* Conditional instance normalization: every normalization has one (scale, shift) pair per style;
  a style vector ``w`` (one weight per style, summing to 1) mixes them, ``gamma = w @ gammas``,
  which is how styles blend at inference (Dumoulin et al., section 4).
* ``width`` multiplies every channel count (1.0 = Johnson's 32/64/128); the full-width network
  costs about 40 GMAC at 512x512, width 0.5 about 11.
* The last layer is a sigmoid, so the output is an image in [0, 1] whatever the weights (no
  clamping, no NaN-prone tanh scaling); the input is RGB in [0, 1], the same as everywhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..runtime import no_autocast


def reflect_pad(x: Tensor, pad: list[int], mode: str = "reflect") -> Tensor:
    """Reflection (or ``mode="replicate"``) padding in ``x``'s own dtype.

    CPU autocast lists reflection_pad2d among its float32 ops, so under bfloat16 autocast every
    padding before a convolution would cast its input up to float32 and the convolution would cast
    it back down: two copies of every activation, for a result that is the same in any dtype
    (padding only copies values).
    """
    with no_autocast(x.device):
        return F.pad(x, pad, mode=mode)


EPS = 1e-5
"""Instance normalization's epsilon."""


def _flat_safe(x: Tensor, normalized: Tensor) -> Tensor:
    """``normalized`` (``x`` instance-normalized), with no gradient through the channels of ``x`` that are
    flat (variance under EPS): the same values everywhere, the same gradient elsewhere.

    Why: a flat channel normalizes to 0 whatever its level, and the normalization's gradient there is
    1/sqrt(EPS) = 316 times the incoming one. A flat crop (sky, a wall) makes every channel of every
    layer flat, so the gradient grows 316-fold per layer: past float32's range after about 15 of a
    9-block network's 23 normalizations, and the parameters' gradients are inf and NaN (issue 29).
    A flat channel carries nothing but its level, which the normalization removes anyway, so
    nothing is lost by cutting its gradient; the scale and shift after it still learn. Only while
    training (no cost at inference)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return normalized
    flat = x.detach().float().var(dim=(2, 3), keepdim=True, correction=0) < EPS
    return torch.where(flat, normalized.detach(), normalized)


class CondInstanceNorm(nn.Module):
    """Instance normalization with a (scale, shift) per style, mixed by the style vector.

    ``stats`` normally stays None (each image normalized by its own statistics). For an image
    processed in tiles, :meth:`TransformerNet.frozen_stats` fills it with the whole image's
    per-channel (mean, variance), so that every tile is normalized alike and no tile comes out
    lighter or darker than its neighbours.
    """

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))
        self.stats: tuple[Tensor, Tensor] | None = None
        self.record: list[tuple[Tensor, Tensor]] | None = None

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """``style`` is (N, n_styles): each image's mix of styles."""
        if self.stats is not None:
            mean, var = self.stats
            x = (x - mean) * torch.rsqrt(var + EPS)
        else:
            if self.record is not None:
                var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
                self.record.append((mean, var))
            x = _flat_safe(x, F.instance_norm(x, eps=EPS))
        gamma = (style @ self.gamma)[:, :, None, None]
        beta = (style @ self.beta)[:, :, None, None]
        return x * gamma + beta


DOWNSAMPLING = ("stride", "blur")
"""How the encoder halves its resolution: a strided convolution, or the same after a binomial blur."""
UPSAMPLING = ("nearest", "bilinear")
"""How the decoder doubles its resolution before each of its convolutions (both avoid the
checkerboard of a transposed convolution; bilinear leaves no 2- or 4-pixel blocks either)."""


class ConvNorm(nn.Module):
    """Reflection pad, conv (optionally after a 2x nearest upsample), conditional IN, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, n_styles: int, *, stride: int = 1,
                 upsample: str | None = None, relu: bool = True, blur: bool = False) -> None:
        super().__init__()
        self.upsample, self.relu, self.blur = upsample, relu, blur
        self.pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = CondInstanceNorm(cout, n_styles)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if self.upsample == "nearest":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif self.upsample == "bilinear":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.blur:
            x = binomial_blur(x)
        x = self.norm(self.conv(reflect_pad(x, [self.pad] * 4)), style)
        return F.relu(x) if self.relu else x


def binomial_blur(x: Tensor) -> Tensor:
    """A 3x3 binomial low-pass ([1, 2, 1] / 4 each way), per channel, reflect-padded."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device) / 4
    weight = (kernel[:, None] * kernel[None, :]).expand(x.shape[1], 1, 3, 3).contiguous()
    return F.conv2d(reflect_pad(x, [1, 1, 1, 1]), weight, groups=x.shape[1])


class Residual(nn.Module):
    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.a = ConvNorm(channels, channels, 3, n_styles)
        self.b = ConvNorm(channels, channels, 3, n_styles, relu=False)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.b(self.a(x, style), style)


class TransformerNet(nn.Module):
    """image (N, 3, H, W) in [0, 1], style (N, n_styles) -> image (N, 3, H', W') in [0, 1].

    H and W need not be multiples of 4: the input is reflect-padded to one, and the output is
    cropped back to the input's size.
    """

    stride = 4  # two stride-2 convolutions: tiles must start on multiples of this
    edge_margin = 4
    """Columns of the residual blocks' input (a quarter of the resolution: 16 px) repeated on its
    right before the blocks, and cropped off after them. Trained networks paint a band at the
    right edge without it (the_scream: a dark line 9-16 px from it; udnie: a dark strip over the
    last 8). It is the network's, not the photo's: a horizontally flipped input puts it at the
    image's left. And it is made in the residual blocks: with 20 px more input on the right
    cropped off after the encoder the band stays, cropped off after the blocks it is gone (their
    convolutions are not mirror-symmetric, so their reflection padding answers differently at the
    two edges). 4 columns there cost 2% more compute at 512 px wide (a margin on the input would
    cost 4%). Replicate padding, so that any width works."""

    def __init__(self, n_styles: int = 1, width: float = 1.0, blocks: int = 5, upsample: str = "nearest",
                 downsample: str = "stride") -> None:
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}; got {upsample!r}")
        if downsample not in DOWNSAMPLING:
            raise ValueError(f"downsample must be one of {DOWNSAMPLING}; got {downsample!r}")
        c1, c2, c3 = (max(4, round(c * width)) for c in (32, 64, 128))
        self.n_styles, self.width, self.blocks, self.upsample = n_styles, width, blocks, upsample
        self.downsample = downsample
        blur = downsample == "blur"
        self.down = nn.ModuleList([
            ConvNorm(3, c1, 9, n_styles), ConvNorm(c1, c2, 3, n_styles, stride=2, blur=blur),
            ConvNorm(c2, c3, 3, n_styles, stride=2, blur=blur),
        ])
        self.res = nn.ModuleList([Residual(c3, n_styles) for _ in range(blocks)])
        self.up = nn.ModuleList([
            ConvNorm(c3, c2, 3, n_styles, upsample=upsample), ConvNorm(c2, c1, 3, n_styles, upsample=upsample),
        ])
        self.out = nn.Conv2d(c1, 3, 9)

    def forward(self, image: Tensor, style: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        # no Python branch on the size, so that an exported graph pads any input size correctly
        ph, pw = (self.stride - h % self.stride) % self.stride, (self.stride - w % self.stride) % self.stride
        x = reflect_pad(image, [0, pw, 0, ph])
        for layer in self.down:
            x = layer(x, style)
        quarter = x.shape[-1]
        x = reflect_pad(x, [0, self.edge_margin, 0, 0], mode="replicate")
        for block in self.res:
            x = block(x, style)
        x = x[..., :quarter]
        for layer in self.up:
            x = layer(x, style)
        x = torch.sigmoid(self.out(reflect_pad(x, [4] * 4)).float())  # the image in float32, whatever autocast
        return x[..., :h, :w]

    @contextlib.contextmanager
    def frozen_stats(self, reference: Tensor, style: Tensor) -> Iterator[None]:
        """Within the block, normalize with the statistics of ``reference`` (the whole image, or
        a downscaled copy of it) instead of each input's own: for tiles of one image."""
        norms = [m for m in self.modules() if isinstance(m, CondInstanceNorm)]
        for norm in norms:
            norm.record = []
        try:
            with torch.no_grad():
                self(reference, style)
            for norm in norms:
                assert norm.record is not None
                norm.stats, norm.record = norm.record[0], None
            yield
        finally:
            for norm in norms:
                norm.stats, norm.record = None, None

    def style_parameters(self, index: int) -> list[Tensor]:
        """Views of style ``index``'s own parameters (its rows of every gamma and beta)."""
        return [p[index] for name, p in self.named_parameters() if name.endswith((".gamma", ".beta"))]
