"""What every method is: :class:`Method` and the :class:`Painter` it loads (the registry that finds
one by name is :mod:`.registry`).

A *method* is a way of painting a photo: the optimization (Gatys et al.), a fast model (Johnson et
al., Dumoulin et al.), or one a plug-in adds. Jobs, batches, videos and the service know methods
only through :class:`Method`, so a new one is a class and a :func:`register` call, with no edit to
``jobs/``, ``video/`` or ``serve/``:

* ``name``, ``summary``, ``takes_styles`` (does it take style *images*?), ``styles`` (the named
  styles of its own, a fast model's), ``option_types()`` (its options as plain data: name ->
  annotated type), ``web_options`` (which of them a web client may set);
* ``check(options, n_styles)`` refuses bad options before any work, naming the option;
* ``load(options, styles, cache=...)`` returns a :class:`Painter`: networks loaded, style targets
  computed; its ``image(content)`` paints one photo and its ``frames(video)`` one video's frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import InputError

DEFAULT_VIDEO_SIZE = 512
"""Long edge of a video's frames when the method's own size is None (the input's size)."""


class FramePainter:
    """Paints one video's frames in order; ``history`` holds the earlier (content, stylized) pairs,
    newest first, both (1, 3, H, W) on the CPU. ``cancel`` (set by the video driver before the
    first frame) is the job's :class:`impasto.CancelToken`: a painter whose frame takes long checks
    it within the frame (the optimization does, before every iteration)."""

    cancel: Any = None

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        raise NotImplementedError


@dataclass(frozen=True)
class ResumeFile:
    """Where a resumable painter (:attr:`Painter.resumable`) keeps where it is: its snapshot file,
    written every ``every`` seconds; ``on_resume(work)`` is told when a run continues from one (the
    fraction of the work done then). What a driver (a service's worker) hands a method, knowing
    nothing of the method's own snapshot format."""

    path: str | os.PathLike
    every: float = 5.0
    on_resume: Callable[[float], None] | None = None
    start_from: str | os.PathLike | None = None
    """Where to resume from when ``path`` holds no snapshot yet (an earlier attempt's file: each
    attempt of a service job writes its own)."""


class Painter:
    """A method loaded for one set of options and styles: call it on as many photos as you like."""

    size: int | None = None
    """The output's long edge (None = the input's size)."""
    resumable: bool = False
    """Whether :meth:`image` takes ``snapshots=`` (an :class:`impasto.optimize.SnapshotFile`): it then
    saves where it is as it goes, and continues from there after a crash."""

    def image(self, content: Any, *, callback: Callable[[Any], Any] | None = None, cancel: Any = None,
              output: str = "pil") -> Any:
        """``content`` (a path, PIL image or (3, H, W) tensor) painted: an 8-bit PIL image; with
        ``output="tensor"`` a (1, 3, H, W) tensor in [0, 1]; with ``output="loaded"`` a
        :class:`impasto.io.LoadedImage` at full precision, with alpha (``io.image.as_output``
        makes any of the three)."""
        raise NotImplementedError

    def frames(self, video: Any) -> FramePainter:
        """A video's frames (``video`` is a :class:`impasto.video.VideoConfig`). By default each frame
        is painted on its own; a method that can be temporally consistent overrides this."""
        return _EachFrame(self)


class _EachFrame(FramePainter):
    def __init__(self, painter: Painter) -> None:
        self.painter = painter

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        return self.painter.image(content[0], output="tensor").cpu(), {}


class Method:
    """Base class of a method; subclasses set the class attributes and define ``option_types`` and
    ``load`` (see the module's docstring)."""

    name: str = ""
    summary: str = ""
    takes_styles: ClassVar[bool] = False
    """True: the job's style images are its input (the optimization). False: it paints styles of
    its own, named by the ``style`` option if it has several (a fast model)."""
    styles: tuple[str, ...] | None = None
    """The named styles of its own, or None."""
    web_options: tuple[str, ...] = ()
    """The options a web client may set (never paths on the server, devices or memory settings)."""
    one_pass: ClassVar[bool] = False
    """True: it paints in one pass of a network, no optimization (seconds or less). Such a method
    that also takes style images can give the optimization its start image (``init``)."""

    def option_types(self) -> Mapping[str, Any]:
        """Option name -> annotated type (``int | None``...): how a form field or flag is parsed."""
        raise NotImplementedError

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.option_types())

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        """Refuse bad options (and a wrong number of style images) with :class:`InputError` naming the
        option. This default refuses unknown options and style images the method does not take."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise InputError(f"the method {self.name!r} takes only {', '.join(self.options) or 'no options'}; "
                             f"not {', '.join(unknown)}", fields=tuple(unknown))
        if n_styles and not self.takes_styles:
            what = "name one with style instead of giving style images" if self.styles else "give none"
            raise InputError(f"the method {self.name!r} paints only its own styles; {what}", fields=("style",))
        if not n_styles and self.takes_styles:
            raise InputError(f"the {self.name} method needs at least one style image", fields=("styles",))
        size = options.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"size must be a positive integer; got {size!r}", fields=("size",))

    def check_web(self, options: Mapping[str, Any]) -> None:
        """What only a web client is refused (on top of :meth:`check`); nothing by default."""

    def check_content(self, options: Mapping[str, Any], size: tuple[int, int]) -> None:
        """Refuse a photo of ``size`` (height, width) that these options cannot paint (too small for
        the network, say), before any work; nothing by default."""

    def cost(self, options: Mapping[str, Any]) -> dict[str, int]:
        """The figures a server bounds (``size``, ``iterations``), as the options set them. ``size`` is
        left out when the options leave it to the photo (None): a server then refuses the job rather
        than run it unbounded."""
        size = options.get("size")
        return {"size": size} if isinstance(size, int) else {}

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> Painter:
        """A ready :class:`Painter`. ``cache`` (a dict the caller keeps) lets loaded networks be
        reused between calls; ``inputs`` are method-specific extra inputs (masks)."""
        raise NotImplementedError

    def page_fields(self) -> dict[str, dict[str, Any]]:
        """Web options the page shows as fields of their own (beyond the size, strength and colour
        controls every method shares): name -> ``{"default": text, "choices": [...] or None,
        "help": text}``. The page sends a field's text as the form does any option. None by default."""
        return {}

    default_strength: float | None = None
    """Where ``strength`` is an option: its default, for the page's slider (None: the page's own)."""

    def describe(self) -> dict[str, Any]:
        """What ``/api/methods`` shows."""
        return {"name": self.name, "summary": self.summary, "takes_styles": self.takes_styles,
                "styles": list(self.styles) if self.styles is not None else None,
                "options": list(self.web_options), "fields": self.page_fields(),
                "default_strength": self.default_strength}
