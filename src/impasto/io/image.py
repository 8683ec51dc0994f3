"""Image files <-> tensors: load (EXIF, modes, size limits), convert, encode, save atomically.

Tensors are RGB in [0, 1], shape (1, 3, H, W), float32. Alpha travels separately as (1, 1, H, W).

Pillow has no 16-bit RGB mode: it reads a 16-bit RGB PNG or TIFF as 8 bits and cannot write one.
Those files are read and written with pypng and tifffile (small, pure Python, numpy only, and both
keep an ICC profile), so a 16-bit photo goes from file to tensor to file at full precision.
"""

from __future__ import annotations

import functools
import io
import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError, features
from torch import Tensor

from ..errors import ImageError, ImageTooLarge, InputError
from ..ops.geometry import resize, spatial_size
from .atomic import atomic_write
from .guards import check_file_structure, check_structure

# Pillow warns at 89 Mpx and only raises at twice that; impasto refuses at a fixed limit before
# decoding anything, because an image that size cannot be stylized on a normal machine anyway.
MAX_PIXELS = 120_000_000

SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}


@dataclass
class LoadedImage:
    """An image as impasto uses it: RGB tensor plus the alpha channel, if the image had one."""

    rgb: Tensor  # (1, 3, H, W) float32 in [0, 1]
    alpha: Tensor | None  # (1, 1, H, W) float32 in [0, 1], or None
    bit_depth: int = 8
    """Bits per sample of the file it came from (16 for 16-bit and float files); outputs follow it."""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[-2], self.rgb.shape[-1]

    @property
    def height(self) -> int:
        return int(self.rgb.shape[-2])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[-1])

    def flat_rgb(self) -> Tensor:
        """RGB composited onto white where the image is transparent."""
        if self.alpha is None:
            return self.rgb
        return self.rgb * self.alpha + (1.0 - self.alpha)


def _describe(src: ImageLike) -> str:
    return repr(str(src)) if isinstance(src, (str, os.PathLike)) else type(src).__name__


ImageLike = Union[str, os.PathLike, Image.Image, Tensor, LoadedImage]  # noqa: UP007 - a runtime alias, must work on 3.10
"""What every image argument accepts: a path, a PIL image, a tensor in [0, 1], or an image already loaded."""


def open_pil(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS,
             reduce_to: int | None = None) -> Image.Image | LoadedImage:
    """Open and fully decode an image file, with EXIF orientation applied and colours in sRGB.

    A 16-bit RGB(A) PNG or TIFF (which Pillow would read as 8 bits) comes back as a
    :class:`LoadedImage` at full precision; every other image as a PIL image.

    ``reduce_to``: the image will only be used at this long edge (or smaller), so a JPEG may be
    decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (Pillow's ``draft``), keeping at least
    twice that edge, as Pillow's own ``thumbnail`` does (its ``reducing_gap``): a 4352x2448 photo
    used at 64 px decodes at 544x306, 6x faster. Other formats are decoded whole.

    Raises :class:`ImageError` with a one-line reason for a missing file, a file that is not an
    image, a truncated image, or one over ``max_pixels`` (checked from the header, before decoding).
    """
    name = repr(str(path))
    if not os.path.exists(path):
        raise ImageError(f"no such file: {name}")
    if os.path.isdir(path):
        raise ImageError(f"is a folder, not an image: {name}")
    if not os.path.isfile(path):  # a FIFO, a socket, a device: reading one can block forever
        raise ImageError(f"is not a regular file: {name}")
    return _decode(path, name, max_pixels, reduce_to)


def decode_image(data: bytes, name: str = "upload", *, max_pixels: int = MAX_PIXELS) -> Image.Image | LoadedImage:
    """:func:`open_pil` for bytes (an upload, a task sent to another machine); ``name`` is for messages."""
    return _decode(io.BytesIO(data), repr(name), max_pixels)


REDUCING_GAP = 2.0  # decode a JPEG at no less than this times the size it will be used at
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                  ZeroDivisionError, OverflowError, RuntimeError, MemoryError, AttributeError, NotImplementedError)
"""What Pillow's decoders raise on corrupt data (each plug-in parses its header its own way)."""


