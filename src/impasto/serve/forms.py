"""What a job submission is made of, checked: the uploaded files and the form's method and options.

Every problem is an :class:`HTTPProblem` (status and one line) or an :class:`InputError` naming
the field (422). The method comes from the registry (:mod:`impasto.methods`), so a plug-in's
method is submitted like the built-in ones: its ``web_options`` are the fields a client may set.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import Any

import PIL.Image
from starlette.datastructures import UploadFile

from ..errors import ImageError, ImageTooComplex, ImageTooLarge, InputError
from ..io.guards import check_structure
from ..io.image import check_bit_depth, check_deep_png
from ..jobs.recipe import OPTIMIZE, Recipe, options_from_text, parse_option
from ..methods import get_method
from ..video.io import av_open, only_demuxers
from .settings import Limits

VIDEO_CONTAINERS = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}
DEFAULT_SIZE = 512
"""The output's long edge when a form does not say (at most the server's max_size)."""


MAX_DETAIL = 300
"""Error details are cut to this many characters: a message never echoes a long input in full."""


def cut(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."


class HTTPProblem(Exception):
    """A 4xx answer: its status, one line of detail, and any headers it needs (Retry-After...)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class Submission:
    """A job's form, read: the content's bytes, the uploaded styles, gallery style names, text fields."""

    content: bytes | None = None
    styles: list[bytes] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


async def read_submission(form: Any, max_bytes: int, limits: Limits) -> Submission:
    """The parts of a multipart form; refuses repeated, unexpected or oversized parts."""
    got = Submission()
    total = 0
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(max_bytes + 1)
            total += len(data)
            if total > max_bytes:
                raise HTTPProblem(413, f"upload is above the limit of {limits.max_upload_mb:g} MB")
            if key == "content":
                if got.content is not None:
                    raise InputError("give one content image", fields=("content",))
                got.content = data
            elif key == "style":
                got.styles.append(data)
            else:
                raise InputError(f"unexpected file field {key!r}; files go in 'content' and 'style'", fields=(key,))
        elif key == "style":
            if value.strip():  # an empty field (an unset form input) is no style
                got.names.append(value.strip())
        elif key == "content":
            raise InputError("content must be an image file", fields=("content",))
        elif key in got.fields:
            raise InputError(f"option {key!r} given twice", fields=(key,))
        else:
            got.fields[key] = value
    if got.content is None:
        raise InputError("no content image: send the photo as the file field 'content'", fields=("content",))
    if len(got.styles) + len(got.names) > limits.max_styles:
        raise InputError(f"at most {limits.max_styles} styles", fields=("style",))
    return got


DECODES = threading.BoundedSemaphore(2)
"""Images decoded at once by the web process: each can take a few hundred MB for a moment."""


def image_info(data: bytes, what: str, limits: Limits) -> tuple[str, tuple[int, int]]:
    """Check that ``data`` is an image Pillow can decode within the pixel limit (decoded once, at most
    two at a time): its file extension and its (height, width) as it will be used (EXIF orientation
    applied). A 16-bit PNG is checked whole without decoding its pixels (:func:`check_deep_png`):
    pypng's pure-Python decode takes a second per megapixel and holds the interpreter, so it is
    left to the worker. The bounded walks of :mod:`impasto.io.guards` run first, before any
    reader: Pillow's EXIF read of a 16-bit PNG walked 1.6 million empty chunks for 23 s."""
    from ..io.image import decode_image

    refuse_complex(data, what)
    # by the PNG header itself (a 16-bit RGB, RGBA or grey-alpha image), so a broken file is judged too
    deep_png = data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[24:25] == b"\x10" \
        and data[25:26] in (b"\x02", b"\x04", b"\x06")
    turned = False
    if deep_png:
        try:
            with PIL.Image.open(io.BytesIO(data)) as header:
                turned = header.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        except Exception:  # a broken file: check_deep_png says why
            pass
    try:
        if deep_png:
            with DECODES:  # the same at-most-two as decoding
                height, width = check_deep_png(data, what, max_pixels=limits.max_input_pixels)
            return ".png", ((width, height) if turned else (height, width))
        with DECODES:
            img = decode_image(data, what, max_pixels=limits.max_input_pixels)
    except (ImageTooLarge, ImageTooComplex) as exc:  # over the pixel limit (a decompression bomb, or just too big)
        raise HTTPProblem(422, str(exc)) from None
    except ImageError as exc:  # not an image at all
        raise HTTPProblem(415, str(exc)) from None
    with PIL.Image.open(io.BytesIO(data)) as header:  # decoded fine above; only its format is read here
        fmt = header.format or ""
    ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
           "GIF": ".gif"}.get(fmt, ".img")
    return ext, (img.height, img.width)


