"""Universal style transfer (Li et al. 2017, the WCT family) as a method: any painting, one pass.

Options: ``size``, ``strength`` (0..1), ``structure`` (0..1: the photo's shapes kept), ``levels``
(relu5_1..relu1_1), ``transform`` (ost, wct, adain, efdm or histogram), ``style_blend_weights``,
``preserve_color`` (luminance), and the operator's ``decoders`` (a decoder file; default the
shipped one), ``device`` and ``precision``. It takes style images,
and ``style_masks`` (a style per region). In a video each frame is painted on its own and
blended with the warped previous output where the optical flow is reliable, as for the fast models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from .base import FramePainter, Method, Painter

OPTION_TYPES: dict[str, Any] = {
    "size": int | None, "strength": float, "structure": float, "levels": tuple[str, ...], "transform": str,
    "style_blend_weights": tuple[float, ...] | None, "preserve_color": str | None,
    "photo": bool, "decoders": str | None, "device": str, "precision": str,
}
WEB_OPTIONS = ("size", "strength", "structure", "levels", "transform", "style_blend_weights", "preserve_color",
               "photo")


class UniversalMethod(Method):
    name = "wct"
    summary = "universal (WCT, Li et al. 2017): any painting in one pass, seconds on a CPU"
    takes_styles = True
    one_pass = True
    web_options = WEB_OPTIONS
    default_strength = 1.0  # UniversalConfig.strength: the whole way to the painting's statistics

    def option_types(self) -> dict[str, Any]:
        return dict(OPTION_TYPES)

    def page_fields(self) -> dict[str, dict[str, Any]]:
        from ..universal.stylize import DEFAULT_LEVELS, TRANSFORMS, UniversalConfig

        levels = "levels, deepest first (relu5_1 ... relu1_1); fewer deep ones keep more of the photo"
        return {"levels": {"default": ",".join(DEFAULT_LEVELS), "choices": None, "help": levels},
                "transform": {"default": UniversalConfig.transform, "choices": list(TRANSFORMS),
                              "help": "ost: the painting's feature correlations, moving the photo least; wct: the "
                                      "same, less of the photo; adain: only their mean and spread; efdm, histogram: "
                                      "whole histograms"},
                "structure": {"default": f"{UniversalConfig.structure:g}", "choices": None,
                              "help": "0..1: how much of the photo's shapes the painting keeps"},
                "photo": {"default": "false", "choices": ["false", "true"],
                          "help": "photorealistic: a style photo's colours and mood, no painterly texture"}}

    def config(self, options: Mapping[str, Any]) -> Any:
        from ..universal.stylize import UniversalConfig

        return UniversalConfig(**{k: v for k, v in options.items() if k not in ("decoders", "device", "precision")})

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        super().check(options, n_styles)
        cfg = self.config(options)
        if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != n_styles:
            raise InputError(f"{len(cfg.style_blend_weights)} style blend weights for {n_styles} style images; "
                             "give one per style", fields=("style_blend_weights",))

    def check_content(self, options: Mapping[str, Any], size: tuple[int, int]) -> None:
        from ..ops.geometry import fit_long_edge
        from ..universal.stylize import LEVELS, min_side

        cfg = self.config(options)
        h, w = fit_long_edge((size[0], size[1]), cfg.size) if cfg.size else size
        if min(h, w) < min_side(cfg.run_levels):
            deepest = max(cfg.run_levels, key=LEVELS.index)
            raise InputError(f"image too small: {w}x{h} px; level {deepest} needs at least "
                             f"{min_side(cfg.run_levels)} px on the short side (raise size, or leave out the deepest "
                             "levels)", fields=("size",))

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> UniversalPainter:
        from ..runtime import resolve_device
        from ..universal.stylize import Universal

        self.check(options, len(styles))
        unknown = sorted(k for k, v in inputs.items() if v is not None and k != "style_masks")
        if unknown:
            raise InputError(f"the wct method takes style_masks; not {', '.join(unknown)}", fields=tuple(unknown))
        device = resolve_device(options.get("device", "cpu"))
        precision = options.get("precision", "auto")
        key = ("universal", options.get("decoders"), str(device), precision)
        model = cache.get(key) if cache is not None else None
        if model is None:
            model = Universal(options.get("decoders"), device=device, precision=precision)
            if cache is not None:
                cache[key] = model
        return UniversalPainter(model, self.config(options), list(styles), inputs.get("style_masks"))


class UniversalPainter(Painter):
    def __init__(self, model: Any, cfg: Any, styles: list[Any], masks: Any) -> None:
        self.model, self.cfg, self.styles, self.masks = model, cfg, styles, masks
        self.size = cfg.size

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil") -> Any:
        from ..universal.stylize import stylize_universal

        return stylize_universal(content, self.styles, model=self.model, config=self.cfg, style_masks=self.masks,
                                 output=output)

    def frames(self, video: Any) -> FramePainter:
        return UniversalFrames(self, video)


class UniversalFrames(FramePainter):
    """Each frame painted, blended with the warped previous output where the flow is reliable."""

    def __init__(self, painter: UniversalPainter, video: Any) -> None:
        self.painter, self.vcfg = painter, video

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        out = self.painter.image(content[0], output="tensor").cpu().float()
        if out.shape[-2:] != content.shape[-2:]:
            from ..ops.geometry import resize

            out = resize(out, tuple(content.shape[-2:]))
        from ..ops.flow import blend_along_flow

        return blend_along_flow(out, content, history, self.vcfg.blend, self.vcfg.flow_preset), {}
