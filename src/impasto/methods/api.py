"""The library's front door for painting: :func:`stylize` (``impasto.stylize``), the optimization
with its ``init`` free to name any registered one-pass method. Above the registry, so that it can
ask it which methods there are (the optimization's own module may not: the registry imports it)."""

from __future__ import annotations

from typing import Any

from . import optimization
from .registry import available


def stylize(content: Any, styles: Any, *, config: Any = None, init_image: Any = None, callback: Any = None,
            style_masks: Any = None, **options: Any) -> Any:
    """:func:`impasto.optimize.stylize`, and ``init`` may also name a one-pass method that paints
    from style images (``init="wct"``): the optimization then starts from that painting (shown to
    ``callback`` at once, as a :class:`impasto.progress.Preview`), which with few iterations gives
    the optimization's quality in a fraction of its time; ``preset="quick"`` sets that up
    (``impasto.optimize.PRESETS``), under the options given. Every other argument is
    :func:`impasto.optimize.stylize`'s."""
    from ..optimize.config import StylizeConfig, with_preset
    from ..optimize.pipeline import resolve
    from ..optimize.pipeline import stylize as optimize

    fields = set(StylizeConfig.field_names())
    preset = options.pop("preset", None)
    cfg = resolve(config, with_preset(preset, {k: v for k, v in options.items() if k in fields}))
    rest = {k: v for k, v in options.items() if k not in fields}
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    cfg, start = optimization.split_init(cfg, style_list, available(), style_masks=style_masks)
    if start is not None and init_image is None:
        init_image = start(content, callback)
    return optimize(content, style_list, config=cfg, init_image=init_image, callback=callback,
                    style_masks=style_masks, **rest)
