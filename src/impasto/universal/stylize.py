"""Any painting in one pass: the photo's features transformed to the painting's statistics and
decoded, level by level, coarse to fine (Li et al. 2017's multi-level stylization).

For each level from the deepest asked for to the shallowest: encode the current image to that
level, transform its features (:func:`wct` or :func:`adain`) towards each style (several styles:
the transformed features blended by their weights), blend with the untransformed features by
``strength``, and decode. The deep levels carry the painting's large-scale structure and colour
masses, the shallow ones its brush texture. No optimization and no training per style; a style's
statistics are computed once per style image and output size and kept (:class:`Universal` caches
them), so one painting applied to many photos pays for its statistics once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..config import blend_weights, choice, positive_int
from ..errors import InputError
from ..io.image import MAX_PIXELS, ImageLike, as_output, load_image
from ..nets.vgg import build_extractor
from ..ops import color
from ..ops.geometry import fit_long_edge, guided_filter, resize
from ..runtime import autocast, autocast_dtype
from .decoder import LEVELS
from .model import DecoderSet, load_decoders
from .transforms import StyleStats, adain, efdm, ost, rotated_histograms, style_stats, wct

TRANSFORMS = {"ost": ost, "wct": wct, "adain": adain, "efdm": efdm, "histogram": rotated_histograms}
"""The feature transforms, by name (:mod:`.transforms`); ``ost`` is the default: it kept the most of
the photo and of the painting together (docs/universal.md)."""
DEFAULT_LEVELS = ("relu4_1", "relu3_1", "relu2_1", "relu1_1")
"""relu5_1 is left out by default: through it the photo's shapes dissolve into the painting's
blotches (WCT's best-known fault; docs/universal.md shows both). ``levels`` puts it back."""
PHOTO_LEVELS = ("relu2_1", "relu1_1")
"""The photorealistic mode's levels: the deep ones carry strokes and shapes, not colour and mood."""
PHOTO_SMOOTHING = (1 / 64, 1e-3)
"""The photorealistic mode's guided filter: radius as a fraction of the long edge, and epsilon."""
STRUCTURE_RADIUS = 1 / 128
"""The coarse band that ``structure`` restores: luminance blurred over this fraction of the long edge
(4 px at 512). Wider (1/64) kept less of the photo for the same style distance."""
MIN_SIDE = 32
"""The smallest short side of a photo or style for relu5_1 (1/16 of the image): 2 px, which the
decoder's reflection padding needs."""


def min_side(levels: Sequence[str]) -> int:
    """The smallest short side an image may have for ``levels``: 2 px at the deepest."""
    return 2 * 2 ** (max(LEVELS.index(lv) for lv in levels))


@dataclass(frozen=True)
class UniversalConfig:
    """Settings of one universal run (the method's options)."""

    size: int | None = 512
    """Long edge of the output (None: the photo's own size)."""
    strength: float = 1.0
    """0..1: how far each level's features move from the photo's towards the painting's (alpha)."""
    levels: tuple[str, ...] = DEFAULT_LEVELS
    """Which levels to transform, deepest first (any of relu1_1..relu5_1; default relu4_1..relu1_1)."""
    transform: str = "ost"
    """'ost' (Lu et al.'s optimal transport map: the painting's feature correlations, moving the
    photo's features least), 'wct' (whitening and colouring: the same statistics, the photo's own
    correlations thrown away first), 'adain' (the per-channel mean and spread only: gentler), 'efdm'
    (each channel's whole histogram) or 'histogram' (EFDM in random rotations: the channels'
    joint distribution; slowest)."""
    structure: float = 0.7
    """0..1: how much of the photo's coarse light and dark (its shapes: a horizon, a roof line) the
    result takes back after the last level, in the painting's own tones (0: none, as in Li et al.)."""
    style_blend_weights: tuple[float, ...] | None = None
    """Several styles: their weights (None: equal)."""
    preserve_color: str | None = None
    """None or 'luminance' (the painting's strokes, the photo's colours)."""
    photo: bool = False
    """Photorealistic (after PhotoWCT, Li et al. 2018): a style photo's colours and mood with no
    painterly texture. The shallow levels only (relu2_1 and relu1_1, unless ``levels`` names others),
    then the result smoothed along the photo's edges by a guided filter (PhotoWCT's fast smoothing
    step), so every region keeps the photo's own outline."""

    def __post_init__(self) -> None:
        if not isinstance(self.photo, bool):
            raise InputError(f"photo must be true or false; got {self.photo!r}", fields=("photo",))
        if self.size is not None:
            positive_int("size", self.size)
            if self.size < MIN_SIDE:
                raise InputError(f"size must be at least {MIN_SIDE} px (relu5_1 is 1/16 of the image); "
                                 f"got {self.size}", fields=("size",))
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) \
                or not 0.0 <= self.strength <= 1.0:
            raise InputError(f"strength must be a number from 0 to 1; got {self.strength!r}", fields=("strength",))
        if not self.levels or any(lv not in LEVELS for lv in self.levels) or len(set(self.levels)) != len(self.levels):
            raise InputError(f"levels must be distinct names from {', '.join(LEVELS)}; got "
                             f"{', '.join(map(str, self.levels)) or 'none'}", fields=("levels",))
        choice("transform", self.transform, tuple(TRANSFORMS))
        if isinstance(self.structure, bool) or not isinstance(self.structure, (int, float)) \
                or not 0.0 <= self.structure <= 1.0:
            raise InputError(f"structure must be a number from 0 to 1; got {self.structure!r}", fields=("structure",))
        if self.preserve_color not in (None, "luminance"):
            raise InputError(f"preserve_color for this method is luminance (or none); got {self.preserve_color!r}",
                             fields=("preserve_color",))
        if self.style_blend_weights is not None:
            blend_weights("style_blend_weights", self.style_blend_weights)

    @property
    def run_levels(self) -> tuple[str, ...]:
        """The levels a run uses: ``levels``, or the photorealistic mode's when it keeps the default."""
        return PHOTO_LEVELS if self.photo and self.levels == DEFAULT_LEVELS else self.levels

    @property
    def ordered_levels(self) -> tuple[str, ...]:
        """The levels deepest first, whatever order they were given in."""
        return tuple(sorted(self.run_levels, key=LEVELS.index, reverse=True))