def _decode(src: str | os.PathLike | io.BytesIO, name: str, max_pixels: int,
            reduce_to: int | None = None) -> Image.Image | LoadedImage:
    # the bounded walks first: Pillow's open walks a PNG's chunks before its image data in Python
    if isinstance(src, io.BytesIO):
        with src.getbuffer() as view:
            check_structure(view, name)
    else:
        check_file_structure(src, name)
    deep = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(src)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLarge(
                    f"image too large to decode safely: {name} is {w}x{h} "
                    f"({w * h / 1e6:.0f} Mpx, limit {max_pixels / 1e6:.0f} Mpx)"
                )
            if reduce_to is not None and img.format == "JPEG":
                scale = REDUCING_GAP * reduce_to / max(w, h)
                if scale < 0.5:  # draft keeps both sides at least this size
                    img.draft(img.mode, (math.ceil(w * scale), math.ceil(h * scale)))
            if is_deep(img):
                deep = _decode_deep(src, img, name)
            if deep is None:
                img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image (or a format Pillow cannot read): {name}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"image too large to decode safely (decompression bomb): {name}") from None
    except DECODER_ERRORS as exc:  # truncated or corrupt data
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ImageError(f"not a readable image: {name} ({why})") from None
    if deep is not None:
        return deep
    upright: Image.Image = img
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not make a readable image unusable
        upright = img
    if "icc_profile" in img.info and "icc_profile" not in upright.info:
        upright.info["icc_profile"] = img.info["icc_profile"]
    return to_srgb(upright, name)


def pil_to_loaded(img: Image.Image) -> LoadedImage:
    """Convert any Pillow mode to RGB float [0, 1] plus optional alpha.

    * 16-bit and 32-bit integer greyscale keep their precision (Pillow's own RGB conversion would
      clip them to 8 bits); float images are taken as [0, 1].
    * CMYK, palette, 1-bit and greyscale images are converted to RGB.
    * Alpha (RGBA, LA, PA, palette transparency) is returned separately; the RGB under fully
      transparent pixels is whatever the file holds.
    """
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        raw = np.asarray(img, dtype=np.float64)
        if mode == "F":
            scale = 1.0
        elif mode == "I" and raw.max(initial=0) <= 255:
            scale = 255.0
        else:
            scale = 65535.0
        grey = torch.from_numpy(np.clip(raw / scale, 0.0, 1.0).astype(np.float32))
        return LoadedImage(grey.expand(3, -1, -1).unsqueeze(0).contiguous(), None, 8 if scale == 255.0 else 16)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        arr = np.asarray(img, dtype=np.float32) / 255.0
        alpha = torch.from_numpy(arr[..., 3].copy())[None, None]
        rgb = arr[..., :3]
    else:  # 8-bit: reorder as bytes, then one pass to float (a quarter of the memory traffic)
        with warnings.catch_warnings():  # Pillow's array is read-only; it is only read, by the copy below
            warnings.simplefilter("ignore", UserWarning)
            pixels = torch.from_numpy(np.asarray(img if mode == "RGB" else img.convert("RGB")))
        return LoadedImage(pixels.permute(2, 0, 1).contiguous()[None].float().div_(255.0), None)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).contiguous()
    return LoadedImage(tensor, alpha)


def tensor_to_loaded(t: Tensor) -> LoadedImage:
    """Accept (3, H, W), (1, 3, H, W), (1, H, W) or (H, W) tensors in [0, 1]; 4 channels = RGBA."""
    x = t.detach().float().cpu()
    if x.dim() == 2:
        x = x[None]
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3, 4):
        raise InputError(f"image tensor must be (3, H, W) or (1, 3, H, W) in [0, 1]; got {tuple(t.shape)}")
    if not torch.isfinite(x).all():
        raise InputError("image tensor contains NaN or infinite values")
    x = x.clamp(0, 1)
    alpha = None
    if x.shape[1] == 4:
        x, alpha = x[:, :3], x[:, 3:]
    elif x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return LoadedImage(x.contiguous(), alpha)


