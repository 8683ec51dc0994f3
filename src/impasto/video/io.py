"""Video files and frame folders <-> frames, with PyAV (FFmpeg).

* Decoding is lazy: frames are read one at a time, so a long video is never held in memory.
* Timestamps are kept (variable frame rate included): every frame carries its presentation time,
  and the encoder writes the same times back, relative to ``start``.
* Rotation metadata (a phone's portrait video) is applied to the pixels, so frames are upright
  and the output needs no rotation flag.
* H.264 and VP9 with yuv420p need even sizes: an odd width or height is padded by one pixel
  (the last column or row repeated), never cropped, so no content is lost.
* The audio stream is copied unchanged (remuxed) between ``start`` and ``start + duration``; it is
  re-encoded only when the output container cannot hold its codec (AAC for mp4/mov, Opus for webm).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.image import load_image
from ..runtime import require

VIDEO_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                    ".gif": "gif"}
INPUT_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg")
"""Files that batch jobs and the service treat as videos (a .gif stays an image there)."""
FRAME_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
AUDIO_CODECS = {"mp4": {"aac", "mp3", "ac3", "alac", "opus", "flac"}, "mov": {"aac", "mp3", "ac3", "alac", "pcm_s16le"},
                "matroska": None, "webm": {"opus", "vorbis"}}  # None: anything
FOLDER_FPS = Fraction(25)


@dataclass(frozen=True)
class Frame:
    index: int
    """0-based, counted from ``start``."""
    time: float
    """Presentation time in seconds, from the start of the input."""
    image: Tensor
    """(1, 3, H, W) RGB in [0, 1], upright."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    size: tuple[int, int]
    """(height, width) after rotation."""
    duration: float
    """Seconds."""
    fps: Fraction
    frames: int | None
    """Frame count if the container says so."""
    rotation: int
    has_audio: bool
    folder: bool
    origin: float = 0.0
    """Presentation time of the first video frame, in seconds: MPEG streams and many camera files
    start at 0.5 s or more. Every time impasto takes or reports (``start``, ``duration``, a frame's
    ``time``) counts from it, as a player shows it."""


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in INPUT_EXTENSIONS


def video_output_extension(path: str | os.PathLike) -> str:
    """A stylized video keeps its container, or becomes mp4 (for containers impasto does not write)."""
    ext = Path(path).suffix.lower()
    return ext if ext in (".mp4", ".mov", ".mkv", ".webm") else ".mp4"


def _is_frame_folder(path: str | os.PathLike) -> bool:
    return Path(path).is_dir()


def _numbered(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and re.search(r"\d", p.stem)]
    return sorted(files, key=lambda p: (int(re.findall(r"\d+", p.stem)[-1]), p.name))


UPLOAD_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,ogg"
"""The only FFmpeg demuxers an uploaded video may be read with, at submit and in the worker alike: no
playlist or concat demuxer, which would open the files an upload names (an ffconcat upload made the
web process open a relative path)."""
_demuxers: contextvars.ContextVar[str | None] = contextvars.ContextVar("impasto_demuxers", default=None)


@contextlib.contextmanager
def only_demuxers(names: str = UPLOAD_DEMUXERS) -> Iterator[None]:
    """Within it, videos are opened with these FFmpeg demuxers only (the service's worker, reading an
    upload); elsewhere any FFmpeg reads (a local file named on the command line)."""
    token = _demuxers.set(names)
    try:
        yield
    finally:
        _demuxers.reset(token)


def av_open(path: str | os.PathLike | Any) -> Any:
    """``av.open`` for reading, with the demuxers :func:`only_demuxers` allows (a path or a file object)."""
    av = require("av", "video")
    allowed = _demuxers.get()
    return av.open(path if not isinstance(path, (str, os.PathLike)) else str(path), mode="r",
                   options={"format_whitelist": allowed} if allowed else {})