class Universal:
    """The loss network's encoder and the decoders, loaded once, with a cache of style statistics."""

    def __init__(self, decoders: str | os.PathLike | DecoderSet | None = None, *, device: str | torch.device = "cpu",
                 precision: str = "auto") -> None:
        self.device = torch.device(device)
        self.decoders = decoders if isinstance(decoders, DecoderSet) else load_decoders(decoders, device=self.device)
        self.decoders.to(self.device)
        self.encoder = build_extractor(self.decoders.levels, device=self.device)
        if self.device.type == "cpu":  # oneDNN's convolutions prefer channels last
            for net in (self.encoder, self.decoders):  # what Module.to(memory_format=...) does, typed
                for weight in (*net.parameters(), *net.buffers()):
                    if weight.dim() == 4:
                        weight.data = weight.data.contiguous(memory_format=torch.channels_last)
        self.dtype = autocast_dtype(precision, self.device)
        self._stats: dict[tuple[Any, ...], dict[str, StyleStats]] = {}
        self.onnx: Any = None
        """None: the networks run in PyTorch; or an :class:`impasto.universal.export.OnnxNetworks`."""

    def use_onnx(self, folder: str | os.PathLike, *, export: bool = True) -> Universal:
        """Run the encoders and decoders through onnxruntime from ``folder`` (exported there first
        unless ``export=False``); the transforms stay in PyTorch. Returns self."""
        from .export import OnnxNetworks, export_onnx

        if export:
            export_onnx(self, folder)
        self.onnx = OnnxNetworks(folder)
        self._stats.clear()
        return self

    def encode(self, image: Tensor, levels: Sequence[str]) -> dict[str, Tensor]:
        """VGG19's float32 features of ``image`` (1, 3, H, W) in [0, 1] at ``levels`` (in PyTorch one
        pass for all; through ONNX one exported encoder each)."""
        if self.onnx is not None:
            return {lv: self.onnx.encode(image, lv) for lv in levels}
        with autocast(self.device, self.dtype):
            return {lv: f.float() for lv, f in self.encoder(_layout(image.to(self.device)), levels).items()}

    def decode(self, level: str, features: Tensor) -> Tensor:
        """The image ``level``'s decoder rebuilds from ``features``, float32, clamped to [0, 1]."""
        if self.onnx is not None:
            return self.onnx.decode(level, features).clamp(0, 1)
        with autocast(self.device, self.dtype):
            return self.decoders.decoders[level](_layout(features)).float().clamp(0, 1).contiguous()

    def style(self, style: ImageLike, edge: int, levels: Sequence[str]) -> dict[str, StyleStats]:
        """The statistics of ``style`` at ``levels`` with its long edge at ``edge`` px (cached by file,
        size and levels; an image given as a tensor or PIL image is not cached)."""
        key = (str(os.path.abspath(style)), os.path.getmtime(style), edge, tuple(levels)) \
            if isinstance(style, (str, os.PathLike)) else None
        if key is not None and key in self._stats:
            return self._stats[key]
        loaded = load_image(style, reduce_to=edge)
        image = resize(loaded.flat_rgb(), fit_long_edge(loaded.size, edge))
        need = min_side(levels)
        if min(loaded.size) < need or min(image.shape[-2:]) < need:
            raise InputError(f"style image too small: {loaded.size[1]}x{loaded.size[0]} px (at {edge} px: "
                             f"{image.shape[-1]}x{image.shape[-2]}); {max(levels, key=LEVELS.index)} needs at least "
                             f"{need} px on the short side", fields=("style",))
        with torch.no_grad():
            feats = self.encode(image, levels)
        stats = {lv: style_stats(f[0]) for lv, f in feats.items()}
        if key is not None:
            if len(self._stats) >= 64:  # a service applying many paintings: keep the newest
                self._stats.pop(next(iter(self._stats)))
            self._stats[key] = stats
        return stats

    @torch.no_grad()
    def run(self, content: Tensor, styles: Sequence[dict[str, StyleStats]], cfg: UniversalConfig,
            masks: Sequence[Tensor | None] | None = None) -> Tensor:
        """(1, 3, H, W) in [0, 1] -> the same size, painted. ``masks[i]`` (H, W): where style i applies
        (None: everywhere; without masks the styles blend by their weights everywhere)."""
        missing = [lv for lv in cfg.run_levels if lv not in self.decoders.levels]
        if missing:
            raise InputError(f"these decoders have no level {', '.join(missing)}; they have "
                             f"{', '.join(self.decoders.levels)}", fields=("levels",))
        transform = TRANSFORMS[cfg.transform]
        weights = list(cfg.style_blend_weights or [1.0] * len(styles))
        if len(weights) != len(styles):
            raise InputError(f"{len(weights)} style blend weights for {len(styles)} styles",
                             fields=("style_blend_weights",))
        total = sum(weights)
        x = content.to(self.device)
        h, w = x.shape[-2:]
        for level in cfg.ordered_levels:
            feats = self.encode(x, (level,))[level]
            mixed = torch.zeros_like(feats)
            for i, (stats, weight) in enumerate(zip(styles, weights)):
                given = None if masks is None else masks[i]
                mask = None if given is None else _at(given, feats)
                if mask is None:
                    moved = transform(feats, stats[level], cfg.strength)
                    mixed = mixed + (weight / total) * moved
                else:  # regions: each style moves its own region, with that region's statistics
                    region = (mask > 0.5).to(feats)
                    mixed = mixed + region * transform(feats, stats[level], cfg.strength, mask=mask)
            if masks is not None:
                covered = torch.zeros_like(feats[0, :1])
                for m in masks:
                    if m is not None:
                        covered = covered + (_at(m, feats) > 0.5).to(feats)
                mixed = mixed + (1 - covered.clamp(max=1)) * feats  # no style: the photo's own features
            x = self.decode(level, mixed)
            if x.shape[-2:] != (h, w):  # a side that is not a multiple of the level's stride
                x = resize(x, (h, w))
        # after the last level only: restoring it between levels too was measured worse for style
        # (benchmarks/experiments/transforms.py), and the shallow levels repaint little of the layout
        radius = max(1, round(max(h, w) * STRUCTURE_RADIUS))
        return color.keep_structure(x, content.to(x.device), cfg.structure, radius)


