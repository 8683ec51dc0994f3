"""Files <-> tensors: images and masks (later video), atomic writes, bytes for the service."""

from .atomic import atomic_path, atomic_write
from .image import (
    MAX_PIXELS,
    SAVE_FORMATS,
    ImageLike,
    LoadedImage,
    check_output_path,
    encode_image,
    load_image,
    output_format,
    save_image,
    to_pil,
)
from .mask import load_mask

__all__ = [
    "MAX_PIXELS", "SAVE_FORMATS", "ImageLike", "LoadedImage", "atomic_path", "atomic_write",
    "check_output_path", "encode_image", "load_image", "load_mask", "output_format", "save_image",
    "to_pil",
]
