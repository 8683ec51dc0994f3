"""The optimization method (Gatys et al. 2016) as a registered method; its video frames are
:mod:`impasto.optimize.video`'s (Ruder et al. 2016).

Its options are the fields of :class:`impasto.optimize.StylizeConfig`; its styles are images. The
painter decodes the style images once and builds the loss network once (shared through the
caller's cache), so a batch or a video pays for them one time.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InputError
from .base import FramePainter, Method, Painter, ResumeFile

# Options a web client may set. Paths (weights, init images), devices and memory settings stay the
# operator's: a client never names a file on the server.
WEB_OPTIONS = (
    "size", "iterations", "initial_iterations", "scales", "start_size", "scale_ratio", "upsample_detail",
    "style_scale", "content_weight", "style_weight", "strength", "tv_weight", "content_layers", "style_layers",
    "style_layer_weights", "style_layer_factors", "style_blend_weights", "normalization", "style_loss", "mrf_stride",
    "style_rotations", "style_scales", "optimizer", "learning_rate", "ema_decay", "init", "seed", "preserve_color",
    "pooling", "preset",
)


class OptimizeMethod(Method):
    name = "optimize"
    summary = "optimization (Gatys et al.): any painting, seconds to minutes"
    takes_styles = True
    web_options = WEB_OPTIONS

    def __init__(self, methods: Callable[[], Mapping[str, Method]] | None = None) -> None:
        self.methods = methods or dict
        """The methods ``init`` may name, by name (the registry hands its ``available``; none without it)."""

    def start_method(self, init: Any) -> Method | None:
        """The one-pass method ``init`` names, or None (see :func:`init_method`)."""
        return init_method(init, self.methods())

    def option_types(self) -> dict[str, Any]:
        from ..optimize.config import StylizeConfig

        hints: dict[str, Any] = {}
        for part in StylizeConfig.PARTS:
            hints.update(typing.get_type_hints(part))
        hints["preset"] = str | None  # a named set of the others (optimize.PRESETS), under the ones given
        return hints

    def config(self, options: Mapping[str, Any]) -> Any:
        from ..optimize.config import StylizeConfig, with_preset

        given = dict(options)
        return StylizeConfig.from_options(**with_preset(given.pop("preset", None), given))

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        super().check(options, n_styles)
        cfg = self.config(options)
        cfg.loss.check_styles(n_styles)
        start = self.start_method(cfg.optimize.init)
        if start is not None:
            start.check(init_options(start, cfg), n_styles)

    def check_web(self, options: Mapping[str, Any]) -> None:
        init = options.get("init", "content")
        if init not in ("content", "noise") and self.start_method(init) is None:  # never a path on the server
            raise InputError(f"init must be content, noise or one of {', '.join(one_pass_methods(self.methods()))}",
                             fields=("init",))

    def page_fields(self) -> dict[str, dict[str, Any]]:
        from ..optimize.config import PRESETS

        return {"preset": {"default": "", "choices": ["", *PRESETS],
                           "help": "quick: a one-pass painting (shown at once), then refined at full size: "
                                   "about half the time"},
                # empty: not sent, so the preset's init (or the photo) applies
                "init": {"default": "", "choices": ["", "content", "noise", *one_pass_methods(self.methods())],
                         "help": "start image: the photo (content; the default), noise, or a one-pass painting "
                                 "(seen at once as a preview, then refined)"}}

    def check_content(self, options: Mapping[str, Any], size: tuple[int, int]) -> None:
        from ..ops.geometry import fit_long_edge
        from ..optimize.pipeline import check_smallest_scale

        cfg = self.config(options)
        first = cfg.optimize.pyramid()[0]
        check_smallest_scale(fit_long_edge(size, first), first, cfg)

    def cost(self, options: Mapping[str, Any]) -> dict[str, int]:
        cfg = self.config(options)
        opt = cfg.optimize
        copies = 1 + len(cfg.loss.style_rotations) + len(cfg.loss.style_scales)
        # an upper bound (a square photo): the photo's aspect is not known until it is decoded
        work = sum(n * e * e for e, n in zip(opt.pyramid(), opt.scale_iterations())) * (1 + 0.25 * (copies - 1))
        cost = {"size": opt.size, "iterations": opt.iterations, "work": round(work / 1e6)}
        if opt.initial_iterations is not None:
            cost["initial_iterations"] = opt.initial_iterations
        return cost

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> OptimizePainter:
        cfg = self.config(options)
        cfg.loss.check_styles(len(styles))
        return OptimizePainter(cfg, styles, _extractor(cfg, cache), inputs, cache=cache, methods=self.methods())


def one_pass_methods(methods: Mapping[str, Method]) -> list[str]:
    """Those of ``methods`` that can paint the optimization's start image: one pass, style images."""
    return [name for name, m in methods.items() if m.takes_styles and m.one_pass]


def init_method(init: Any, methods: Mapping[str, Method]) -> Method | None:
    """The method of ``methods`` that ``init`` names (``init="wct"``: the optimization starts from that
    method's one-pass painting, coarse to fine as ever), or None for content, noise or an image's
    path. A method's name wins over a file of that name (write ``./wct`` for the file). A method that
    cannot paint from style images in one pass is refused with one line naming those that can."""
    if not isinstance(init, str) or init in ("content", "noise"):
        return None
    method = methods.get(init)
    if method is None:
        return None
    if method.takes_styles and method.one_pass:
        return method
    why = ("is the optimization itself" if isinstance(method, OptimizeMethod)
           else "paints only its own styles" if not method.takes_styles else "does not paint in one pass")
    raise InputError(f"init {init!r} {why}; init takes content, noise, an image's path or a method that paints "
                     f"from style images in one pass: {', '.join(one_pass_methods(methods)) or 'none installed'}",
                     fields=("init",))