def refuse_complex(data: bytes, what: str) -> None:
    """The guards on untrusted bytes (:func:`impasto.io.guards.check_structure`), as a 422."""
    try:
        check_structure(data, what)
    except ImageTooComplex as exc:
        raise HTTPProblem(422, str(exc)) from None


def image_extension(data: bytes, what: str, limits: Limits) -> str:
    return image_info(data, what, limits)[0]


def is_image_format(data: bytes) -> bool:
    """Whether Pillow recognises ``data``'s format from its header (decodable or not): such a file is
    an image, judged as one, never tried as a video."""
    try:
        with PIL.Image.open(io.BytesIO(data)):
            return True
    except PIL.UnidentifiedImageError:
        return False
    except Exception:  # recognised, then failed on its header: a broken image
        return True


def content_info(data: bytes, limits: Limits) -> tuple[str, tuple[int, int] | None, int]:
    """The content is an image (any format Pillow recognises, which must then decode) or a video
    (the video method): its file extension, and an image's (height, width) (None for a video). The
    same rule for every upload: by what the bytes are, never "not a readable image, so try video".
    The third value is the number of frames (1 for an image), counted packet by packet: a
    container's header can claim anything (an MKV of 3,000 frames said it lasted 1 s)."""
    refuse_complex(data, "content")  # before Pillow's open, which walks a PNG's chunks up to its image data
    if is_image_format(data):
        return (*image_info(data, "content", limits), 1)
    import importlib.util

    if importlib.util.find_spec("av") is None:
        raise HTTPProblem(415, "content is not an image (videos need impasto[video] on the server)")
    try:
        with only_demuxers(), av_open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise HTTPProblem(415, "content is neither an image nor a video")
            stream = container.streams.video[0]
            context = stream.codec_context  # None or unopened for a codec FFmpeg does not know
            width, height = int(context.width or 0), int(context.height or 0)
            if width <= 0 or height <= 0:
                raise HTTPProblem(415, "content is a video whose frames FFmpeg cannot decode")
            names = container.format.name.split(",")
            frames, first, last = 0, None, None
            for packet in container.demux(stream):  # no decoding: the packets' count and timestamps
                if packet.size == 0:
                    continue
                frames += 1
                if packet.pts is not None:
                    first = packet.pts if first is None else min(first, packet.pts)
                    last = packet.pts if last is None else max(last, packet.pts)
                if frames > limits.max_video_frames:
                    break
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            seconds = float((last - first) * stream.time_base) + (1 / rate if rate else 0) \
                if first is not None and last is not None and stream.time_base else frames / rate if rate else 0.0
    except HTTPProblem:
        raise
    except Exception:  # corrupt containers raise all kinds
        raise HTTPProblem(415, "content is neither an image nor a video Pillow or FFmpeg can read") from None
    if width * height > limits.max_input_pixels:
        raise HTTPProblem(422, f"video frames of {width}x{height} are over the limit of "
                               f"{limits.max_input_pixels / 1e6:.0f} Mpx")
    if seconds > limits.max_video_seconds:
        raise HTTPProblem(422, f"video of {seconds:.1f} s is longer than this server's limit of "
                               f"{limits.max_video_seconds:g} s")
    if frames > limits.max_video_frames:
        raise HTTPProblem(422, f"video of more than {limits.max_video_frames} frames is over this server's limit")
    if frames == 0:
        raise HTTPProblem(415, "content is a video with no frames")
    return next((ext for name, ext in VIDEO_CONTAINERS.items() if name in names), ".mp4"), None, frames  # mp4 first


