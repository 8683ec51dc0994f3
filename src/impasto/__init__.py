"""impasto: neural style transfer (Gatys et al., 2016) as a library and a command-line tool.

    >>> import impasto
    >>> image = impasto.stylize("photo.jpg", "painting.jpg", size=512)
    >>> image.save("out.png")
"""

from .config import StylizeConfig
from .errors import ImageError, ImpastoError, InputError, NonFiniteLossError, StylizeInterrupted
from .features import VGGFeatures, build_extractor
from .image import load_image, save_image
from .api import Progress, stylize

__version__ = "0.1.0"

__all__ = [
    "ImageError",
    "ImpastoError",
    "InputError",
    "NonFiniteLossError",
    "Progress",
    "StylizeConfig",
    "StylizeInterrupted",
    "VGGFeatures",
    "build_extractor",
    "load_image",
    "save_image",
    "stylize",
    "__version__",
]
