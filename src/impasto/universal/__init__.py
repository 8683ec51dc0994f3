"""Universal style transfer (the WCT family): any painting in one pass, with decoders trained on
photos only (Li et al. 2017; AdaIN, Huang & Belongie 2017).

:mod:`.transforms` holds the feature transforms, :mod:`.decoder` the decoders, :mod:`.model` a
set of them and its file, :mod:`.train` their training.
"""

from .decoder import LEVELS, Decoder
from .model import DecoderSet, load_decoders
from .transforms import StyleStats, adain, style_stats, wct

__all__ = ["LEVELS", "Decoder", "DecoderSet", "StyleStats", "adain", "load_decoders", "style_stats", "wct"]
