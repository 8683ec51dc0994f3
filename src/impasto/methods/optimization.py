"""The optimization method (Gatys et al. 2016) as a registered method, and its video frames (Ruder et al. 2016).

Its options are the fields of :class:`impasto.optimize.StylizeConfig`; its styles are images. The
painter decodes the style images once and builds the loss network once (shared through the
caller's cache), so a batch or a video pays for them one time.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
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
    "pooling",
)


class OptimizeMethod(Method):
    name = "optimize"
    summary = "optimization (Gatys et al.): any painting, seconds to minutes"
    takes_styles = True
    web_options = WEB_OPTIONS

    def option_types(self) -> dict[str, Any]:
        from ..optimize.config import StylizeConfig

        hints: dict[str, Any] = {}
        for part in StylizeConfig.PARTS:
            hints.update(typing.get_type_hints(part))
        return hints

    def config(self, options: Mapping[str, Any]) -> Any:
        from ..optimize.config import StylizeConfig

        return StylizeConfig.from_options(**options)

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        super().check(options, n_styles)
        self.config(options).loss.check_styles(n_styles)

    def check_web(self, options: Mapping[str, Any]) -> None:
        if options.get("init", "content") not in ("content", "noise"):
            raise InputError("init must be content or noise", fields=("init",))

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
        return OptimizePainter(cfg, styles, _extractor(cfg, cache), inputs)


def _extractor(cfg: Any, cache: dict | None) -> Any:
    """The loss network for ``cfg``, built once per cache."""
    from ..nets.vgg import build_extractor
    from ..runtime import resolve_device

    device = resolve_device(cfg.network.device)
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

    return Told(resume.path, resume.every)


class OptimizePainter(Painter):
    resumable = True

    def __init__(self, cfg: Any, styles: Sequence[Any], extractor: Any, inputs: Mapping[str, Any]) -> None:
        from ..io.image import load_image

        unknown = sorted(set(inputs) - {"style_masks", "keep_mask"})
        if unknown:
            raise InputError(f"the optimize method takes style_masks and keep_mask; not {', '.join(unknown)}")
        self.cfg, self.extractor = cfg, extractor
        self.inputs = {k: v for k, v in inputs.items() if v is not None}
        self.size = cfg.optimize.size
        # Each style is decoded once, no larger than the largest scale uses it (see open_pil).
        edge = math.ceil(cfg.optimize.size * cfg.loss.style_scale * max((1.0, *cfg.loss.style_scales)))
        self.styles = [load_image(s, max_pixels=cfg.optimize.max_pixels, reduce_to=edge) for s in styles]

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil",
              snapshots: Any = None) -> Any:
        from ..optimize.pipeline import stylize

        if isinstance(snapshots, ResumeFile):
            snapshots = _snapshot_file(snapshots)
        return stylize(content, self.styles, config=self.cfg, callback=callback, cancel=cancel,
                       extractor=self.extractor, output=output, snapshots=snapshots,  # type: ignore[arg-type]
                       **self.inputs)

    def frames(self, video: Any) -> FramePainter:
        return OptimizedFrames(self, video)


class OptimizedFrames(FramePainter):
    """Ruder et al.: the first frame through the full pipeline, the others warped and refined."""

    def __init__(self, painter: OptimizePainter, video: Any) -> None:
        self.painter, self.vcfg, self.cfg = painter, video, painter.cfg
        self.frame_cfg = self.cfg.replace(scales=1, iterations=video.frame_iterations, initial_iterations=None)
        self.targets: dict[int, Any] | None = None
        self.masks: dict[str, Any] | None = None

    def _prepare(self, content: Any) -> None:
        """Once, at the first frame: style targets for every scale, and the masks at the frames' size
        (as tensors, so no frame decodes them again)."""
        from ..optimize.pipeline import compute_targets, load_inputs
        from ..runtime import resolve_device

        p = self.painter
        inputs = load_inputs(content[0], p.styles, self.cfg, **p.inputs)
        self.targets = compute_targets(inputs, self.cfg, p.extractor, resolve_device(self.cfg.network.device))
        self.masks = {k: v for k, v in (("style_masks", inputs.style_masks), ("keep_mask", inputs.keep_mask))
                      if v is not None}

    def frame(self, content: Any, history: Sequence[tuple[Any, Any]]) -> tuple[Any, dict[str, float]]:
        from ..losses.temporal import TemporalTerm
        from ..ops import color
        from ..optimize.pipeline import stylize

        last: dict[str, float] = {}

        def keep(event: Any) -> None:
            last.clear()
            last.update(event.losses)

        if self.targets is None:
            self._prepare(content)
        assert self.targets is not None and self.masks is not None
        p = self.painter
        if not history:
            out = stylize(content[0], p.styles, config=self.cfg, extractor=p.extractor, targets=self.targets,
                          output="tensor", callback=keep, cancel=self.cancel, **self.masks)
            return out.cpu(), dict(last)
        warped, weights = warped_history(content, history, self.vcfg.long_term, self.vcfg.flow_preset)
        init = warped[0]
        warped = [color.seen(w, self.cfg.optimize.preserve_color) for w in warped]
        term = TemporalTerm(warped, weights)
        out = stylize(content[0], p.styles, config=self.frame_cfg, extractor=p.extractor,
                      targets={self.cfg.optimize.size: self.targets[self.cfg.optimize.size]}, init_image=init[0],
                      extra_terms={"temporal": (term, self.vcfg.temporal_weight)}, output="tensor", callback=keep,
                      cancel=self.cancel, **self.masks)
        return out.cpu(), dict(last)


def warped_history(content: Any, history: Sequence[tuple[Any, Any]], long_term: Sequence[int],
                   preset: str) -> tuple[list[Any], list[Any]]:
    """Earlier stylized frames warped onto this one, with long-term weights (Ruder et al., eq. 8)."""
    import torch

    from ..ops.flow import reliable_flow, warp

    warped, weights = [], []
    covered = torch.zeros(1, 1, *content.shape[-2:])
    for j in sorted(long_term):
        if j > len(history):
            break
        earlier_content, earlier_out = history[j - 1]
        fwd, c = reliable_flow(content, earlier_content, preset)
        weights.append((c - covered).clamp_min(0))
        covered = covered + weights[-1]
        warped.append(warp(earlier_out, fwd))
    return warped, weights

