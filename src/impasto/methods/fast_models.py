"""Fast models (Johnson et al. 2016; Dumoulin et al. 2017) as methods: one per shipped model, and
any model file by its path.

Their options are ``size``, ``style`` (one of the model's own), ``style_blend_weights``,
``preserve_color`` (luminance), ``tile``, ``device`` and ``precision``; they take no style images.
In a video each frame is painted by the network and blended with the warped previous output where
the optical flow is reliable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .base import FramePainter, Method, Painter

OPTION_TYPES: dict[str, Any] = {
    "size": int | None, "style": str | None, "style_blend_weights": tuple[float, ...] | None,
    "preserve_color": str | None, "tile": int | None, "device": str, "precision": str,
}
WEB_OPTIONS = ("size", "style", "style_blend_weights", "preserve_color")


class FastModelMethod(Method):
    """A trained network; ``path`` is its model file (shipped, or the user's)."""

    takes_styles = False
    one_pass = True
    web_options = WEB_OPTIONS

    def __init__(self, name: str, path: str | os.PathLike) -> None:
        self.name, self.path = name, Path(path)
        self.summary = f"fast model ({self.path.name}): under a second, its own styles"

    @functools.cached_property
    def styles(self) -> tuple[str, ...]:  # type: ignore[override]
        from ..fast.model import read_model_file

        return tuple(read_model_file(self.path)["styles"])

    def option_types(self) -> dict[str, Any]:
        return dict(OPTION_TYPES)

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        super().check(options, n_styles)
        if options.get("preserve_color") not in (None, "luminance"):
            raise InputError("a fast model preserves color with luminance only", fields=("preserve_color",))
        style, blend = options.get("style"), options.get("style_blend_weights")
        if style is not None and blend is not None:
            raise InputError("give either style or style_blend_weights, not both",
                             fields=("style", "style_blend_weights"))
        if style is not None and style not in self.styles:
            raise InputError(f"unknown style {style!r} in model {self.name}; valid: {', '.join(self.styles)}",
                             fields=("style",))
        if blend is not None and len(blend) != len(self.styles):
            raise InputError(f"{len(blend)} style blend weights for a model with {len(self.styles)} styles "
                             f"({', '.join(self.styles)}); give one per style", fields=("style_blend_weights",))

    def check_content(self, options: Mapping[str, Any], size: tuple[int, int]) -> None:
        from ..fast.model import MIN_SIDE
        from ..ops.geometry import fit_long_edge

        target = options.get("size")
        h, w = fit_long_edge((size[0], size[1]), target) if isinstance(target, int) else size
        if min(h, w) < MIN_SIDE:
            raise InputError(f"image too small: {w}x{h} px; a fast model needs at least {MIN_SIDE} px on the short "
                             "side (raise size)", fields=("size",))

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> FastPainter:
        self.check(options, len(styles))
        given = sorted(k for k, v in inputs.items() if v is not None)
        if given:
            raise InputError(f"a fast model takes no {', '.join(given)}", fields=tuple(given))
        from ..fast.model import load_model
        from ..runtime import resolve_device

        device = resolve_device(options.get("device", "cpu"))
        precision = options.get("precision", "auto")
        key = ("fast", str(self.path.resolve()), str(device), precision)
        model = cache.get(key) if cache is not None else None
        if model is None:
            model = load_model(self.path, device=device, precision=precision)
            if cache is not None:
                cache[key] = model
        return FastPainter(model, options)


class FastPainter(Painter):
    def __init__(self, model: Any, options: Mapping[str, Any]) -> None:
        self.model = model
        self.size = options.get("size")
        self.style, self.blend = options.get("style"), options.get("style_blend_weights")
        self.preserve_color, self.tile = options.get("preserve_color"), options.get("tile")
        self.weights = model.style_vector(self.style, self.blend)

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil") -> Any:
        return self.model.stylize(content, style=self.style, style_blend_weights=self.blend, size=self.size,
                                  preserve_color=self.preserve_color, tile=self.tile, output=output)

    def frames(self, video: Any) -> FramePainter:
        return FastFrames(self, video)


class FastFrames(FramePainter):
    """The network per frame, blended with the warped previous output where the flow is reliable."""

    def __init__(self, painter: FastPainter, video: Any) -> None:
        self.painter, self.vcfg = painter, video

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        from ..ops import color

        p = self.painter
        out = p.model.run(content, p.weights, tile=p.tile or 2048).cpu().float().clamp(0, 1)
        out = color.restore(out, content, p.preserve_color)
        from ..ops.flow import blend_along_flow

        return blend_along_flow(out, content, history, self.vcfg.blend, self.vcfg.flow_preset), {}


def model_file(name: str) -> Method | None:
    """A model file given by its path is a method too (named by the path)."""
    return FastModelMethod(name, name) if os.path.isfile(name) else None


def shipped() -> list[FastModelMethod]:
    """A method per model shipped with impasto."""
    from ..fast.model import shipped_models

    return [FastModelMethod(name, path) for name, path in sorted(shipped_models().items())]
