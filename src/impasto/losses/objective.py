"""An objective of named terms: ``objective(image) -> (total, {"content": ..., "style": ..., ...})``.

A term is a module with the feature layers it reads (``layers``; empty for terms on the image
itself, such as TV or a temporal term) and ``forward(image, features) -> scalar``. The objective
runs the network once for the union of the layers, and sums ``weight * term``. Adding a term
(temporal, AdaIN, ...) is one entry in the dict; progress events, logs and progress bars show
whatever terms exist. Every target is a registered buffer, so ``objective.to(device)`` moves all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import LossConfig
from ..nets.vgg import VGGFeatures, layer_mask, layer_size
from ..ops.geometry import spatial_size
from .basic import ContentLoss, tv_loss
from .style import StyleLossKind, StyleLossOptions, Target, get_style_loss


class Term(nn.Module):
    """Base class of objective terms; ``layers`` are the features it needs."""

    layers: tuple[str, ...] = ()

    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError


class ContentTerm(Term):
    """Mean over layers of the relative content error (one :class:`ContentLoss` per layer)."""

    def __init__(self, targets: Mapping[str, Tensor], normalization: str = "chw") -> None:
        super().__init__()
        self.losses = nn.ModuleDict({k: ContentLoss(t, normalization=normalization) for k, t in targets.items()})
        for loss in self.losses.values():
            assert isinstance(loss, ContentLoss)
            loss.weight /= len(targets)  # auto weights: mean of relative errors over layers
        self.layers = tuple(targets)

    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return sum((m(features[k]) for k, m in self.losses.items()), image.new_zeros(()))


class StyleLayerTerm(nn.Module):
    """weight * kind.loss(features[layer], target, mask): one style image at one layer."""

    mask: Tensor | None

    def __init__(self, kind: StyleLossKind, layer: str, target: Target, weight: float,
                 mask: Tensor | None) -> None:
        super().__init__()
        self.kind, self.layer, self.weight = kind, layer, weight
        self.keys = tuple(target)
        for k, v in target.items():
            self.register_buffer(f"target_{k}", v)
        self.register_buffer("mask", mask)

    def target(self) -> Target:
        return {k: getattr(self, f"target_{k}") for k in self.keys}

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        return self.weight * self.kind.loss(features[self.layer], self.target(), self.mask)


class StyleTerm(Term):
    """Sum of weighted per-layer style losses over every style image (the weights sum the blend)."""

    def __init__(self, parts: Sequence[StyleLayerTerm]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.layers = tuple(sorted({p.layer for p in parts}))

    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return sum((p(features) for p in self.parts), image.new_zeros(()))


class TVTerm(Term):
    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return tv_loss(image)


class Objective(nn.Module):
    """sum_k weights[k] * terms[k](image, features); returns (total, {name: unweighted value})."""

    def __init__(self, extractor: VGGFeatures, terms: Mapping[str, Term], weights: Mapping[str, float],
                 *, autocast_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.extractor = extractor
        self.terms = nn.ModuleDict(terms)
        self.weights = {k: float(weights[k]) for k in terms}
        self.autocast_dtype = autocast_dtype
        self.layers = sorted({layer for t in terms.values() for layer in t.layers})

    def add(self, name: str, term: Term, weight: float) -> None:
        """Add (or replace) a named term."""
        self.terms[name] = term
        self.weights[name] = float(weight)
        self.layers = sorted(set(self.layers) | set(term.layers))

    def features(self, image: Tensor) -> dict[str, Tensor]:
        # Mixed precision covers the network only; the losses upcast to float32 (Gram matrices
        # included: float16 Grams overflow, neural-style-pt issue 97).
        with torch.autocast(image.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            return self.extractor(image, self.layers)

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats = self.features(image)
        values = {k: term(image, feats) for k, term in self.terms.items()}
        total = sum((self.weights[k] * v for k, v in values.items() if self.weights[k]), image.new_zeros(()))
        return total, {k: v.detach() for k, v in values.items()}


def style_kind(loss: LossConfig) -> StyleLossKind:
    options = StyleLossOptions(normalization=loss.normalization, patch_stride=loss.mrf_stride)
    return get_style_loss(loss.style_loss, options)


@dataclass
class StyleTargets:
    """Per style image, per layer: (layer, target, weight), computed once and shared (by tiles,
    by the frames of a video). ``style_sizes`` is the smallest style feature size per layer."""

    kind: StyleLossKind
    per_style: list[list[tuple[str, Target, float]]]
    style_sizes: dict[str, tuple[int, int]]


@torch.no_grad()
def style_targets(extractor: VGGFeatures, styles: Sequence[Sequence[Tensor]], loss: LossConfig) -> StyleTargets:
    """Style statistics of every style image (``styles[i]``: the image and its augmented copies),
    with their loss weights (auto layer weights, times the blend share)."""
    layers = loss.style_layer_names
    blend = loss.style_blend_weights or (1.0,) * len(styles)
    kind = style_kind(loss)
    per_style: list[list[tuple[str, Target, float]]] = []
    sizes: dict[str, tuple[int, int]] = {}
    for copies, share in zip(styles, blend):
        feats = [extractor(img, layers) for img in copies]
        entries = []
        for i, layer in enumerate(layers):
            per_copy = [f[layer] for f in feats]
            sizes[layer] = min(sizes.get(layer, (10**9, 10**9)), spatial_size(per_copy[0]))
            target = kind.target(per_copy)
            if loss.style_layer_weights is None:
                weight = 1.0 / (len(layers) * max(kind.scale(target), 1e-12))
            else:
                weight = loss.style_layer_weights[i]
            entries.append((layer, target, weight * kind.weight_scale * share / sum(blend)))
        per_style.append(entries)
        del feats
    return StyleTargets(kind, per_style, sizes)


def build_objective(
    extractor: VGGFeatures,
    content: Tensor,
    targets: StyleTargets | None,
    loss: LossConfig,
    *,
    masks: Sequence[Tensor | None] | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> Objective:
    """The content/style/TV objective for ``content`` (its activations computed once here).

    ``targets`` come from :func:`style_targets` (None when the style weight is 0); ``masks[i]`` is
    style i's region at image size (None = everywhere).
    """
    terms: dict[str, Term] = {}
    weights: dict[str, float] = {}
    if loss.content_weight:
        with torch.no_grad():
            feats = extractor(content, loss.content_layers)
        terms["content"] = ContentTerm(feats, loss.normalization)
        weights["content"] = loss.content_weight
    beta = loss.effective_style_weight
    if beta and targets is not None:
        hw = spatial_size(content)
        masks = list(masks) if masks is not None else [None] * len(targets.per_style)
        parts = []
        for entries, mask in zip(targets.per_style, masks):
            for layer, target, weight in entries:
                targets.kind.check(layer, layer_size(hw, layer, extractor.arch), targets.style_sizes[layer])
                lmask = None if mask is None else layer_mask(mask, layer, extractor.arch).to(content)
                parts.append(StyleLayerTerm(targets.kind, layer, target, weight, lmask))
        terms["style"] = StyleTerm(parts)
        weights["style"] = beta
    if loss.tv_weight:
        terms["tv"] = TVTerm()
        weights["tv"] = loss.tv_weight
    return Objective(extractor, terms, weights, autocast_dtype=autocast_dtype)