def init_options(method: Method, cfg: Any) -> dict[str, Any]:
    """The options of the one-pass ``method`` that paints the start image of the run ``cfg``: its
    output size, and the run's style blend weights, (first) device and precision where it takes them."""
    types = method.option_types()
    options: dict[str, Any] = {"size": cfg.optimize.size, "device": cfg.network.device.split(",")[0].strip(),
                               "precision": cfg.network.precision}
    if cfg.loss.style_blend_weights is not None:
        options["style_blend_weights"] = cfg.loss.style_blend_weights
    return {k: v for k, v in options.items() if k in types}


class StartPainter:
    """Paints the optimization's start image with a one-pass method, and shows it at once: a
    :class:`impasto.progress.Preview` event carries it to the callback before the first step."""

    def __init__(self, method: Method, cfg: Any, styles: Sequence[Any], *, cache: dict | None,
                 style_masks: Any = None) -> None:
        masks = {"style_masks": style_masks} if style_masks is not None else {}
        self.name = method.name
        self.painter = method.load(init_options(method, cfg), list(styles), cache=cache, **masks)

    def __call__(self, content: Any, callback: Any = None) -> Any:
        """(3, H, W) float32 on the CPU: ``content`` painted."""
        import time

        from ..progress import Preview

        start = time.perf_counter()
        image = self.painter.image(content, output="tensor").detach().float().cpu()
        if callback is not None:
            callback(Preview(method=self.name, elapsed=time.perf_counter() - start, _render=lambda: image))
        return image[0]


def split_init(cfg: Any, styles: Sequence[Any], methods: Mapping[str, Method], *, cache: dict | None = None,
               style_masks: Any = None) -> tuple[Any, StartPainter | None]:
    """``cfg`` and the painter of its start image when ``init`` names a one-pass method of ``methods``
    (the config then says ``init="content"``, so the optimization's own code never sees a method's name)."""
    method = init_method(cfg.optimize.init, methods)
    if method is None:
        return cfg, None
    return cfg.replace(init="content"), StartPainter(method, cfg, styles, cache=cache, style_masks=style_masks)


def _extractor(cfg: Any, cache: dict | None) -> Any:
    """The loss network for ``cfg``, built once per cache."""
    from ..nets.vgg import build_extractor
    from ..runtime import resolve_devices

    device = resolve_devices(cfg.network.device)[0]  # a list spreads a print's tiles; the network lives on the first
    key = ("vgg", cfg.loss.layers, cfg.network.weights, cfg.network.pooling, str(device))
    if cache is not None and key in cache:
        return cache[key]
    extractor = build_extractor(cfg.loss.layers, weights=cfg.network.weights, pooling=cfg.network.pooling,
                                device=device)
    if cache is not None:
        cache[key] = extractor
    return extractor


def _snapshot_file(resume: ResumeFile) -> Any:
    """The optimization's :class:`SnapshotFile` for a driver's :class:`ResumeFile`."""
    from ..optimize.snapshot import Snapshot, SnapshotFile

    class Told(SnapshotFile):
        def resumed(self, snapshot: Snapshot) -> None:
            super().resumed(snapshot)
            if resume.on_resume is not None:
                resume.on_resume(snapshot.work)

    return Told(resume.path, resume.every, resume.start_from)


class OptimizePainter(Painter):
    resumable = True

    def __init__(self, cfg: Any, styles: Sequence[Any], extractor: Any, inputs: Mapping[str, Any], *,
                 cache: dict | None = None, methods: Mapping[str, Method] | None = None) -> None:
        from ..io.image import load_image

        unknown = sorted(set(inputs) - {"style_masks", "keep_mask"})
        if unknown:
            raise InputError(f"the optimize method takes style_masks and keep_mask; not {', '.join(unknown)}")
        self.inputs = {k: v for k, v in inputs.items() if v is not None}
        cfg, self.start = split_init(cfg, styles, methods or {}, cache=cache,
                                     style_masks=self.inputs.get("style_masks"))
        self.cfg, self.extractor = cfg, extractor
        self.size = cfg.optimize.size
        # Each style is decoded once, no larger than the largest scale uses it (see open_pil).
        edge = math.ceil(cfg.optimize.size * cfg.loss.style_scale * max((1.0, *cfg.loss.style_scales)))
        self.styles = [load_image(s, max_pixels=cfg.optimize.max_pixels, reduce_to=edge) for s in styles]

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil",
              snapshots: Any = None) -> Any:
        from ..optimize.pipeline import stylize

        if isinstance(snapshots, ResumeFile):
            snapshots = _snapshot_file(snapshots)
        init = None if self.start is None else self.start(content, callback)
        return stylize(content, self.styles, config=self.cfg, callback=callback, cancel=cancel,
                       extractor=self.extractor, output=output, snapshots=snapshots,  # type: ignore[arg-type]
                       init_image=init, **self.inputs)

    def frames(self, video: Any) -> FramePainter:
        return OptimizedFrames(self, video)


class OptimizedFrames(FramePainter):
    """The registry's adapter of the optimization's video algorithm (Ruder et al.,
    :class:`impasto.optimize.video.RuderFrames`): this painter's styles, network and inputs."""

    def __init__(self, painter: OptimizePainter, video: Any) -> None:
        from ..optimize.video import RuderFrames

        self.frames = RuderFrames(painter.styles, painter.cfg, painter.extractor, painter.inputs, video,
                                  painter.start)

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        return self.frames.frame(content, history, self.cancel)