def load_image(src: ImageLike, *, max_pixels: int = MAX_PIXELS, reduce_to: int | None = None) -> LoadedImage:
    """Load a path, PIL image or tensor as :class:`LoadedImage` (``reduce_to``: see :func:`open_pil`);
    a :class:`LoadedImage` is returned as it is (an image decoded once, used many times)."""
    if isinstance(src, LoadedImage):
        return src
    if isinstance(src, Tensor):
        loaded = tensor_to_loaded(src)
    elif isinstance(src, Image.Image):
        loaded = pil_to_loaded(src)
    elif isinstance(src, (str, os.PathLike)):
        opened = open_pil(src, max_pixels=max_pixels, reduce_to=reduce_to)
        loaded = opened if isinstance(opened, LoadedImage) else pil_to_loaded(opened)
    else:
        raise InputError(f"expected an image path, PIL image or tensor; got {_describe(src)}")
    h, w = loaded.size
    if h < 1 or w < 1:
        raise ImageError(f"image {_describe(src)} is empty ({w}x{h})")
    return loaded


def _samples(rgb: Tensor, alpha: Tensor | None) -> np.ndarray:
    """(H, W, 3 or 4) float32 in [0, 1]: RGB, with alpha (resized to the image) as a 4th sample."""
    x = rgb.detach().float().cpu().clamp(0, 1)[0]
    if alpha is not None:
        a = resize(alpha.detach().float().cpu(), spatial_size(x))[0].clamp(0, 1)
        x = torch.cat([x, a], 0)
    return x.permute(1, 2, 0).numpy()


def to_pil(rgb: Tensor, alpha: Tensor | None = None) -> Image.Image:
    """(1, 3, H, W) [0, 1] tensor (and optional alpha) to an 8-bit RGB or RGBA PIL image."""
    arr = (_samples(rgb, alpha) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGBA" if alpha is not None else "RGB")


def as_output(rgb: Tensor, alpha: Tensor | None, output: str, bit_depth: int = 8) -> Any:
    """A method's result as asked: ``"pil"`` an 8-bit PIL image (RGBA with alpha), ``"tensor"``
    the (1, 3, H, W) tensor, ``"loaded"`` a :class:`LoadedImage` at full precision (with alpha, and
    the content's ``bit_depth``, which :func:`save_image` follows)."""
    if output == "tensor":
        return rgb
    if output == "loaded":
        a = None if alpha is None else resize(alpha.detach().float().cpu(), spatial_size(rgb)).clamp(0, 1)
        return LoadedImage(rgb.detach().float().cpu().clamp(0, 1), a, bit_depth)
    if output == "pil":
        return to_pil(rgb, alpha)
    raise InputError(f"unknown output {output!r}; valid: loaded, pil, tensor")


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    fmt = SAVE_FORMATS.get(ext)
    if fmt is None:
        raise InputError(
            f"unsupported output extension {ext or '(none)'!r} for {str(path)!r}; "
            f"valid: {', '.join(sorted(SAVE_FORMATS))}"
        )
    if fmt == "WEBP" and not features.check("webp"):
        raise InputError("this Pillow build cannot write WebP; choose .png, .jpg or .tif")
    return fmt


def check_output_path(out: str | os.PathLike, inputs: list) -> None:
    """Refuse an output that would overwrite an input or land in a folder that does not exist."""
    output_format(out)
    out_path = Path(out)
    parent = out_path.parent if str(out_path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder does not exist: {str(parent)!r}")
    if out_path.is_dir():
        raise InputError(f"output path is a folder: {str(out)!r}")
    target = os.path.realpath(out_path)
    for src in inputs:
        if isinstance(src, (str, os.PathLike)) and os.path.realpath(src) == target:
            raise InputError(f"output {str(out)!r} is one of the inputs; choose another path")


def encode_image(img: ImageLike, fmt: str, *, quality: int = 95, bit_depth: int = 8) -> bytes:
    """The bytes of ``img`` (a PIL image, a tensor in [0, 1] or a :class:`LoadedImage`) in Pillow
    format ``fmt``, tagged sRGB (for the service and for files).

    ``bit_depth=16`` (PNG and TIFF only) writes 16 bits per sample straight from the float tensor,
    with no 8-bit step. Formats without alpha (JPEG) get the image flattened onto white.
    """
    check_bit_depth(bit_depth, fmt)
    if bit_depth == 16:
        return _encode_deep(load_image(img), fmt)
    if not isinstance(img, Image.Image):
        loaded = load_image(img)
        img = to_pil(loaded.rgb, loaded.alpha)
    if img.mode == "RGBA" and fmt not in ALPHA_FORMATS:
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    buffer = io.BytesIO()
    options: dict = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt in ICC_FORMATS and img.mode in ("RGB", "RGBA"):
        options["icc_profile"] = srgb_profile()  # impasto works in sRGB, and says so
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
"""Output formats that carry an ICC profile (every output of those is tagged sRGB)."""


class BitDepthWarning(UserWarning):
    """A 16-bit image could only be read at 8 bits per sample."""


class ColorProfileWarning(UserWarning):
    """An image's colour profile could not be read or applied; it was read as sRGB."""


@functools.cache
def srgb_profile() -> bytes:
    """The bytes of the sRGB profile littleCMS builds (the working space of every image)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_srgb(img: Image.Image, name: str) -> Image.Image:
    """``img`` converted from its embedded ICC profile (Display P3, Adobe RGB, a CMYK press profile...)
    to sRGB with littleCMS (perceptual intent); an image without a profile is sRGB already. A profile
    that cannot be read or applied gets a :class:`ColorProfileWarning` and the pixels as they are."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
            return img  # already sRGB (IEC61966-2.1 and its variants): nothing to do
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, source, ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())),
                                              outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:80]
        warnings.warn(f"{name}: its colour profile cannot be used ({why}); read as sRGB", ColorProfileWarning,
                      stacklevel=3)
        return img
    assert converted is not None
    converted.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return converted


