"""A recipe: what to do with one photo (the method and its options), as plain JSON-able data.

The batch runner, the Ray tasks and the web service all describe a job with a :class:`Recipe` and
run it with a :class:`Runner`, which keeps the networks loaded between jobs. A recipe is checked
before any work starts (:meth:`Recipe.check`), with errors that name the option, so a CLI flag, a
form field and a JSON key are all validated by the same code.

* ``method="optimize"`` (Gatys et al.): the options are :class:`StylizeConfig` fields; the styles
  are images.
* ``method=MODEL`` (a shipped model's name or a model file): the options are ``size``, ``style``,
  ``style_blend_weights`` and ``preserve_color``; the style is one of the model's own.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

OPTIMIZE = "optimize"
MODEL_OPTIONS = ("size", "style", "style_blend_weights", "preserve_color", "tile", "device")


@dataclass(frozen=True)
class Recipe:
    """One method and its options; ``Recipe.from_json(r.to_json()) == r``."""

    method: str = OPTIMIZE
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_model(self) -> bool:
        return self.method != OPTIMIZE

    def config(self) -> Any:
        """The :class:`StylizeConfig` of an optimize recipe."""
        from ..optimize.config import StylizeConfig

        return StylizeConfig.from_options(**self.options)

    def check(self, n_styles: int) -> None:
        """Refuse bad options before any work: :class:`InputError` naming the option."""
        if self.is_model:
            unknown = sorted(set(self.options) - set(MODEL_OPTIONS))
            if unknown:
                raise InputError(f"a fast model takes only {', '.join(MODEL_OPTIONS)}; not {', '.join(unknown)}",
                                 fields=tuple(unknown))
            if n_styles:
                raise InputError(f"the fast model {self.method!r} paints only its own styles; name one with "
                                 "style instead of giving style images", fields=("style",))
            size = self.options.get("size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
                raise InputError(f"size must be a positive integer; got {size!r}", fields=("size",))
            return
        if n_styles < 1:
            raise InputError("the optimize method needs at least one style image")
        self.config().loss.check_styles(n_styles)

    def to_json(self) -> str:
        return json.dumps({"method": self.method, "options": dict(self.options)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in data["options"].items()}
        return cls(data["method"], options)


def option_types() -> dict[str, Any]:
    """Field name -> annotated type (``int | None``...) of every optimize option."""
    from ..config import LossConfig, NetworkConfig
    from ..optimize.config import OptimizeConfig

    hints: dict[str, Any] = {}
    for part in (NetworkConfig, LossConfig, OptimizeConfig):
        hints.update(typing.get_type_hints(part))
    hints.update(style=str)
    return hints


def parse_option(name: str, text: str, kind: Any) -> Any:
    """A text value (a form field, a query string) as the type its option takes."""
    args = typing.get_args(kind)
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if text.strip() == "" or text.strip().lower() == "none":
            return None
        return parse_option(name, text, inner[0])
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "on", "off", "yes", "no"):
                raise ValueError
            return lowered in ("1", "true", "on", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if typing.get_origin(kind) is tuple:
            item = args[0] if args else str
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "comma-separated numbers")
        raise InputError(f"{name} must be {what}; got {text!r}", fields=(name,)) from None
    return text


def options_from_text(fields: Mapping[str, str], allowed: Sequence[str]) -> dict[str, Any]:
    """Typed options from text fields; unknown names are refused, listing the valid ones."""
    types_ = option_types()
    out: dict[str, Any] = {}
    for name, text in fields.items():
        if name not in allowed:
            raise InputError(f"unknown option {name!r}; valid: {', '.join(sorted(allowed))}", fields=(name,))
        out[name] = parse_option(name, text, types_.get(name, str))
    return out


class Runner:
    """Runs recipes in one process, keeping the loss network and fast models loaded between them."""

    def __init__(self) -> None:
        self._extractors: dict[tuple, Any] = {}
        self._models: dict[tuple[str, str], Any] = {}

    def model(self, name: str, device: str = "cpu") -> Any:
        from ..fast.model import load_model
        from ..runtime import resolve_device

        key = (name, device)
        if key not in self._models:
            self._models[key] = load_model(name, device=resolve_device(device))
        return self._models[key]

    def extractor(self, cfg: Any) -> Any:
        from ..nets.vgg import build_extractor
        from ..runtime import resolve_device

        device = resolve_device(cfg.network.device)
        key = (cfg.loss.layers, cfg.network.weights, cfg.network.pooling, str(device))
        if key not in self._extractors:
            self._extractors[key] = build_extractor(cfg.loss.layers, weights=cfg.network.weights,
                                                    pooling=cfg.network.pooling, device=device)
        return self._extractors[key]

    def run(self, recipe: Recipe, content: Any, styles: Sequence[Any], *, callback: Any = None,
            cancel: Any = None) -> Any:
        """The stylized PIL image of ``content`` (a path, PIL image or tensor); styles likewise."""
        recipe.check(len(styles))
        if recipe.is_model:
            options = dict(recipe.options)
            model = self.model(recipe.method, options.pop("device", "cpu"))
            return model.stylize(content, **options)
        from ..optimize.pipeline import stylize

        cfg = recipe.config()
        return stylize(content, list(styles), config=cfg, callback=callback, cancel=cancel,
                       extractor=self.extractor(cfg))

    def run_video(self, recipe: Recipe, source: Any, styles: Sequence[Any], output: Any, *, callback: Any = None,
                  cancel: Any = None) -> None:
        """The video method (Ruder et al., or a fast model blended along the flow) from file to file.

        Resumable: an interrupted run picks up from the frames in ``OUTPUT.frames/``.
        """
        from ..video.pipeline import stylize_video

        recipe.check(len(styles))
        if recipe.is_model:
            unused = sorted(set(recipe.options) - {"style", "size", "device"})
            if unused:
                raise InputError(f"videos with a fast model take style and size only; not {', '.join(unused)}",
                                 fields=tuple(unused))
            stylize_video(source, [], output, model=recipe.method, callback=callback, cancel=cancel,
                          **recipe.options)
        else:
            stylize_video(source, list(styles), output, config=recipe.config(), callback=callback, cancel=cancel)