def video_work(recipe: Recipe, frames: int) -> float:
    """About how many megapixel-iterations a video job asks for: its first frame as an image, then
    each later one at its size (a square, an upper bound) times the video's iterations per frame
    (an optimization's ``frame_iterations``; one pass for other methods)."""
    from ..methods.base import DEFAULT_VIDEO_SIZE
    from ..video.pipeline import VideoConfig

    method = get_method(recipe.method, model_files=False)
    cost = method.cost(dict(recipe.options))
    size = recipe.options.get("size") or DEFAULT_VIDEO_SIZE
    per_frame = size * size / 1e6 * (VideoConfig().frame_iterations if "iterations" in cost else 1)
    return float(cost.get("work", per_frame)) + (frames - 1) * per_frame


def build_recipe(fields: dict[str, str], n_style_files: int, style_names: list[str], limits: Limits) -> Recipe:
    """The recipe the form describes, checked against the limits; InputError names the field.

    For a method that takes style images, a text ``style`` field names a gallery painting; for one
    that paints styles of its own, it names one of those (its ``style`` option)."""
    from ..gallery import painting

    method = get_method(fields.pop("method", OPTIMIZE) or OPTIMIZE, model_files=False)  # never a server file
    depth_text = fields.pop("bit_depth", "").strip()  # the result's, not the method's: 8, 16 or unset
    bit_depth = parse_option("bit_depth", depth_text, int) if depth_text else None
    if bit_depth is not None:
        check_bit_depth(bit_depth, "PNG")
    if fields.get("size", "").strip().lower() in ("", "none"):
        # an absent, empty or "none" size is the default, for every method: never the photo's own size
        # (which is what None means to wct and the fast models: a 40 Mpx photo painted whole)
        fields.pop("size", None)
    options = options_from_text(fields, method)
    if method.takes_styles:
        for name in style_names:
            painting(name)
        n_styles = n_style_files + len(style_names)
    else:
        if len(style_names) > 1:
            raise InputError(f"the method {method.name!r} takes one style name (or style_blend_weights)",
                             fields=("style",))
        if style_names:
            if "style" not in method.web_options:
                raise InputError(f"the method {method.name!r} takes no style", fields=("style",))
            options["style"] = style_names[0]
        n_styles = n_style_files
    if "size" in method.web_options and options.get("size") is None:
        options["size"] = min(DEFAULT_SIZE, limits.max_size)
    method.check(options, n_styles)
    method.check_web(options)
    bounds = {"size": limits.max_size, "iterations": limits.max_iterations,
              "initial_iterations": limits.max_iterations, "work": limits.max_work}
    cost = method.cost(options)
    if "size" in method.web_options and not isinstance(cost.get("size"), int):
        # a method whose cost cannot name its output size is not bounded by max_size: refuse, never run unbounded
        raise InputError(f"the method {method.name!r} cannot say the size of its output for these options; "
                         "give size", fields=("size",))
    for name, value in cost.items():
        if name in bounds and value > bounds[name]:
            if name == "work":
                raise InputError(f"this job asks for about {value} megapixel-iterations, above this server's limit of "
                                 f"{bounds[name]:g}: lower size, iterations, scales or style copies",
                                 fields=("size", "iterations"))
            raise InputError(f"{name} {value} is above this server's limit of {bounds[name]}", fields=(name,))
    return Recipe(method.name, options, bit_depth)