def save_image(img: ImageLike, path: str | os.PathLike, *, quality: int = 95, bit_depth: int | None = None) -> None:
    """Write ``img`` (PIL image, tensor or :class:`LoadedImage`) atomically in the format of
    ``path``'s extension (see :func:`atomic_write`). ``bit_depth`` 8 or 16 (PNG, TIFF); None: 16 for
    a :class:`LoadedImage` from a 16-bit file saved as PNG or TIFF, else 8."""
    fmt = output_format(path)
    data = encode_image(img, fmt, quality=quality, bit_depth=output_bit_depth(bit_depth, img, fmt))
    with atomic_write(path) as fh:
        fh.write(data)


# --- 16 bits per sample ---------------------------------------------------------------------------

DEEP_FORMATS = ("PNG", "TIFF")
"""Output formats that hold 16 bits per sample."""
BIT_DEPTHS = (8, 16)


def check_bit_depth(bit_depth: Any, fmt: str | None = None) -> None:
    """Refuse a bit depth other than 8 or 16, and 16 for a format that holds 8 (JPEG, WebP)."""
    if isinstance(bit_depth, bool) or bit_depth not in BIT_DEPTHS:
        raise InputError(f"bit_depth must be 8 or 16; got {bit_depth!r}", fields=("bit_depth",))
    if bit_depth == 16 and fmt is not None and fmt not in DEEP_FORMATS:
        raise InputError(f"bit_depth 16 needs a PNG or TIFF output; {fmt} holds 8 bits", fields=("bit_depth",))


