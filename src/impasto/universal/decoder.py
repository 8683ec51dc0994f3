"""Decoders that turn VGG19 features back into images, one per level (relu1_1 ... relu5_1).

Each mirrors the loss network's trunk down from its layer (Li et al. 2017): a 3x3 convolution for
each of VGG's, in reverse, nearest-neighbour upsampling where VGG pools, ReLU after each but the
last. Departures: reflection padding (no dark borders), and a ``width`` multiplier on every
channel count but the input's (the features) and the output's (RGB): the decoders only invert a
fixed encoder, and at width 0.5 they weigh a quarter of the paper's (measured against width 1 in
``benchmarks/universal.py``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.vgg import ARCHS, BLOCK_CHANNELS

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
FEATURE_RMS = {"relu1_1": 50.0, "relu2_1": 250.0, "relu3_1": 330.0, "relu4_1": 1100.0, "relu5_1": 175.0}
"""The root mean square of the Caffe VGG19's features at each level on photos (21 ImageNet-sample
photos at 128 px: 50.5, 251, 333, 1109, 174): a decoder divides its input by it, so that its first
convolution starts at the scale of its default initialization; without it the decoders spent their
first hundreds of steps only shrinking their weights (relu1_1's pixel error was 14 after 200 steps)."""


def level_of(layer: str) -> int:
    """1 for relu1_1 ... 5 for relu5_1."""
    if layer not in LEVELS:
        raise ValueError(f"unknown level {layer!r}; valid: {', '.join(LEVELS)}")
    return LEVELS.index(layer) + 1


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, relu: bool = True) -> None:
        super().__init__()
        self.conv, self.relu = nn.Conv2d(cin, cout, 3), relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        return F.relu(x, inplace=True) if self.relu else x


class Decoder(nn.Module):
    """Features at ``layer`` (N, C, H, W) -> an image (N, 3, H * 2^(level-1), ...) in about [0, 1]."""

    def __init__(self, layer: str, width: float = 0.5) -> None:
        super().__init__()
        self.layer, self.width = layer, width
        level = level_of(layer)

        def ch(block: int) -> int:  # channels inside the decoder at VGG block ``block`` (1-based)
            return max(8, round(BLOCK_CHANNELS[block - 1] * width))

        convs: list[nn.Module] = []
        cin = BLOCK_CHANNELS[level - 1]  # the features themselves
        for block in range(level, 0, -1):
            n = ARCHS["vgg19"][block - 1]
            # the block's convs after its first, mirrored (not in the starting block: its layer is relu_1)
            for _ in range(n - 1 if block != level else 0):
                convs.append(_Conv(cin, ch(block)))
                cin = ch(block)
            out = ch(block - 1) if block > 1 else 3
            convs.append(_Conv(cin, out, relu=block > 1))
            cin = out
            if block > 1:
                convs.append(_Upsample())
        self.body = nn.Sequential(*convs)

    def forward(self, features: Tensor) -> Tensor:
        return self.body(features * (1.0 / FEATURE_RMS[self.layer]))


class _Upsample(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

