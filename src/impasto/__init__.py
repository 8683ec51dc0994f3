"""impasto: neural style transfer (Gatys et al., 2016) as a library and a command-line tool.

    >>> import impasto
    >>> image = impasto.stylize("photo.jpg", "painting.jpg", size=512)
    >>> image.save("out.png")

The package is laid out along the data flow: ``io`` (files <-> tensors), ``ops`` (tensor
helpers), ``nets`` (the VGG loss network), ``losses`` (terms and the objective), then a method
(``optimize``), with ``cli`` on top. Importing it does no work beyond importing torch.
"""

from .errors import (
    ImageError,
    ImageTooComplex,
    ImageTooLarge,
    ImpastoError,
    InputError,
    Interrupted,
    NonFiniteLossError,
    StylizeInterrupted,
    WriteError,
)
from .io import LoadedImage, load_image, save_image
from .losses import LossConfig
from .methods.api import stylize
from .nets import NetworkConfig, VGGFeatures, build_extractor
from .optimize import OptimizeConfig, StylizeConfig
from .progress import CancelToken, Progress

__version__ = "0.2.0"

SUBPACKAGES = frozenset({"fast", "universal", "video", "jobs", "methods", "optimize", "training", "metrics", "io",
                         "ops", "nets", "losses", "progress", "runtime", "config", "errors", "gallery", "serve"})
"""Reached as attributes (``impasto.fast.load_model``) and imported on first use, not at ``import
impasto``: a fresh interpreter that pastes the README's example works, and importing stays cheap."""


def __getattr__(name: str) -> object:
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *SUBPACKAGES})

__all__ = [
    "CancelToken",
    "ImageError",
    "ImageTooComplex",
    "ImageTooLarge",
    "ImpastoError",
    "InputError",
    "Interrupted",
    "LoadedImage",
    "LossConfig",
    "NetworkConfig",
    "NonFiniteLossError",
    "OptimizeConfig",
    "Progress",
    "StylizeConfig",
    "StylizeInterrupted",
    "VGGFeatures",
    "WriteError",
    "__version__",
    "build_extractor",
    "load_image",
    "save_image",
    "stylize",
]