def source_bit_depth(src: Any) -> int:
    """Bits per sample of an image as a file holds it (8 or 16), from its header only; 8 for what
    is not a file or image (a tensor, bytes that do not open)."""
    if isinstance(src, LoadedImage):
        return src.bit_depth
    if isinstance(src, Image.Image):
        return 16 if src.mode in ("I;16", "I;16L", "I;16B", "I;16N", "F") or is_deep(src) else 8
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    elif not isinstance(src, (str, os.PathLike)) or not os.path.isfile(src):  # (a FIFO would block)
        return 8
    try:
        if isinstance(src, io.BytesIO):
            check_structure(src.getvalue(), "image")
        else:
            check_file_structure(src, "image")
        with Image.open(src) as img:
            if img.mode == "I":  # 32-bit integer greyscale: 16 unless it holds bytes only (a rare case)
                return 16
            return source_bit_depth(img)
    except Exception:  # unreadable: the load will say why
        return 8


def output_bit_depth(requested: int | None, source: Any, fmt: str) -> int:
    """The bit depth to write: ``requested`` (8 or 16, checked against ``fmt``), or when None, 16
    if ``source`` is a 16-bit image and ``fmt`` holds 16 bits, else 8."""
    if requested is not None:
        check_bit_depth(requested, fmt)
        return requested
    return 16 if fmt in DEEP_FORMATS and source_bit_depth(source) == 16 else 8


_DEEP_PNG_MODES = ("RGB;16B", "RGBA;16B", "LA;16B")


