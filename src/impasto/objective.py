"""The objective alpha * content + beta * style + gamma * TV, with its targets computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .config import StylizeConfig
from .features import VGGFeatures
from .losses import ContentLoss, StyleLossKind, get_style_loss, tv_loss
from .losses.style import StyleLossOptions
from .masks import layer_mask, layer_size


class StyleTerm(nn.Module):
    """weight * kind.loss(features[layer], target, mask) for one style image at one layer."""

    def __init__(self, kind: StyleLossKind, layer: str, target: Any, weight: float,
                 mask: Tensor | None) -> None:
        super().__init__()
        self.kind, self.layer, self.target, self.weight = kind, layer, target, weight
        self.register_buffer("mask", mask)

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        return self.weight * self.kind.loss(feats[self.layer], self.target, self.mask)


class Objective(nn.Module):
    """Callable ``objective(image) -> (total, {"content": ..., "style": ..., "tv": ...})``."""

    def __init__(
        self,
        extractor: VGGFeatures,
        content_losses: dict[str, ContentLoss],
        style_terms: list[StyleTerm],
        *,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.autocast_dtype = autocast_dtype
        self.content_losses = nn.ModuleDict(content_losses)
        self.style_terms = nn.ModuleList(style_terms)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.layers = sorted(set(content_losses) | {t.layer for t in style_terms})

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # Mixed precision covers the network only; the losses upcast to float32 (Gram matrices
        # included: float16 Grams overflow, neural-style-pt issue 97).
        with torch.autocast(image.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            feats = self.extractor(image, self.layers)
        zero = image.new_zeros(())
        content = sum((m(feats[k]) for k, m in self.content_losses.items()), zero)
        style = sum((term(feats) for term in self.style_terms), zero)
        tv = tv_loss(image) if self.tv_weight else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return total, {"content": content.detach(), "style": style.detach(), "tv": tv.detach()}


def style_kind(config: StylizeConfig) -> StyleLossKind:
    options = StyleLossOptions(normalization=config.normalization, patch_stride=config.mrf_stride)
    return get_style_loss(config.style_loss, options)


@dataclass
class StyleTargets:
    """Per style image, per layer: (layer, target, weight). Computed once per scale, shared by tiles."""

    kind: StyleLossKind
    per_style: list[list[tuple[str, Any, float]]]
    style_sizes: dict[str, tuple[int, int]]


def style_targets(extractor: VGGFeatures, styles: Sequence[Sequence[Tensor]], config: StylizeConfig) -> StyleTargets:
    """Style statistics of every style image (and its augmented copies), with their loss weights."""
    cfg = config
    layers = cfg.style_layer_names
    blend = cfg.style_blend_weights or (1.0,) * len(styles)
    kind = style_kind(cfg)
    per_style: list[list[tuple[str, Any, float]]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for copies, share in zip(styles, blend):
        with torch.no_grad():
            feats = [extractor(img, layers) for img in copies]
        entries = []
        for i, layer in enumerate(layers):
            per_copy = [f[layer] for f in feats]
            sizes[layer] = min(sizes.get(layer, (10**9, 10**9)), tuple(per_copy[0].shape[-2:]))
            target = kind.target(per_copy)
            if cfg.style_layer_weights is None:
                weight = 1.0 / (len(layers) * max(kind.scale(target), 1e-12))
            else:
                weight = cfg.style_layer_weights[i]
            entries.append((layer, target, weight * kind.weight_scale * share / sum(blend)))
        per_style.append(entries)
        del feats
    return StyleTargets(kind, per_style, sizes)


def build_objective(
    extractor: VGGFeatures,
    content: Tensor,
    styles: Sequence[Sequence[Tensor]] | None,
    config: StylizeConfig,
    masks: Sequence[Tensor | None] | None = None,
    targets: StyleTargets | None = None,
) -> Objective:
    """Compute content activations (and style targets, unless given) once, and wrap them.

    ``styles[i]`` holds style image i and its augmented copies; ``masks[i]`` its region (image
    size, or None for everywhere). ``targets`` reuses style targets computed by
    :func:`style_targets` (tiles of one scale share them).
    """
    cfg = config
    with torch.no_grad():
        content_feats = extractor(content, cfg.content_layers) if cfg.content_weight else {}
    content_losses = {}
    for layer, target in content_feats.items():
        loss = ContentLoss(target, normalization=cfg.normalization)
        loss.weight /= len(content_feats)  # auto weights: mean of relative errors over layers
        content_losses[layer] = loss
    terms: list[StyleTerm] = []
    if cfg.style_weight:
        if targets is None:
            assert styles is not None
            targets = style_targets(extractor, styles, cfg)
        hw = tuple(content.shape[-2:])
        masks = list(masks) if masks is not None else [None] * len(targets.per_style)
        for entries, mask in zip(targets.per_style, masks):
            for layer, target, weight in entries:
                targets.kind.check(layer, layer_size(hw, layer, extractor.arch), targets.style_sizes[layer])
                lmask = None if mask is None else layer_mask(mask, layer, extractor.arch).to(content)
                terms.append(StyleTerm(targets.kind, layer, target, weight, lmask))
    return Objective(extractor, content_losses, terms, content_weight=cfg.content_weight,
                     style_weight=cfg.style_weight, tv_weight=cfg.tv_weight,
                     autocast_dtype=autocast_dtype(cfg, content.device))


def autocast_dtype(config: StylizeConfig, device: torch.device) -> torch.dtype | None:
    """bfloat16 for 'bf16', and for 'auto' on a CUDA GPU that supports it; None = float32."""
    if config.precision == "bf16":
        return torch.bfloat16
    if config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