def _open(path: str | os.PathLike):
    av = require("av", "video")

    name = repr(str(path))
    if not os.path.exists(path):
        raise InputError(f"no such file: {name}")
    try:
        container = av_open(path)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise InputError(f"not a video (or a format FFmpeg cannot read): {name}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"no video stream in {name}")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """What the input is; :class:`InputError` for a file that is not a decodable video."""
    if _is_frame_folder(path):
        files = _numbered(Path(path))
        if not files:
            raise InputError(f"no numbered frames (NNNN.png, frame_0001.jpg...) in folder {str(path)!r}")
        first = load_image(files[0])
        return VideoInfo(str(path), first.size, len(files) / float(FOLDER_FPS), FOLDER_FPS, len(files), 0,
                         False, True)
    av = require("av", "video")

    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or a device: FFmpeg would block on it
        raise InputError(f"is not a regular file: {str(path)!r}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream))
        except (av.error.FFmpegError, StopIteration):
            raise InputError(f"cannot decode the video stream of {str(path)!r}") from None
        rotation = int(getattr(first, "rotation", 0) or 0) % 360
        h, w = first.height, first.width
        if rotation in (90, 270):
            h, w = w, h
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else (container.duration or 0) / 1e6)
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        origin = float(first.time) if first.time is not None else 0.0
        return VideoInfo(str(path), (h, w), duration, Fraction(fps), stream.frames or None, rotation,
                         bool(container.streams.audio), False, origin)
    finally:
        container.close()


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation (degrees counter-clockwise, FFmpeg's convention) to the pixels."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _to_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def read_frames(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None,
                warn: list[str] | None = None) -> Iterator[Frame]:
    """The frames of ``path`` from ``start`` for ``duration`` seconds, decoded one at a time.

    A frame that fails to decode in the middle is skipped and named in ``warn`` (if given); the
    run goes on with the next one. A video that ends well before the duration its container
    declares (a truncated download) is named in ``warn`` too.
    """
    end = float("inf") if duration is None else start + duration
    if _is_frame_folder(path):
        for i, file in enumerate(_numbered(Path(path))):
            t = i / float(FOLDER_FPS)
            if start <= t < end:
                yield Frame(i - round(start * float(FOLDER_FPS)), t, load_image(file).flat_rgb())
        return
    av = require("av", "video")

    origin = probe(path).origin
    seek = start > 0
    while True:
        container = _open(path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if seek:
                container.seek(int((origin + start) / stream.time_base), stream=stream, backward=True)
            try:
                yield from _decoded(av, container, stream, start, end, origin, seek, warn)
                return
            except _Overshot:  # the seek landed past the start (MPEG-TS has no index): from the top
                seek = False
        finally:
            container.close()


class _Overshot(Exception):
    pass


def _decoded(av: Any, container: Any, stream: Any, start: float, end: float, origin: float, seeked: bool,
             warn: list[str] | None) -> Iterator[Frame]:
    index, last = 0, None
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            if warn is not None:
                warn.append(f"unreadable data after frame {index}: {exc}")
            break
        try:
            decoded = packet.decode()
        except av.error.FFmpegError as exc:
            if warn is not None:
                warn.append(f"skipped a corrupt frame after frame {index} (at {packet.pts}): {exc}")
            continue
        for frame in decoded:
            t = float(frame.time) - origin if frame.time is not None else index / float(stream.average_rate or 25)
            if seeked and index == 0 and last is None and t > start + 1e-3:
                raise _Overshot
            last = t if last is None else last
            if t < start - 1e-6:
                continue
            if t >= end - 1e-6:
                return
            array = _upright(frame_rgb(frame), int(getattr(frame, "rotation", 0) or 0))
            yield Frame(index, t, _to_tensor(array))
            index, last = index + 1, t
    if seeked and last is None:  # the seek left nothing to decode: from the top
        raise _Overshot
    _ended_early(container, stream, start, end, last if index else None, index, warn, origin)


# AVColorSpace values (libavutil/pixfmt.h) -> the swscale matrix that decodes them
_MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_BT709, _MPEG, _JPEG = 1, 1, 2  # AVColorSpace/AVColorPrimaries/AVColorTransferCharacteristic BT.709; ranges


def frame_rgb(frame: Any) -> np.ndarray:
    """A decoded frame as 8-bit RGB (H, W, 3), converted from YUV with the matrix and range the
    stream declares: BT.709, BT.601 (and FCC, SMPTE 240M, BT.2020 matrices); limited (16-235)
    or full (0-255) range. An untagged stream is read as players read it: BT.709 at HD sizes
    (720 lines or 1280 columns and up), BT.601 below, limited range unless its pixel format is
    a full-range one (yuvj*)."""
    from av.video.reformatter import ColorRange, Colorspace

    if not frame.format.name.startswith(("yuv", "nv", "p0", "p2")):  # RGB, grey, palette: no matrix
        return frame.to_ndarray(format="rgb24")
    matrix = _MATRICES.get(int(frame.colorspace or 2))
    if matrix is None:
        matrix = "ITU709" if frame.height >= 720 or frame.width >= 1280 else "ITU601"
    full = int(frame.color_range or 0) == _JPEG or frame.format.name.startswith("yuvj")
    rgb = frame.reformat(format="rgb24", src_colorspace=Colorspace[matrix],
                         src_color_range=ColorRange.JPEG if full else ColorRange.MPEG, dst_color_range=ColorRange.JPEG)
    return rgb.to_ndarray()


def to_yuv(frame: Any) -> Any:
    """An RGB frame as the encoder's yuv420p, BT.709 limited range, and tagged so: what players
    assume of HD video, said explicitly (swscale's default would be BT.601, untagged)."""
    from av.video.reformatter import ColorRange, Colorspace

    out = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG,
                         dst_color_trc=_BT709, dst_color_primaries=_BT709)
    out.colorspace, out.color_range = _BT709, _MPEG
    return out


def _tag_bt709(context: Any) -> None:
    """Mark an encoder's stream BT.709 (matrix, primaries, transfer), limited range."""
    context.colorspace = context.color_primaries = context.color_trc = _BT709
    context.color_range = _MPEG


def _ended_early(container: Any, stream: Any, start: float, end: float, last: float | None, frames: int,
                 warn: list[str] | None, origin: float) -> None:
    """Note a video that stops more than two frames before its container's declared duration."""
    declared = (container.duration or 0) / 1_000_000 - max(0.0, origin - (container.start_time or 0) / 1_000_000)
    step = 1 / float(stream.average_rate or 25)
    wanted = min(end, declared)
    reached = last if last is not None else start
    if warn is not None and declared and reached + 2 * step < wanted - 1e-6:
        warn.append(f"the video ends early, at {reached:.2f} s of the {declared:.2f} s its container declares "
                    f"(after frame {frames}): the file may be truncated")


def check_output(path: str | os.PathLike) -> str:
    """'folder' or the container format for ``path``; refuses an extension that holds no video."""
    p = Path(path)
    if p.suffix == "" or p.is_dir():
        return "folder"
    fmt = VIDEO_EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"output {str(path)!r} cannot hold a video; valid: {', '.join(sorted(VIDEO_EXTENSIONS))} "
                         "or a folder (PNG frames)")
    if not p.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(p.parent)!r}")
    return fmt