def is_deep(img: Image.Image) -> bool:
    """Whether an opened (not yet decoded) image has more than 8 bits per colour sample that Pillow
    would lose: a 16-bit RGB(A) or grey+alpha PNG, or a TIFF with several samples over 8 bits."""
    if img.format == "PNG":
        tile: list = getattr(img, "tile", None) or []
        return bool(tile) and tile[0][3] in _DEEP_PNG_MODES
    if img.format == "TIFF" and hasattr(img, "tag_v2"):
        bits = img.tag_v2.get(258, (1,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return int(img.tag_v2.get(277, 1)) >= 2 and max(bits) > 8
    return False


def _decode_deep(src: str | os.PathLike | io.BytesIO, img: Image.Image, name: str) -> LoadedImage | None:
    """A deep PNG or TIFF decoded at full precision (pypng, tifffile), oriented and in sRGB; None
    (with a warning) for a TIFF compression tifffile cannot decode without imagecodecs: then Pillow
    reads it at 8 bits."""
    if isinstance(src, io.BytesIO):
        src.seek(0)
        data = src.getvalue()
    else:
        data = Path(src).read_bytes()
    arr = _read_png16(data) if img.format == "PNG" else _read_tiff(data, name)
    if arr is None:
        return None
    if arr.shape[-1] in (1, 2):  # grey (+ alpha): spread the grey over RGB
        arr = np.concatenate([arr[..., :1].repeat(3, -1), arr[..., 1:]], -1)
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)[None]  # no copy: float32
    x = _orient(x, img)
    rgb, alpha = x[:, :3].contiguous(), (x[:, 3:4].contiguous() if x.shape[1] > 3 else None)
    icc = img.info.get("icc_profile")
    if icc:
        rgb = _deep_to_srgb(rgb, icc, name)
    return LoadedImage(rgb, alpha, 16)


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
"""Adam7's passes: (x0, y0, x step, y step)."""


def check_deep_png(data: bytes, name: str = "upload", *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Whether a 16-bit PNG is whole, without decoding its pixels: (height, width).

    A 16-bit PNG is decoded by pypng in pure Python (Pillow has no 16-bit RGB mode), which takes
    about a second per megapixel; a service must not spend that at submit. This reads the header,
    checks the declared size against ``max_pixels``, inflates the image data in C to exactly the
    length the header implies (never more: a zlib bomb stops there) and checks every row's filter
    byte. The chunks before the image data are parsed as the later decode parses them: by Pillow
    (a compressed profile or text that inflates past its limit fails here, not in the worker) and
    by pypng, whose sBIT must fit the bit depth. What it does not check (the CRCs aside, which
    pypng checks) cannot fail the later decode. :class:`ImageTooLarge` or :class:`ImageError` otherwise."""
    import png

    check_structure(data, repr(name))
    try:
        with Image.open(io.BytesIO(data)):  # what Pillow reads of it: the chunks up to the image data
            pass
        reader = png.Reader(bytes=data)
        reader.preamble()
        _check_sbit(reader)
        width, height = int(reader.width), int(reader.height)
        if width * height > max_pixels:
            raise ImageTooLarge(f"image too large to decode safely: {name!r} is {width}x{height} "
                                f"({width * height / 1e6:.0f} Mpx, limit {max_pixels / 1e6:.0f} Mpx)")
        bits = int(reader.bitdepth) * int(reader.planes)
        passes = ADAM7 if reader.interlace else ((0, 0, 1, 1),)
        rows = []  # (row count, bytes per row with its filter byte) of each pass
        for x0, y0, dx, dy in passes:
            w, h = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
            if w and h:
                rows.append((h, 1 + -(-w * bits // 8)))
        expected = sum(h * n for h, n in rows)
        starts = np.cumsum([0] + [h * n for h, n in rows[:-1]])
        inflate, done, worst = zlib.decompressobj(), 0, 0
        for kind, chunk in reader.chunks():
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                continue
            pending = chunk
            while pending and done <= expected:  # inflated 16 MB at a time, and never past the header's size
                piece = inflate.decompress(pending, min(1 << 24, expected + 1 - done))
                pending = inflate.unconsumed_tail
                for (h, n), base in zip(rows, starts):  # the filter bytes that fall in this piece
                    first = max(0, -(-(done - int(base)) // n))
                    last = min(h, (done + len(piece) - int(base) - 1) // n + 1)
                    if last > first:
                        at = int(base) + np.arange(first, last) * n - done
                        worst = max(worst, int(np.frombuffer(piece, np.uint8)[at].max()))
                done += len(piece)
                if not piece:
                    break
    except ImageTooLarge:
        raise
    except (png.Error, zlib.error, *DECODER_ERRORS) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ImageError(f"not a readable image: {name!r} ({why})") from None
    if done != expected:
        got = f"more than {expected}" if done > expected else str(done)
        raise ImageError(f"not a readable image: {name!r} (its image data is {got} bytes, its header says {expected})")
    if worst > 4:
        raise ImageError(f"not a readable image: {name!r} (a row with filter type {worst})")
    return height, width


def _read_png16(data: bytes) -> np.ndarray:
    """A 16-bit PNG as (H, W, samples) float in [0, 1] (pypng: tRNS, palettes and bit depths handled)."""
    import png

    try:
        reader = png.Reader(bytes=data)
        reader.preamble()
        _check_sbit(reader)
        width, height, rows, info = reader.asDirect()
        arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except (png.Error, zlib.error, *DECODER_ERRORS) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    planes = int(info["planes"])
    if arr.shape != (height, width * planes):
        raise ValueError(f"{arr.shape[0]} of {height} rows")
    return arr.reshape(height, width, planes).astype(np.float32) / np.float32(2 ** int(info["bitdepth"]) - 1)


def _check_sbit(reader: Any) -> None:
    """A pypng reader's sBIT chunk (significant bits per sample) must give each sample 1 to the
    image's bit depth: pypng's own check fails on it with a message about string formatting."""
    import png

    if reader.sbit:
        bits = tuple(reader.sbit)
        if not all(1 <= b <= int(reader.bitdepth) for b in bits):
            raise png.FormatError(f"its sBIT chunk gives {', '.join(map(str, bits))} significant bits "
                                  f"for a {reader.bitdepth}-bit image")


def _read_tiff(data: bytes, name: str) -> np.ndarray | None:
    """The first page of a TIFF as (H, W, samples) float in [0, 1] (tifffile)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            arr = page.asarray()
            axes = page.axes
    except (tifffile.TiffFileError, zlib.error, *DECODER_ERRORS) as exc:
        if "imagecodecs" in str(exc):  # a compression (LZW, PackBits, JPEG...) tifffile leaves to imagecodecs
            warnings.warn(f"{name} is a 16-bit TIFF in a compression only imagecodecs decodes: read at 8 bits "
                          "(pip install imagecodecs to read it at 16)", BitDepthWarning, stacklevel=4)
            return None
        raise ValueError(str(exc) or type(exc).__name__) from None
    if axes.startswith("S"):  # planar: samples first
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"a TIFF page of shape {arr.shape} ({axes}) is not one image")
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    info = np.iinfo(arr.dtype)
    # float32 holds every 16-bit value exactly (24-bit mantissa); 32-bit integers lose their lowest bits
    return np.clip(arr.astype(np.float32) / np.float32(info.max), 0.0, 1.0)


def _orient(x: Tensor, img: Image.Image) -> Tensor:
    """``x`` (1, C, H, W) turned upright by the image's EXIF orientation, as ``ImageOps.exif_transpose``."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block: as it is
        return x
    turns = {2: lambda t: t.flip(-1), 3: lambda t: t.flip(-1, -2), 4: lambda t: t.flip(-2),
             5: lambda t: t.transpose(-1, -2), 6: lambda t: torch.rot90(t, -1, (-2, -1)),
             7: lambda t: t.transpose(-1, -2).flip(-1, -2), 8: lambda t: torch.rot90(t, 1, (-2, -1))}
    turn = turns.get(orientation)
    return x if turn is None else turn(x).contiguous()


def _deep_to_srgb(rgb: Tensor, icc: bytes, name: str) -> Tensor:
    """A 16-bit image converted from its ICC profile to sRGB. Pillow's littleCMS binding converts
    8-bit RGB only, so littleCMS converts the 8 corners of the 8-bit cell around each pixel and the
    pixel is interpolated between them (trilinear): exact at 8-bit colours, smooth between them."""
    from PIL import ImageCms

    probe = Image.new("RGB", (1, 1))
    probe.info["icc_profile"] = icc
    if to_srgb(probe, name) is probe:  # sRGB already, or a profile that failed (warned there)
        return rgb
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile())), "RGB", "RGB")
    out = torch.empty_like(rgb)
    rows = max(1, 2_000_000 // max(1, rgb.shape[-1]))
    for y in range(0, rgb.shape[-2], rows):  # in bands of about 2 Mpx
        x = rgb[0, :, y:y + rows].permute(1, 2, 0).numpy().astype(np.float32) * 255.0
        low = np.clip(np.floor(x), 0, 254)
        frac = x - low
        low = low.astype(np.uint8)
        acc = np.zeros_like(x)
        for corner in np.ndindex(2, 2, 2):
            step = np.array(corner, dtype=np.uint8)
            converted = np.asarray(ImageCms.applyTransform(Image.fromarray(low + step, "RGB"), transform),
                                   dtype=np.float32)
            weight = np.prod(np.where(step.astype(bool), frac, 1.0 - frac), axis=-1, keepdims=True)
            acc += weight * converted
        out[0, :, y:y + rows] = torch.from_numpy(acc / 255.0).permute(2, 0, 1)
    return out.clamp_(0, 1)


def _encode_deep(loaded: LoadedImage, fmt: str) -> bytes:
    """16 bits per sample, tagged sRGB: PNG with pypng (iCCP chunk added), TIFF with tifffile (zlib)."""
    samples = _samples(loaded.rgb, loaded.alpha)
    arr = (samples * 65535.0 + 0.5).astype(np.uint16)
    height, width, planes = arr.shape
    buffer = io.BytesIO()
    if fmt == "TIFF":
        import tifffile

        tifffile.imwrite(buffer, arr, photometric="rgb", compression="zlib", iccprofile=srgb_profile(),
                         extrasamples=("unassalpha",) if planes == 4 else None)
        return buffer.getvalue()
    import zlib

    import png

    png.Writer(width, height, greyscale=False, alpha=planes == 4, bitdepth=16).write(buffer, arr.reshape(height, -1))
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    iccp = (b"iCCP", b"sRGB\0\0" + zlib.compress(srgb_profile()))
    out = io.BytesIO()
    png.write_chunks(out, [chunks[0], iccp, *chunks[1:]])  # iCCP right after IHDR, as the spec asks
    return out.getvalue()
