"""A recipe: what to do with one photo (the method and its options), as plain JSON-able data.

The batch runner, the Ray tasks and the web service all describe a job with a :class:`Recipe` and
run it with a :class:`Runner`, which keeps the networks loaded between jobs. A recipe is checked
before any work starts (:meth:`Recipe.check`, which asks its method), with errors that name the
option, so a CLI flag, a form field and a JSON key are all validated by the same code.

``bit_depth`` is the output's (8 or 16; None: 16 when the content is a 16-bit image and the output
a PNG or TIFF, else 8), which is not the method's business: a method returns full precision.

``method`` is any registered method (:mod:`impasto.methods`): ``optimize`` (its options are
:class:`StylizeConfig` fields, its styles images), a shipped fast model or a model file (``size``,
``style``...), or a plug-in's.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import parse_float, parse_int
from ..errors import InputError
from ..io.image import check_bit_depth, output_bit_depth
from ..methods import Method, get_method

OPTIMIZE = "optimize"


@dataclass(frozen=True)
class Recipe:
    """One method and its options, and the output's bit depth; ``Recipe.from_json(r.to_json()) == r``."""

    method: str = OPTIMIZE
    options: Mapping[str, Any] = field(default_factory=dict)
    bit_depth: int | None = None

    def get_method(self, *, model_files: bool = True) -> Method:
        """The recipe's method; ``model_files=False``: a registered name only, never a file's path
        (a recipe from a remote client, see :func:`impasto.methods.get_method`)."""
        return get_method(self.method, model_files=model_files)

    def check(self, n_styles: int, *, model_files: bool = True) -> None:
        """Refuse bad options before any work: :class:`InputError` naming the option."""
        if self.bit_depth is not None:
            check_bit_depth(self.bit_depth)
        self.get_method(model_files=model_files).check(dict(self.options), n_styles)

    def output_bit_depth(self, content: Any, fmt: str) -> int:
        """The bit depth of this recipe's output for ``content`` in format ``fmt`` (see the module)."""
        return output_bit_depth(self.bit_depth, content, fmt)

    def with_device(self, device: str | None, *, model_files: bool = True) -> Recipe:
        """This recipe on ``device``, unless it names its own or its method runs on no device."""
        if not device or "device" in self.options or "device" not in self.get_method(model_files=model_files).options:
            return self
        return Recipe(self.method, {**self.options, "device": device}, self.bit_depth)

    def to_json(self) -> str:
        data: dict[str, Any] = {"method": self.method, "options": dict(self.options)}
        if self.bit_depth is not None:  # absent when unset: older batch manifests still match
            data["bit_depth"] = self.bit_depth
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in data["options"].items()}
        return cls(data["method"], options, data.get("bit_depth"))


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
            return parse_int(text)
        if kind is float:
            return parse_float(text)
        if typing.get_origin(kind) is tuple:
            item = args[0] if args else str
            parse = {float: parse_float, int: parse_int}.get(item, item)
            return tuple(parse(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "comma-separated numbers")
        raise InputError(f"{name} must be {what}; got {text!r}", fields=(name,)) from None
    return text


def options_from_text(fields: Mapping[str, str], method: Method, allowed: Sequence[str] | None = None
                      ) -> dict[str, Any]:
    """Typed options of ``method`` from text fields; names not in ``allowed`` (default: the method's
    ``web_options``) are refused, listing the valid ones."""
    types_ = method.option_types()
    allowed = method.web_options if allowed is None else allowed
    out: dict[str, Any] = {}
    for name, text in fields.items():
        if name not in allowed:
            raise InputError(f"unknown option {name!r}; valid: {', '.join(sorted(allowed))}", fields=(name,))
        out[name] = parse_option(name, text, types_.get(name, str))
    return out


class Runner:
    """Runs recipes in one process, keeping loss networks and fast models loaded between them.

    ``model_files=False`` (the service's worker) runs registered methods only: a recipe naming a file's
    path as its method is refused, never loaded."""

    def __init__(self, *, model_files: bool = True) -> None:
        self.cache: dict[Any, Any] = {}
        self.model_files = model_files

    def painter(self, recipe: Recipe, styles: Sequence[Any]) -> Any:
        """The recipe's method, checked and loaded (networks from this runner's cache)."""
        method = recipe.get_method(model_files=self.model_files)
        method.check(dict(recipe.options), len(styles))
        return method.load(dict(recipe.options), list(styles), cache=self.cache)

    def run(self, recipe: Recipe, content: Any, styles: Sequence[Any], *, callback: Any = None,
            cancel: Any = None, output: str = "pil", snapshots: Any = None) -> Any:
        """``content`` (a path, PIL image or tensor; styles likewise) stylized: an 8-bit PIL image,
        or as ``output`` asks (``"loaded"``: full precision, for :meth:`encode`). ``snapshots`` (a
        :class:`impasto.methods.ResumeFile`, or the method's own snapshot file) makes a resumable
        method's run continue where an earlier one stopped; other methods run whole."""
        painter = self.painter(recipe, styles)
        extra = {"snapshots": snapshots} if snapshots is not None and painter.resumable else {}
        return painter.image(content, callback=callback, cancel=cancel, output=output, **extra)

    def encode(self, recipe: Recipe, content: Any, styles: Sequence[Any], fmt: str, **kwargs: Any) -> bytes:
        """:meth:`run`, encoded in Pillow format ``fmt`` at the recipe's bit depth for ``content``."""
        from ..io.image import encode_image

        depth = recipe.output_bit_depth(content, fmt)  # refused before any work if the format cannot hold it
        return encode_image(self.run(recipe, content, styles, output="loaded", **kwargs), fmt, bit_depth=depth)

    def run_video(self, recipe: Recipe, source: Any, styles: Sequence[Any], output: Any, *, callback: Any = None,
                  cancel: Any = None) -> None:
        """The recipe's method on a video, from file to file (temporally consistent where the method
        is). Resumable: an interrupted run picks up from the frames in ``OUTPUT.frames/``."""
        from ..video.pipeline import stylize_video

        method = recipe.get_method(model_files=self.model_files)
        stylize_video(source, list(styles), output, method=method, cache=self.cache, callback=callback,
                      cancel=cancel, **recipe.options)
