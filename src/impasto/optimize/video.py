"""The optimization's video algorithm (Ruder et al. 2016): the first frame through the whole
coarse-to-fine pipeline, every later frame started from the previous output warped onto it and
refined at the output size with a temporal term that holds it to the warped earlier outputs
where the optical flow is reliable (long-term weights, eq. 8).

The style targets (every scale's) and the masks are computed once, at the first frame; the loss
network is the caller's. The registry's adapter (:class:`impasto.methods.optimization.OptimizedFrames`)
hands it the frames; the video driver knows neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from .config import StylizeConfig


class RuderFrames:
    """One video's frames in order. ``styles`` are decoded style images, ``inputs`` the masks and
    paths :func:`impasto.optimize.load_inputs` takes, ``start`` an optional one-pass painter of the
    first frame (``--init METHOD``), ``video`` the :class:`impasto.video.VideoConfig` (its
    ``frame_iterations``, ``temporal_weight``, ``long_term`` and ``flow_preset``)."""

    def __init__(self, styles: Sequence[Any], cfg: StylizeConfig, extractor: Any, inputs: dict[str, Any],
                 video: Any, start: Callable[[Tensor], Tensor] | None = None) -> None:
        self.styles, self.cfg, self.extractor, self.inputs, self.video, self.start = \
            styles, cfg, extractor, inputs, video, start
        self.frame_cfg = cfg.replace(scales=1, iterations=video.frame_iterations, initial_iterations=None)
        self.targets: dict[int, Any] | None = None
        self.masks: dict[str, Any] | None = None

    def _prepare(self, content: Tensor) -> None:
        """Once, at the first frame: style targets for every scale, and the masks at the frames' size
        (as tensors, so no frame decodes them again)."""
        from ..runtime import resolve_devices
        from .pipeline import compute_targets, load_inputs

        inputs = load_inputs(content[0], self.styles, self.cfg, **self.inputs)
        self.targets = compute_targets(inputs, self.cfg, self.extractor, resolve_devices(self.cfg.network.device)[0])
        self.masks = {k: v for k, v in (("style_masks", inputs.style_masks), ("keep_mask", inputs.keep_mask))
                      if v is not None}

    def frame(self, content: Tensor, history: Sequence[tuple[Tensor, Tensor]],
              cancel: Any = None) -> tuple[Tensor, dict[str, float]]:
        """The frame ``content`` (1, 3, H, W) painted, given the earlier (content, output) pairs,
        newest first: (output on the CPU, the last iteration's losses)."""
        from ..losses.temporal import TemporalTerm
        from ..ops import color
        from ..ops.flow import warped_history
        from .pipeline import stylize

        last: dict[str, float] = {}

        def keep(event: Any) -> None:
            last.clear()
            last.update(event.losses)

        if self.targets is None:
            self._prepare(content)
        assert self.targets is not None and self.masks is not None
        if not history:
            init = None if self.start is None else self.start(content[0])
            out = stylize(content[0], self.styles, config=self.cfg, extractor=self.extractor, targets=self.targets,
                          init_image=init, output="tensor", callback=keep, cancel=cancel, **self.masks)
            return out.cpu(), dict(last)
        warped, weights = warped_history(content, history, self.video.long_term, self.video.flow_preset)
        init = warped[0]
        warped = [color.seen(w, self.cfg.optimize.preserve_color) for w in warped]
        term = TemporalTerm(warped, weights)
        size = self.cfg.optimize.size
        out = stylize(content[0], self.styles, config=self.frame_cfg, extractor=self.extractor,
                      targets={size: self.targets[size]}, init_image=init[0],
                      extra_terms={"temporal": (term, self.video.temporal_weight)}, output="tensor", callback=keep,
                      cancel=cancel, **self.masks)
        return out.cpu(), dict(last)
