"""Tiny clips made with PyAV for the tests: a textured square moving over a gradient."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def frame_array(i: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full((h, w), 90)], -1)
    x0 = 4 + 2 * i
    img[h // 4:h // 4 + h // 3, x0:x0 + w // 4] = [230, 200, 40]
    img[::4, ::4] = 255  # some texture for the flow
    return img.astype(np.uint8)


def make_clip(path: Path, frames: int = 6, size: tuple[int, int] = (48, 64), fps: int = 10, audio: bool = True,
              codec: str = "libx264", rotate: int = 0, times: list[float] | None = None,
              video_start: float = 0.0, audio_start: float = 0.0, container: str | None = None) -> Path:
    """``times``: each frame's presentation time in seconds (a variable frame rate); default 1/fps apart.
    ``video_start`` and ``audio_start`` shift each stream's first timestamp (as MPEG streams and
    camera files have); ``container`` forces a format (``mpegts``)."""
    if video_start and times is None:
        times = [video_start + i / fps for i in range(frames)]
    h, w = size
    out = av.open(str(path), "w", format=container) if container else av.open(str(path), "w")
    video = out.add_stream(codec, rate=fps)
    video.width, video.height = w + w % 2, h + h % 2
    video.pix_fmt = "yuv420p"
    if rotate:
        video.set_display_rotation(rotate)
    sound = out.add_stream("aac", rate=16000) if audio else None
    if times is not None:
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
    for i in range(frames):
        arr = frame_array(i, h + h % 2, w + w % 2)
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        if times is not None:
            frame.pts, frame.time_base = round(times[i] * 1000), Fraction(1, 1000)
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if sound is not None:
        n = int(16000 * frames / fps)
        t = np.arange(n) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for start in range(0, n, 1024):
            chunk = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate = 16000
            chunk.pts = start + round(audio_start * 16000)
            chunk.time_base = Fraction(1, 16000)
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    out.close()
    return path


def streams(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(v)]
        info = {"video": (frames[0].height, frames[0].width), "frames": len(frames),
                "times": [round(float(f.time), 3) for f in frames], "audio": None}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio"] = (a.codec_context.name, sum(1 for _ in c.demux(a)))
    return info
