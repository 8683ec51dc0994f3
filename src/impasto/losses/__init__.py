"""Losses: content, style (several kinds, one interface) and total variation."""

from .basic import (
    NORMALIZATIONS,
    ContentLoss,
    StyleLoss,
    blend_grams,
    content_loss,
    gram_matrix,
    relative_weight,
    style_loss,
    tv_loss,
)
from .style import STYLE_LOSSES, StyleLossKind, get_style_loss, register_style_loss
from . import meancov as _meancov  # noqa: F401  (registers "meancov")
from . import mrf as _mrf  # noqa: F401  (registers "mrf")

__all__ = [
    "NORMALIZATIONS", "STYLE_LOSSES", "ContentLoss", "StyleLoss", "StyleLossKind", "blend_grams",
    "content_loss", "get_style_loss", "gram_matrix", "register_style_loss", "relative_weight",
    "style_loss", "tv_loss",
]
