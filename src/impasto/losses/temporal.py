"""The temporal loss of Ruder et al. (2016): stay close to the previous stylized frame, warped by
the optical flow, where the flow is reliable.

L = 1/D sum_k c_k (x_k - w_k)^2 over the D = H*W*3 values; with long-term consistency, one such
term per earlier frame, each with its own warped frame and weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .objective import Term


def temporal_loss(image: Tensor, warped: Tensor, weights: Tensor) -> Tensor:
    """mean of weights * (image - warped)^2 (weights (N, 1, H, W) broadcast over channels)."""
    return (weights * (image - warped).square()).mean()


class TemporalTerm(Term):
    """Sum over earlier frames of the reliability-weighted squared difference (targets are buffers)."""

    warped: Tensor
    weights: Tensor

    def __init__(self, warped: Sequence[Tensor], weights: Sequence[Tensor]) -> None:
        super().__init__()
        if len(warped) != len(weights):
            raise ValueError("one weight map per warped frame")
        self.register_buffer("warped", torch.cat(list(warped)))
        self.register_buffer("weights", torch.cat(list(weights)))

    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return sum((temporal_loss(image, self.warped[i:i + 1], self.weights[i:i + 1])
                    for i in range(self.warped.shape[0])), image.new_zeros(()))
