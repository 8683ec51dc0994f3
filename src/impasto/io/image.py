"""Image files <-> tensors: load (EXIF, modes, size limits), convert, encode, save atomically.

Tensors are RGB in [0, 1], shape (1, 3, H, W), float32. Alpha travels separately as (1, 1, H, W).
"""

from __future__ import annotations

import functools
import io
import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError, features
from torch import Tensor

from ..errors import ImageError, ImageTooLarge, InputError
from ..ops.geometry import resize, spatial_size
from .atomic import atomic_write

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

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[-2], self.rgb.shape[-1]

    def flat_rgb(self) -> Tensor:
        """RGB composited onto white where the image is transparent."""
        if self.alpha is None:
            return self.rgb
        return self.rgb * self.alpha + (1.0 - self.alpha)


def _describe(src: ImageLike) -> str:
    return repr(str(src)) if isinstance(src, (str, os.PathLike)) else type(src).__name__


ImageLike = Union[str, os.PathLike, Image.Image, Tensor, LoadedImage]  # noqa: UP007 - a runtime alias, must work on 3.10
"""What every image argument accepts: a path, a PIL image, a tensor in [0, 1], or an image already loaded."""


def open_pil(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS, reduce_to: int | None = None) -> Image.Image:
    """Open and fully decode an image file, with EXIF orientation applied.

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
    return _decode(path, name, max_pixels, reduce_to)


def decode_image(data: bytes, name: str = "upload", *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`open_pil` for bytes (an upload, a task sent to another machine); ``name`` is for messages."""
    return _decode(io.BytesIO(data), repr(name), max_pixels)


REDUCING_GAP = 2.0  # decode a JPEG at no less than this times the size it will be used at
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                  ZeroDivisionError, OverflowError, RuntimeError, MemoryError, AttributeError, NotImplementedError)
"""What Pillow's decoders raise on corrupt data (each plug-in parses its header its own way)."""


def _decode(src: str | os.PathLike | io.BytesIO, name: str, max_pixels: int,
            reduce_to: int | None = None) -> Image.Image:
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
        return LoadedImage(grey.expand(3, -1, -1).unsqueeze(0).contiguous(), None)
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
        loaded = pil_to_loaded(open_pil(src, max_pixels=max_pixels, reduce_to=reduce_to))
    else:
        raise InputError(f"expected an image path, PIL image or tensor; got {_describe(src)}")
    h, w = loaded.size
    if h < 1 or w < 1:
        raise ImageError(f"image {_describe(src)} is empty ({w}x{h})")
    return loaded


def to_pil(rgb: Tensor, alpha: Tensor | None = None) -> Image.Image:
    """(1, 3, H, W) [0, 1] tensor (and optional alpha) to an 8-bit RGB or RGBA PIL image."""
    x = rgb.detach().float().cpu().clamp(0, 1)[0]
    if alpha is not None:
        a = resize(alpha.detach().float().cpu(), spatial_size(x))[0]
        x = torch.cat([x, a], 0)
    arr = (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGBA" if alpha is not None else "RGB")


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


def encode_image(img: Image.Image, fmt: str, *, quality: int = 95) -> bytes:
    """The bytes of ``img`` in Pillow format ``fmt`` (for the service and for files).

    Formats without alpha (JPEG) get the image flattened onto white.
    """
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


def save_image(img: Image.Image, path: str | os.PathLike, *, quality: int = 95) -> None:
    """Write ``img`` atomically in the format of ``path``'s extension (see :func:`atomic_write`)."""
    data = encode_image(img, output_format(path), quality=quality)
    with atomic_write(path) as fh:
        fh.write(data)
