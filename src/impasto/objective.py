"""The objective alpha * content + beta * style + gamma * TV, with its targets computed once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .config import StylizeConfig
from .features import VGGFeatures
from .losses import ContentLoss, StyleLoss, blend_grams, gram_matrix, tv_loss


class Objective(nn.Module):
    """Callable ``objective(image) -> (total, {"content": ..., "style": ..., "tv": ...})``."""

    def __init__(
        self,
        extractor: VGGFeatures,
        content_losses: dict[str, ContentLoss],
        style_losses: dict[str, StyleLoss],
        *,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.content_losses = nn.ModuleDict(content_losses)
        self.style_losses = nn.ModuleDict(style_losses)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.layers = sorted(set(content_losses) | set(style_losses))

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats = self.extractor(image, self.layers)
        zero = image.new_zeros(())
        content = sum((m(feats[k]) for k, m in self.content_losses.items()), zero)
        style = sum((m(feats[k]) for k, m in self.style_losses.items()), zero)
        tv = tv_loss(image) if self.tv_weight else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return total, {"content": content.detach(), "style": style.detach(), "tv": tv.detach()}


def build_objective(
    extractor: VGGFeatures,
    content: Tensor,
    styles: Sequence[Tensor],
    config: StylizeConfig,
) -> Objective:
    """Compute the content activations and the (blended) style Grams once, and wrap them."""
    cfg = config
    blend = cfg.style_blend_weights or (1.0,) * len(styles)
    with torch.no_grad():
        content_feats = extractor(content, cfg.content_layers) if cfg.content_weight else {}
        style_grams: dict[str, list[Tensor]] = {layer: [] for layer in cfg.style_layers}
        if cfg.style_weight:
            for style in styles:
                feats = extractor(style, cfg.style_layers)
                for layer in cfg.style_layers:
                    style_grams[layer].append(gram_matrix(feats[layer]))
                del feats
    content_losses = {}
    for layer, target in content_feats.items():
        loss = ContentLoss(target, normalization=cfg.normalization)
        loss.weight /= len(content_feats)  # auto weights: mean of relative errors over layers
        content_losses[layer] = loss
    style_losses = {}
    if cfg.style_weight:
        for i, layer in enumerate(cfg.style_layers):
            target = blend_grams(style_grams[layer], blend)
            if cfg.style_layer_weights is None:
                loss = StyleLoss(target, normalization=cfg.normalization)
                loss.weight /= len(cfg.style_layers)
            else:
                loss = StyleLoss(target, weight=cfg.style_layer_weights[i], normalization=cfg.normalization)
            style_losses[layer] = loss
    return Objective(
        extractor,
        content_losses,
        style_losses,
        content_weight=cfg.content_weight,
        style_weight=cfg.style_weight,
        tv_weight=cfg.tv_weight,
    )
