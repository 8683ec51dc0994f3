"""Li & Wand (CVPR 2016) MRF style loss: each neural patch of the image is pulled towards its most
similar style patch, similarity being normalized cross-correlation.

The matching runs as convolutions of the image's features with the normalized style patches as
kernels (argmax over kernels of <x, s/|s|> is the argmax of the NCC, since |x| does not depend on
the style patch), in chunks of style patches so that memory stays bounded, and without gradient.
The loss is then the mean squared distance between each image patch x_l and its match t_l,
computed without materializing the patches (9x the feature map for 3x3 patches): because fold is
the adjoint of unfold, sum_l |x_l - t_l|^2 = <F^2, cover> - 2 <F, fold(T)> + sum_l |t_l|^2, where
``cover`` counts the patches over each pixel and fold(T) sums the matched patches in place. Both
are image-sized and built offset by offset, so memory stays a small multiple of the feature map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from .style import StyleLossKind, Target, register_style_loss


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
    weight_scale = 0.27
    trains = False  # patch matching per image and per step: far too slow for training
    bytes_per_pixel = 3400  # 1153 MiB peak at 512x512
    help = "nearest 3x3 neural patches (Li & Wand), keeps local structure"

    def target(self, style_features: list[Tensor]) -> Target:
        k, stride = self.options.patch_size, self.options.patch_stride
        patches = torch.cat([extract_patches(f.float(), k, stride) for f in style_features])
        sq_norms = patches.flatten(1).square().sum(1)
        kernels = (patches / sq_norms.sqrt().clamp_min(1e-8).view(-1, 1, 1, 1)).contiguous()
        # patches are one pool shared by every image of a batch (no per-sample MRF targets)
        return {"patches": patches.contiguous(), "kernels": kernels, "sq_norms": sq_norms,
                "energy": patches.square().mean()[None]}

    def per_sample(self, features: Tensor, target: Target, mask: Tensor | None = None) -> Tensor:
        losses = [self._one(features[i:i + 1], target,
                            None if mask is None else mask[min(i, mask.shape[0] - 1)][None])
                  for i in range(features.shape[0])]
        return torch.stack(losses)

    def _one(self, features: Tensor, target: Target, mask: Tensor | None) -> Tensor:
        k = self.options.patch_size
        f = features.float()
        _, c, h, w = f.shape
        hp, wp = h - k + 1, w - k + 1
        idx = match_patches(f.detach(), target["kernels"], self.options.chunk)
        if mask is None:
            weight = f.new_ones(hp, wp)
        else:  # a patch counts with the mask's value at its centre
            r = k // 2
            weight = mask[0, 0, r:r + hp, r:r + wp].to(f)
        with torch.no_grad():
            matched = f.new_zeros(c, h, w)  # fold(T): the matched patches summed in place
            cover = f.new_zeros(1, h, w)
            for dy in range(k):
                for dx in range(k):
                    values = target["patches"][idx, :, dy, dx].T.reshape(c, hp, wp)
                    matched[:, dy:dy + hp, dx:dx + wp] += values * weight
                    cover[:, dy:dy + hp, dx:dx + wp] += weight
            constant = (target["sq_norms"][idx] * weight.reshape(-1)).sum()
        total = (f[0].square() * cover).sum() - 2 * (f[0] * matched).sum() + constant
        return total.clamp_min(0) / (weight.sum().clamp_min(1e-8) * c * k * k)

    def scale(self, target: Target) -> float:
        return float(target["energy"][0])

    def check(self, layer: str, image_hw: tuple[int, int], style_hw: tuple[int, int]) -> None:
        k = self.options.patch_size
        for what, (h, w) in (("image", image_hw), ("style image", style_hw)):
            if h < k or w < k:
                raise InputError(
                    f"MRF layer {layer} is {w}x{h} for the {what} at the working size, which holds "
                    f"no {k}x{k} patch; raise size or start_size, or use a shallower layer",
                    fields=("size", "start_size"),
                )
