"""Video colour: YUV <-> RGB with the matrix and range a stream declares, and outputs tagged
BT.709 limited range (what players assume of HD video), so grey stays grey and colours stay."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from impasto.io.image import as_output, load_image  # noqa: E402
from impasto.methods import Method, Painter, register, unregister  # noqa: E402
from impasto.video import stylize_video  # noqa: E402
from impasto.video.io import read_frames  # noqa: E402

NAME = "test-identity"


class Identity(Method):
    name = NAME
    summary = "the photo as it is (a test method)"

    def option_types(self) -> dict[str, Any]:
        return {}

    def load(self, options: Any, styles: Any, *, cache: dict | None = None, **inputs: Any) -> Painter:
        return IdentityPainter()


class IdentityPainter(Painter):
    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil") -> Any:
        return as_output(load_image(content).rgb, None, output)


@pytest.fixture
def identity():
    register(Identity())
    yield NAME
    unregister(NAME)


def yuv_clip(path, planes: tuple[int, int, int], colorspace: int | None, color_range: int | None,
             size: tuple[int, int] = (64, 96), frames: int = 3):
    """A clip whose every pixel is the YUV value ``planes``, tagged with an AVColorSpace and an
    AVColorRange (None: untagged)."""
    h, w = size
    y, u, v = planes
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"crf": "0"}  # lossless: the planes are what the decoder sees
    if colorspace is not None:
        stream.codec_context.colorspace, stream.codec_context.color_range = colorspace, color_range
    for i in range(frames):
        data = np.concatenate([np.full((h, w), y, np.uint8), np.full((h // 4, w), u, np.uint8),
                               np.full((h // 4, w), v, np.uint8)])
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        if colorspace is not None:
            frame.colorspace, frame.color_range = colorspace, color_range
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def first_rgb(path) -> np.ndarray:
    """The first frame's middle, (h, w, 3) in 0-255 (the encoder's padding rows left out)."""
    rgb = next(iter(read_frames(path))).image[0].permute(1, 2, 0).numpy() * 255
    h, w = rgb.shape[:2]
    return rgb[h // 4: 3 * h // 4, w // 4: 3 * w // 4]


def bt(y: float, u: float, v: float, kr: float, kb: float, full: bool) -> np.ndarray:
    """The reference YUV -> RGB conversion (ITU-R BT.601/709 with their Kr, Kb), in 0-255."""
    if full:
        yy, cb, cr = y / 255, (u - 128) / 255, (v - 128) / 255
    else:
        yy, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    kg = 1 - kr - kb
    r = yy + 2 * (1 - kr) * cr
    b = yy + 2 * (1 - kb) * cb
    g = (yy - kr * r - kb * b) / kg
    return np.clip(np.array([r, g, b]) * 255, 0, 255)


BT709, BT601 = (0.2126, 0.0722), (0.299, 0.114)


@pytest.mark.parametrize(("colorspace", "color_range", "matrix", "full"), [
    (1, 1, BT709, False),  # BT.709, limited
    (6, 1, BT601, False),  # BT.601 (SMPTE 170M), limited
    (1, 2, BT709, True),  # BT.709, full range
    (None, None, BT601, False),  # untagged standard definition: BT.601, limited, as players take it
])
def test_frames_are_decoded_with_the_matrix_and_range_the_stream_declares(tmp_path, colorspace, color_range,
                                                                           matrix, full):
    for planes in ((50, 128, 128), (100, 128, 200), (150, 60, 170)):  # a dark grey, a red, a green-blue
        clip = yuv_clip(tmp_path / "clip.mp4", planes, colorspace, color_range)
        got = first_rgb(clip).mean((0, 1))
        assert np.abs(got - bt(*planes, *matrix, full)).max() < 2.5, (planes, got)


def test_an_untagged_hd_clip_is_read_as_bt709(tmp_path):
    clip = yuv_clip(tmp_path / "hd.mp4", (100, 128, 200), None, None, size=(720, 1280), frames=1)
    assert np.abs(first_rgb(clip).mean((0, 1)) - bt(100, 128, 200, *BT709, False)).max() < 2.5


@pytest.mark.parametrize("planes", [(50, 128, 128), (180, 128, 128), (100, 128, 200)])
def test_a_limited_range_bt709_clip_keeps_its_grey_and_colours_through_stylize_video(tmp_path, identity,
                                                                                      planes):
    clip = yuv_clip(tmp_path / "in.mp4", planes, 1, 1)
    out = tmp_path / "out.mp4"
    stylize_video(clip, [], out, method=identity)
    before, after = first_rgb(clip).mean((0, 1)), first_rgb(out).mean((0, 1))
    assert np.abs(after - before).max() < 1.5, (before, after)  # the same grey, the same colour
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (int(frame.colorspace), int(frame.color_range)) == (1, 1)  # tagged BT.709, limited
        assert c.streams.video[0].codec_context.color_primaries == 1
