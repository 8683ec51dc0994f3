"""Temporally consistent video stylization (Ruder, Dosovitskiy & Brox, GCPR 2016).

Each frame after the first starts from the previous stylized frame warped by the optical flow,
and minimizes the image loss plus a temporal loss: the reliability-weighted squared difference
from that warped frame (``losses.temporal``). Style targets are computed once for the whole
video and the network is built once; the first frame uses the full image pipeline
(coarse-to-fine), later frames a single scale at the output size and far fewer iterations.

Departures from the paper: DIS optical flow (milliseconds per frame on a CPU) instead of
DeepMatching + EpicFlow (minutes); relative content and style losses (see the image method), so
the temporal weight is a plain ratio too; no multi-pass algorithm.

Frames are written to a work folder beside the output as they are made (``OUTPUT.frames/``, with
the run's settings in ``settings.json``): an interrupted or crashed run resumes at the first
missing frame when run again with the same settings; changed settings start afresh. The video is
encoded from those frames at the end, atomically, with the input's timestamps and its sound.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ..config import non_negative, positive_int
from ..errors import InputError, Interrupted, StylizeInterrupted
from ..io.image import ImageLike, load_image, save_image, to_pil
from ..methods import DEFAULT_VIDEO_SIZE, FramePainter, Method, get_method
from ..ops.flow import PRESETS, reliable_flow, warp
from ..ops.geometry import fit_long_edge, resize
from ..progress import CancelToken, FrameProgress
from .io import check_output, encode, probe, read_frames

if TYPE_CHECKING:  # for the annotation only: the optimization's config is its method's business
    from ..optimize.config import StylizeConfig


@dataclass(frozen=True)
class VideoConfig:
    """Settings of the video method (the image settings are a :class:`StylizeConfig`)."""

    temporal_weight: float = 200.0
    """Weight of the temporal loss (mean squared difference from the warped previous frame)."""
    frame_iterations: int = 10
    """Iterations for each frame after the first (single scale, at the output size)."""
    long_term: tuple[int, ...] = (1,)
    """Earlier frames each frame is kept consistent with (1 = the previous; e.g. 1,2,4 for long-term)."""
    flow_preset: str = "medium"
    """DIS optical flow preset: ultrafast, fast or medium."""
    start: float = 0.0
    """Seconds into the input where to begin."""
    duration: float | None = None
    """Seconds to stylize (None = to the end)."""
    crf: int = 18
    """Encoder quality: 0 (lossless) to 51 (worst); 18 looks like the input."""
    blend: float = 0.7
    """Fast models only: how much of the warped previous output to keep where the flow is reliable."""

    def __post_init__(self) -> None:
        non_negative("temporal_weight", self.temporal_weight)
        positive_int("frame_iterations", self.frame_iterations)
        if not self.long_term or any(isinstance(j, bool) or not isinstance(j, int) or j < 1 for j in self.long_term):
            raise InputError(f"long_term must be frame distances >= 1, e.g. 1,2,4; got {self.long_term!r}",
                             fields=("long_term",))
        if self.flow_preset not in PRESETS:
            raise InputError(f"unknown flow_preset {self.flow_preset!r}; valid: {', '.join(PRESETS)}",
                             fields=("flow_preset",))
        non_negative("start", self.start)
        if self.duration is not None and not (isinstance(self.duration, (int, float)) and self.duration > 0):
            raise InputError(f"duration must be a positive number of seconds; got {self.duration!r}",
                             fields=("duration",))
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise InputError(f"crf must be an integer from 0 to 51; got {self.crf!r}", fields=("crf",))
        if not 0 <= self.blend <= 1:
            raise InputError(f"blend must be from 0 to 1; got {self.blend!r}", fields=("blend",))


def work_folder(output: str | os.PathLike) -> Path:
    """Where the frames of ``output`` are kept while they are made (the folder itself for folder output)."""
    out = Path(output)
    return out if check_output(out) == "folder" else out.with_name(out.name + ".frames")


def _fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}


def _settings(input: str, styles: Sequence[ImageLike], method: str, options: dict[str, Any],
              vcfg: VideoConfig) -> dict[str, Any]:
    style_ids = [_fingerprint(s) if isinstance(s, (str, os.PathLike)) else hashlib.sha256(
        load_image(s).rgb.numpy().tobytes()).hexdigest() for s in styles]
    return {"input": _fingerprint(input) if os.path.isfile(input) else str(Path(input).resolve()),
            "styles": style_ids, "method": method, "options": {k: repr(v) for k, v in sorted(options.items())},
            "video": asdict(vcfg)}


def _prepare_work(folder: Path, settings: dict[str, Any], notes: list[str]) -> None:
    path = folder / "settings.json"
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples become lists)
    if folder.exists() and path.exists():
        if json.loads(path.read_text()) == settings:
            return
        notes.append(f"settings changed since the frames in {str(folder)!r} were made: starting afresh")
        for f in folder.glob("frame_*.png"):
            f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1))


def _frame_path(folder: Path, index: int) -> Path:
    return folder / f"frame_{index + 1:06d}.png"


def stylize_video(
    input: str | os.PathLike,
    styles: ImageLike | Sequence[ImageLike],
    output: str | os.PathLike,
    *,
    method: str | Method | None = None,
    config: StylizeConfig | None = None,
    video: VideoConfig | None = None,
    model: str | os.PathLike | None = None,
    style: str | None = None,
    callback: Callable[[FrameProgress], Any] | None = None,
    cancel: CancelToken | None = None,
    notes: list[str] | None = None,
    cache: dict | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    keep_mask: ImageLike | None = None,
    **options: Any,
) -> Path:
    """Stylize the video (or numbered-frame folder) ``input`` into ``output`` (a video file or a folder).

    ``method`` is any registered method (:mod:`impasto.methods`; default ``optimize``, or ``model``
    when that is given), ``options`` its options (``size``, ``style_weight``...; for ``optimize``
    also a whole ``config``). The optimization follows Ruder et al. (``styles`` as for
    :func:`impasto.stylize`); a fast model (``style`` picks one of its styles) paints each frame and
    blends it with the warped previous output where the flow is reliable; any other method paints
    frame by frame as it defines. ``notes`` collects what the caller should tell the user (skipped
    corrupt frames, a fresh start after changed settings). ``cache`` keeps loaded networks between
    calls. Returns the output path.
    """
    started = time.perf_counter()
    vcfg = video or VideoConfig()
    notes = notes if notes is not None else []
    style_list: list[ImageLike] = list(styles) if isinstance(styles, (list, tuple)) else [styles]  # type: ignore[list-item]
    chosen, opts = _method(method, model, config, style, options)
    chosen.check(opts, len(style_list))
    src = str(input)
    info = probe(src)
    fmt = check_output(output)
    if os.path.exists(output) and os.path.realpath(output) == os.path.realpath(src):
        raise InputError(f"output {str(output)!r} is the input; choose another path")
    _check_span(vcfg, info.duration)
    masks = {k: v for k, v in (("style_masks", style_masks), ("keep_mask", keep_mask)) if v is not None}
    painter = chosen.load(opts, style_list, cache=cache, **masks)
    size = fit_long_edge(info.size, painter.size or DEFAULT_VIDEO_SIZE)
    folder = work_folder(output)
    _prepare_work(folder, _settings(src, style_list, chosen.name, opts, vcfg), notes)
    expected = _expected_frames(vcfg, info)
    warn: list[str] = []
    done = _paint(src, vcfg, painter.frames(vcfg), size, folder, expected, callback, cancel, started, warn)
    notes.extend(warn)
    if not done:
        raise InputError(f"no frames decoded from {src!r} between {vcfg.start:g} s and the end")
    if fmt != "folder":
        encode(done, output, source=src, start=vcfg.start, duration=vcfg.duration, fps=info.fps, crf=vcfg.crf,
               origin=info.origin)
        shutil.rmtree(folder, ignore_errors=True)
    return Path(output)


def _method(method: str | Method | None, model: str | os.PathLike | None, config: StylizeConfig | None,
            style: str | None, options: dict[str, Any]) -> tuple[Method, dict[str, Any]]:
    """The method a call names (``method``, else ``model``, else optimize) and its options."""
    chosen = method if isinstance(method, Method) else get_method(
        str(method) if method is not None else str(model) if model is not None else "optimize")
    opts = {**(config.flat() if config is not None else {}), **options}
    if style is not None:
        opts["style"] = style
    return chosen, opts


def _paint(src: str, vcfg: VideoConfig, frames: FramePainter, size: tuple[int, int], folder: Path,
           expected: int | None, callback: Callable[[FrameProgress], Any] | None, cancel: CancelToken | None,
           started: float, warn: list[str]) -> list[tuple[float, Path]]:
    """Every frame painted (or taken from the work folder), in order: [(time, PNG path)]."""
    done: list[tuple[float, Path]] = []
    history: deque[tuple[Tensor, Tensor]] = deque(maxlen=max(vcfg.long_term))  # (content, stylized)
    resumed = 0
    frames.cancel = cancel  # a long frame stops within itself (the optimization: before its next iteration)
    for frame in read_frames(src, start=vcfg.start, duration=vcfg.duration, warn=warn):
        if cancel is not None and cancel.cancelled:
            raise StylizeInterrupted(None, frame.index, cancelled=True)
        content = resize(frame.image, size)
        path = _frame_path(folder, frame.index)
        losses: dict[str, float] = {}
        if path.exists():
            stylized = load_image(path).rgb
            resumed += 1
        else:
            try:
                stylized, losses = frames.frame(content, list(history))
            except Interrupted as exc:  # cancelled within the frame: the work so far is the saved frames
                if not exc.cancelled:
                    raise
                raise StylizeInterrupted(None, frame.index, cancelled=True) from None
            save_image(to_pil(stylized), path)
        history.appendleft((content, stylized.cpu()))
        done.append((frame.time, path))
        if callback is not None:
            callback(FrameProgress(frame=len(done), frames=expected, elapsed=time.perf_counter() - started,
                                   resumed=resumed, losses=losses, _render=_constant(stylized),
                                   work=min(0.99, len(done) / expected) if expected else 0.0))
    return done


def _constant(x: Tensor) -> Callable[[], Tensor]:
    return lambda: x


def _check_span(vcfg: VideoConfig, clip_end: float) -> None:
    if vcfg.start >= clip_end - 1e-6:
        raise InputError(f"start {vcfg.start:g} s is outside the clip ({clip_end:.2f} s long)", fields=("start",))
    if vcfg.duration is not None and vcfg.start + vcfg.duration > clip_end + 0.5:
        raise InputError(f"start + duration = {vcfg.start + vcfg.duration:g} s is past the end of the clip "
                         f"({clip_end:.2f} s)", fields=("start", "duration"))


def _expected_frames(vcfg: VideoConfig, info: Any) -> int | None:
    """How many frames the run will make: from the container's count, or where it has none (Matroska,
    WebM) from its duration and frame rate (an estimate: the progress it gives stops short of 1 until
    the end), or None."""
    clip_end = info.duration
    span = vcfg.duration if vcfg.duration is not None else clip_end - vcfg.start
    if not info.frames:
        rate = float(info.fps or 0)
        return max(1, round(min(span, clip_end) * rate)) if clip_end and rate > 0 else None
    return max(1, round(span / clip_end * info.frames)) if clip_end else info.frames


def warping_error(frames: Sequence[Tensor], inputs: Sequence[Tensor], preset: str = "fast") -> float:
    """Lai et al. (ECCV 2018): mean over frames of the reliability-masked squared difference between
    each output frame and the previous output warped by the *input*'s flow (computed here with the
    ``preset`` given, so a different flow setting from the one a run used)."""
    errors = []
    for k in range(1, len(frames)):
        fwd, c = reliable_flow(inputs[k], inputs[k - 1], preset)
        diff = (frames[k] - warp(frames[k - 1], fwd)).square().sum(1, keepdim=True)
        errors.append(float((c * diff).sum() / c.sum().clamp_min(1)))
    return sum(errors) / len(errors) if errors else math.nan