def _layout(x: Tensor) -> Tensor:
    """Channels last on a CPU (see :class:`Universal`), as is elsewhere."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def _at(mask: Tensor, feats: Tensor) -> Tensor:
    """A (H, W) mask at the features' resolution."""
    return torch.nn.functional.interpolate(mask[None, None].float().to(feats.device), size=feats.shape[-2:],
                                           mode="bilinear", align_corners=False)[0, 0]


def stylize_universal(content: ImageLike, styles: ImageLike | Sequence[ImageLike], *,
                      model: Universal | None = None, config: UniversalConfig | None = None,
                      style_masks: Sequence[ImageLike] | None = None, output: str = "pil", **options: Any) -> Any:
    """``content`` painted in ``styles`` by universal style transfer, in one pass (see the module).

    ``options`` are :class:`UniversalConfig` fields; ``model`` reuses loaded networks and cached
    style statistics across calls (``Universal(device=...)``). Returns an 8-bit PIL image, or as
    ``output`` asks ("tensor", "loaded"), like every method."""
    from ..io.mask import load_mask

    cfg = UniversalConfig(**{**(vars(config) if config else {}), **options}) if options or config is None \
        else config
    style_list = [styles] if isinstance(styles, (str, os.PathLike)) or not isinstance(styles, Sequence) \
        else list(styles)
    if not style_list:
        raise InputError("the wct method needs at least one style image", fields=("style",))
    model = model or Universal()
    loaded = load_image(content, reduce_to=cfg.size)
    x = loaded.flat_rgb()
    if cfg.size is not None:
        x = resize(x, fit_long_edge(loaded.size, cfg.size))
    if min(x.shape[-2:]) < min_side(cfg.run_levels):
        deepest = max(cfg.run_levels, key=LEVELS.index)
        raise InputError(f"image too small: {x.shape[-1]}x{x.shape[-2]} px; level {deepest} needs at least "
                         f"{min_side(cfg.run_levels)} px on the short side (raise size, or leave out the deepest "
                         "levels)", fields=("size",))
    edge = max(x.shape[-2:])
    stats = [model.style(s, edge, cfg.run_levels) for s in style_list]
    masks = None
    if style_masks is not None:
        if len(style_masks) != len(style_list):
            raise InputError(f"{len(style_masks)} style masks for {len(style_list)} styles; give one per style",
                             fields=("style_masks",))
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        masks = [resize(load_mask(m, hw, what=f"style mask {i + 1}", max_pixels=MAX_PIXELS), hw)[0, 0]
                 for i, m in enumerate(style_masks)]
    out = model.run(x, stats, cfg, masks).cpu()
    if cfg.photo:  # the photo's edges back: smooth where the photo is flat, keep its outlines
        radius, eps = max(1, round(PHOTO_SMOOTHING[0] * edge)), PHOTO_SMOOTHING[1]
        out = guided_filter(color.luminance(x), out, radius, eps).clamp(0, 1)
    out = color.restore(out, x, cfg.preserve_color)
    return as_output(out, loaded.alpha, output, loaded.bit_depth)
