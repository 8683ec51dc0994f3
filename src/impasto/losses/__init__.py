"""Losses: content, style (several kinds, one interface), total variation, the lattice, and the objective of
named terms that combines them. Each loss is a function plus a small module holding its target."""

from . import meancov as _meancov  # noqa: F401  (registers "meancov")
from . import mrf as _mrf  # noqa: F401  (registers "mrf")
from .basic import (
    NORMALIZATIONS,
    ContentLoss,
    content_loss,
    gram_matrix,
    lattice_loss,
    relative_weight,
    style_loss,
    tv_loss,
)
from .config import DEFAULT_STYLE_WEIGHT, STRENGTH_MAX, LossConfig, strength_to_style_weight
from .style import STYLE_LOSSES, StyleLossKind, get_style_loss, register_style_loss, stack_targets

__all__ = [
    "DEFAULT_STYLE_WEIGHT",
    "NORMALIZATIONS",
    "STRENGTH_MAX",
    "STYLE_LOSSES",
    "ContentLoss",
    "LossConfig",
    "StyleLossKind",
    "content_loss",
    "get_style_loss",
    "gram_matrix",
    "lattice_loss",
    "register_style_loss",
    "relative_weight",
    "stack_targets",
    "strength_to_style_weight",
    "style_loss",
    "tv_loss",
]
