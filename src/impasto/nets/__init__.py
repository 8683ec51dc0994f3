"""Networks: the VGG loss network (weights, layer names, geometry) shared by every method."""

from .config import NetworkConfig
from .vgg import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    VGGFeatures,
    build_extractor,
    check_layers,
    layer_mask,
    layer_names,
    layer_size,
)

__all__ = [
    "CONTENT_LAYERS", "STYLE_LAYERS", "NetworkConfig", "VGGFeatures", "build_extractor", "check_layers", "layer_mask",
    "layer_names", "layer_size",
]
