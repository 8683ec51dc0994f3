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
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..nets.transformer import binomial_blur
from ..nets.vgg import VGGFeatures, layer_mask, layer_size
from ..ops.geometry import spatial_size
from ..runtime import autocast
from .basic import ContentLoss, content_loss, lattice_loss, tv_loss
from .config import LossConfig
from .style import StyleLossKind, StyleLossOptions, Target, get_style_loss, stack_targets


@dataclass
class BatchContext:
    """What a batch brings besides its images, for terms that need it (training, see fast/train.py).

    ``style_index``: (N,) which style each image is to take; ``content``: the features of the
    photos the images are made from, {layer: (N, C, H, W)}; ``teacher``: a trained network's
    outputs for the same photos and styles (N, 3, H, W), for :class:`TeacherTerm`; ``photos``:
    the photos, for :class:`PixelTerm` (a decoder that reconstructs them).
    """

    style_index: Tensor | None = None
    content: Mapping[str, Tensor] | None = None
    teacher: Tensor | None = None
    photos: Tensor | None = None
    """The batch's photos themselves (N, 3, H, W), for :class:`PixelTerm`."""


class Term(nn.Module):
    """Base class of objective terms; ``layers`` are the features it needs.

    ``forward(image, features) -> scalar``; a term with ``uses_context = True`` is called as
    ``forward(image, features, context)`` with the :class:`BatchContext` of the batch.
    """

    layers: tuple[str, ...] = ()
    uses_context: ClassVar[bool] = False

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


class LatticeTerm(Term):
    """The power of the output's fine grid on the network's 4-pixel lattice (:func:`lattice_loss`):
    a penalty on the crosshatch a feed-forward network's decoder paints, not on texture."""

    def __init__(self, period: int = 4, window: int = 8) -> None:
        super().__init__()
        self.period, self.window = period, window

    def forward(self, image: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return lattice_loss(image, self.period, self.window)


class TeacherTerm(Term):
    """Distillation: the mean squared difference from a trained network's output for the same
    batch (``context.teacher``), both low-passed by ``blur`` binomial blurs first.

    No loss network is run. The low pass leaves the teacher's finest frequencies out of the target
    (two blurs: nothing left at a 2 px period, at most a sixteenth of the power at 4 px), so that a teacher's
    fine lattice is not copied while its colours, shapes and strokes are.
    """

    uses_context = True

    def __init__(self, blur: int = 2) -> None:
        super().__init__()
        self.blur = blur

    def low_pass(self, image: Tensor) -> Tensor:
        for _ in range(self.blur):
            image = binomial_blur(image)
        return image

    def forward(self, image: Tensor, features: Mapping[str, Tensor],
                context: BatchContext | None = None) -> Tensor:
        assert context is not None and context.teacher is not None, "TeacherTerm needs context.teacher"
        return (self.low_pass(image.float()) - self.low_pass(context.teacher.detach().float())).pow(2).mean()


class PixelTerm(Term):
    """The mean squared difference from the batch's photos (``context.photos``): the pixel term of a
    decoder that reconstructs them from their features (Li et al. 2017's reconstruction loss)."""

    uses_context = True

    def forward(self, image: Tensor, features: Mapping[str, Tensor],
                context: BatchContext | None = None) -> Tensor:
        assert context is not None and context.photos is not None, "PixelTerm needs context.photos"
        return (image.float() - context.photos.detach().float()).square().mean()


class BatchContentTerm(Term):
    """The content term of a batch whose photos change every step (``context.content``).

    Each layer's error is relative to its target, as :class:`ContentTerm`'s auto weights make it,
    and the layers are averaged.
    """

    uses_context = True

    def __init__(self, layers: Sequence[str], normalization: str = "chw") -> None:
        super().__init__()
        self.layers, self.normalization = tuple(layers), normalization

    def forward(self, image: Tensor, features: Mapping[str, Tensor],
                context: BatchContext | None = None) -> Tensor:
        assert context is not None and context.content is not None, "BatchContentTerm needs context.content"
        total = image.new_zeros(())
        for layer in self.layers:
            target = context.content[layer].detach().float()
            # the relative weight as a tensor (relative_weight's, without reading it to the host every step)
            base = content_loss(torch.zeros_like(target), target, self.normalization).clamp_min(1e-12)
            total = total + content_loss(features[layer], target, self.normalization) / (base * len(self.layers))
        return total


class BatchStyleTerm(Term):
    """The style term of a batch whose images each take one of S styles (``context.style_index``).

    The S styles' targets are stacked per layer (:func:`stack_targets`) and each image's are picked
    by its index, so the statistics of the whole batch are computed at once and only the small
    targets are indexed (indexing the features instead would copy them, and scatter their
    gradients back). ``weights`` (S, L): each style's auto weight at each layer.
    """

    weights: Tensor
    uses_context = True

    def __init__(self, kind: StyleLossKind, targets: Sequence[StyleTargets]) -> None:
        super().__init__()
        self.kind = kind
        self.layers = tuple(layer for layer, _, _ in targets[0].per_style[0])
        self.keys: dict[str, tuple[str, ...]] = {}
        for i, layer in enumerate(self.layers):
            stacked = stack_targets([t.per_style[0][i][1] for t in targets])
            self.keys[layer] = tuple(stacked)
            for k, v in stacked.items():
                self.register_buffer(f"{layer}_{k}", v)
        self.register_buffer("weights", torch.tensor([[w for _, _, w in t.per_style[0]] for t in targets]))

    def forward(self, image: Tensor, features: Mapping[str, Tensor],
                context: BatchContext | None = None) -> Tensor:
        assert context is not None and context.style_index is not None, "BatchStyleTerm needs context.style_index"
        which = context.style_index  # on the features' device, like every buffer here (no silent copy)
        total = image.new_zeros(features[self.layers[0]].shape[0])
        for i, layer in enumerate(self.layers):
            target = {k: getattr(self, f"{layer}_{k}").index_select(0, which) for k in self.keys[layer]}
            total = total + self.weights.index_select(0, which)[:, i] * self.kind.per_sample(features[layer], target)
        return total.mean()


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

    @property
    def content_layers(self) -> tuple[str, ...]:
        """The layers of the content term (none without one)."""
        for name, term in self.terms.items():
            if name == "content" and isinstance(term, Term):
                return tuple(term.layers)
        return ()

    def add(self, name: str, term: Term, weight: float) -> None:
        """Add (or replace) a named term."""
        self.terms[name] = term
        self.weights[name] = float(weight)
        self.layers = sorted(set(self.layers) | set(term.layers))

    def features(self, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """The network's features of ``image`` at ``layers`` (default: every layer a term reads)."""
        # Mixed precision covers the network only; the losses upcast to float32 (Gram matrices
        # included: float16 Grams overflow, neural-style-pt issue 97).
        with autocast(image.device, self.autocast_dtype):
            return self.extractor(image, self.layers if layers is None else layers)

    def forward(self, image: Tensor, context: BatchContext | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        feats = self.features(image)
        values = {k: term(image, feats, context) if term.uses_context else term(image, feats)
                  for k, term in self.terms.items()}
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

    def to(self, device: torch.device | str) -> StyleTargets:
        """The same targets on ``device`` (a copy where it differs)."""
        return StyleTargets(self.kind, [[(layer, {k: v.to(device) for k, v in target.items()}, weight)
                                         for layer, target, weight in entries] for entries in self.per_style],
                            dict(self.style_sizes))


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
                if loss.style_layer_factors is not None:
                    weight *= loss.style_layer_factors[i]
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