def _even(array: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by repeating the last row or column (yuv420p needs even sizes)."""
    h, w = array.shape[:2]
    if h % 2 or w % 2:
        array = np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return array


def encode(frames: list[tuple[float, Path]], output: str | os.PathLike, *, source: str | os.PathLike | None,
           start: float, duration: float | None, fps: Fraction, crf: int = 18, origin: float = 0.0) -> None:
    """Write the frame files (with their times, seconds from the input's first frame) as a video,
    with the source's audio between ``start`` and ``start + duration`` of the same clock (the
    source's first video frame is at ``origin`` seconds of its own); atomically."""
    fmt = check_output(output)
    if fmt == "gif":
        _encode_gif(frames, output, fps)
        return
    av = require("av", "video")

    with atomic_path(output) as tmp:
        out = av.open(tmp, "w", format=fmt)
        try:
            codec = "libvpx-vp9" if fmt == "webm" else "libx264"
            video: Any = out.add_stream(codec, rate=fps)
            first = np.asarray(load_image(frames[0][1]).rgb[0].permute(1, 2, 0).mul(255).round().byte())
            first = _even(first)
            video.height, video.width = first.shape[:2]
            video.pix_fmt = "yuv420p"
            _tag_bt709(video.codec_context)
            # fine enough for any frame rate, constant or not (the codec's own time base too, or
            # the encoder rounds every timestamp to the average frame rate)
            video.time_base = video.codec_context.time_base = Fraction(1, 90000)
            video.options = {"crf": str(crf)} if codec == "libx264" else {"crf": str(crf), "b": "0"}
            audio_in, audio_out, src = _audio(out, fmt, source)
            base = start
            for t, file in frames:
                array = _even(np.asarray(load_image(file).rgb[0].permute(1, 2, 0).mul(255).round().byte()))
                frame = to_yuv(av.VideoFrame.from_ndarray(array, format="rgb24"))
                frame.pts = max(0, round((t - base) * 90000))
                frame.time_base = video.time_base
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
            if src is not None:
                _copy_audio(src, audio_in, audio_out, out, origin + start, duration)
        finally:
            out.close()
            if "src" in locals() and src is not None:
                src.close()


def _audio(out, fmt: str, source):
    """(input audio stream, output audio stream, input container) or (None, None, None)."""
    if source is None or _is_frame_folder(source):
        return None, None, None
    src = av_open(source)
    if not src.streams.audio:
        src.close()
        return None, None, None
    a_in = src.streams.audio[0]
    allowed = AUDIO_CODECS.get(fmt)
    if allowed is None or a_in.codec_context.name in allowed:
        a_out = out.add_stream_from_template(a_in)
        return a_in, a_out, src
    # the container cannot hold this codec: re-encode (AAC for mp4/mov, Opus for webm)
    a_out = out.add_stream("libopus" if fmt == "webm" else "aac", rate=a_in.rate or 48000)
    return a_in, a_out, src


def _copy_audio(src, a_in, a_out, out, start: float, duration: float | None) -> None:
    av = require("av", "video")

    """The audio from ``start`` (seconds of the source's own clock: where the output's first frame
    is) for ``duration``, placed so that it keeps its time relative to the picture; audio before
    the output's first frame is left out."""
    end = float("inf") if duration is None else start + duration
    remux = a_out.codec_context.name == a_in.codec_context.name
    if start > 0:
        src.seek(int(start / a_in.time_base), stream=a_in, backward=True)
    offset = round(start / a_in.time_base)  # audio keeps its place relative to the video's start
    for packet in src.demux(a_in):
        if packet.pts is None or packet.dts is None:
            continue
        t = float(packet.pts * a_in.time_base)
        if t + float((packet.duration or 0) * a_in.time_base) < start - 1e-6:  # over before the picture starts
            continue
        if t >= end:
            break
        if remux:
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = a_out
            out.mux(packet)
        else:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in decoded:
                frame.pts = None
                for p in a_out.encode(frame):
                    out.mux(p)
    if not remux:
        for p in a_out.encode():
            out.mux(p)


def _encode_gif(frames: list[tuple[float, Path]], output: str | os.PathLike, fps: Fraction) -> None:
    from PIL import Image

    times = [t for t, _ in frames]
    durations = [max(20, round(1000 * (b - a))) for a, b in itertools.pairwise(times)] or [round(1000 / float(fps))]
    durations.append(durations[-1])
    images = (Image.open(f).convert("RGB") for _, f in frames)
    first = next(images)
    with atomic_path(output) as tmp:
        first.save(tmp, format="GIF", save_all=True, append_images=images, duration=durations, loop=0)
