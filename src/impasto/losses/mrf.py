"""Li & Wand (CVPR 2016) MRF style loss: each neural patch of the image is pulled towards its most
similar style patch, similarity being normalized cross-correlation.

The matching runs as convolutions of the image's features with the normalized style patches as
kernels (argmax over kernels of <x, s/|s|> is the argmax of the NCC, since |x| does not depend on
the style patch), in chunks of style patches so that memory stays bounded, and without gradient.
The loss is then the mean squared distance between each image patch and its match.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from .style import StyleLossKind, register_style_loss


@dataclass(frozen=True)
class PatchTarget:
    patches: Tensor  # (P, C*k*k), raw style patches
    kernels: Tensor  # (P, C, k, k), unit-norm copies used for matching
    energy: float  # mean squared norm of a patch, per element


def extract_patches(features: Tensor, size: int, stride: int = 1) -> Tensor:
    """All ``size`` x ``size`` patches of a (1, C, H, W) map as (P, C, size, size)."""
    c = features.shape[1]
    cols = F.unfold(features, size, stride=stride)  # (1, C*k*k, P)
    return cols[0].T.reshape(-1, c, size, size)


@torch.no_grad()
def match_patches(features: Tensor, kernels: Tensor, chunk: int = 1024) -> Tensor:
    """Index of the best style patch (by normalized cross-correlation) for every image patch.

    ``features`` (1, C, H, W), ``kernels`` (P, C, k, k) of unit norm. Returns (L,) with
    L = (H - k + 1) * (W - k + 1), image patches in row-major order.
    """
    best_val: Tensor | None = None
    best_idx: Tensor | None = None
    for start in range(0, kernels.shape[0], chunk):
        response = F.conv2d(features, kernels[start:start + chunk])[0]  # (Pc, H', W')
        val, idx = response.max(0)
        val, idx = val.flatten(), idx.flatten() + start
        if best_val is None or best_idx is None:
            best_val, best_idx = val, idx
        else:
            better = val > best_val
            best_val = torch.where(better, val, best_val)
            best_idx = torch.where(better, idx, best_idx)
    assert best_idx is not None
    return best_idx


@register_style_loss
class MRFLoss(StyleLossKind):
    name = "mrf"
    default_layers = ("relu3_1", "relu4_1")
    weight_scale = 0.08

    def target(self, style_features: list[Tensor]) -> PatchTarget:
        k, stride = self.options.patch_size, self.options.patch_stride
        patches = torch.cat([extract_patches(f.float(), k, stride) for f in style_features])
        norms = patches.flatten(1).norm(dim=1).clamp_min(1e-8)
        kernels = (patches / norms.view(-1, 1, 1, 1)).contiguous()
        flat = patches.flatten(1)
        return PatchTarget(flat, kernels, float(flat.square().mean()))

    def loss(self, features: Tensor, target: PatchTarget, mask: Tensor | None = None) -> Tensor:
        k = self.options.patch_size
        idx = match_patches(features.detach().float(), target.kernels, self.options.chunk)
        x = F.unfold(features.float(), k)[0].T  # (L, C*k*k)
        diff = (x - target.patches[idx]).square().mean(1)  # (L,)
        if mask is None:
            return diff.mean()
        h, w = features.shape[-2:]
        r = k // 2
        centre = mask[0, 0, r:h - (k - 1 - r), r:w - (k - 1 - r)].reshape(-1).to(diff)
        return (diff * centre).sum() / centre.sum().clamp_min(1e-8)

    def scale(self, target: PatchTarget) -> float:
        return target.energy

    def check(self, layer: str, image_hw: tuple[int, int], style_hw: tuple[int, int]) -> None:
        k = self.options.patch_size
        for what, (h, w) in (("image", image_hw), ("style image", style_hw)):
            if h < k or w < k:
                raise InputError(
                    f"MRF layer {layer} is {w}x{h} for the {what} at the working size, which holds "
                    f"no {k}x{k} patch; raise --size/--start-size or use a shallower layer"
                )
