"""The public entry point: ``stylize(content, styles, **options) -> PIL.Image``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from . import color
from .config import StylizeConfig
from .errors import InputError, StylizeInterrupted
from .features import VGGFeatures, build_extractor
from .image import ImageLike, LoadedImage, fit_long_edge, load_image, resize, rotate, to_pil
from .masks import load_mask, region_masks
from .objective import build_objective, style_targets
from .optim import optimize
from .tiling import Canvas, Tile, available_bytes, budget_grid, estimate_bytes, grid, max_tile_pixels


@dataclass(frozen=True)
class Progress:
    """One event per iteration, passed to the ``callback`` of :func:`stylize`."""

    step: int
    """Iterations done so far (1-based)."""
    iterations: int
    """Iterations in the whole run (all scales)."""
    losses: dict[str, float]
    """'content', 'style', 'tv' (unweighted) and 'total' (weighted), at the start of this step."""
    elapsed: float
    """Seconds since the run started (loading and targets included)."""
    size: tuple[int, int]
    """(height, width) being optimized."""
    setup: float
    """Seconds from the start of the run to its first iteration (loading, network, targets)."""
    scale: int
    """Index of the current scale of the coarse-to-fine pyramid (0 = coarsest)."""
    scales: int
    """Number of scales."""
    work: float
    """Fraction of the run's work done, 0..1 (iterations weighted by the pixels they optimize, so a
    full-size iteration counts 16 times a quarter-size one): what an ETA should use."""
    _render: Callable[[], Image.Image] = field(repr=False, compare=False)

    def image(self) -> Image.Image:
        """The current image as it would be saved (computed only when asked for)."""
        return self._render()


Callback = Callable[[Progress], Any]


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if name.startswith("mps") and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise InputError(f"device {name!r} requested but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def make_config(config: StylizeConfig | None = None, **options: Any) -> StylizeConfig:
    """A config from defaults (or ``config``) with ``options`` applied; unknown names are refused."""
    base = config or StylizeConfig()
    valid = {f.name for f in dataclasses.fields(StylizeConfig)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return dataclasses.replace(base, **options) if options else base


def _as_list(styles: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(styles, (list, tuple)):
        return list(styles)
    return [styles]  # type: ignore[list-item]


@dataclass
class _Inputs:
    """Everything loaded from the user's files, once, at full resolution."""

    content: LoadedImage
    styles: list[LoadedImage]
    init: LoadedImage | None = None
    style_masks: list[Tensor] | None = None
    keep_mask: Tensor | None = None


def load_inputs(content: ImageLike, styles: list[ImageLike], cfg: StylizeConfig) -> _Inputs:
    """Load and check every input image and mask before any work is done."""
    limit = cfg.max_pixels
    inputs = _Inputs(load_image(content, max_pixels=limit), [load_image(s, max_pixels=limit) for s in styles])
    if cfg.init not in ("content", "noise"):
        inputs.init = load_image(cfg.init, max_pixels=limit)
    hw = inputs.content.size
    if cfg.style_masks is not None:
        inputs.style_masks = [load_mask(m, hw, what=f"style mask {i + 1}", max_pixels=limit)
                              for i, m in enumerate(cfg.style_masks)]
    if cfg.keep_mask is not None:
        inputs.keep_mask = load_mask(cfg.keep_mask, hw, what="keep mask", max_pixels=limit)
    return inputs


@dataclass
class _Prepared:
    """Inputs at one scale, color-processed, ready for the optimizer."""

    content: Tensor  # what the content loss sees (luminance-only in luminance mode)
    content_rgb: Tensor  # the content in color (for luminance recombination and the keep mask)
    alpha: Tensor | None
    styles: list[list[Tensor]]  # per style image: the image and its augmented copies
    masks: list[Tensor | None]  # per style image: its region at this scale (None = everywhere)
    keep: Tensor | None
    init: Tensor


def augmented(style: Tensor, cfg: StylizeConfig) -> list[Tensor]:
    """The style image plus its rotated and scaled copies."""
    copies = [style] + [rotate(style, a) for a in cfg.style_rotations]
    h, w = style.shape[-2:]
    copies += [resize(style, (max(1, round(h * f)), max(1, round(w * f)))) for f in cfg.style_scales]
    return copies


def prepare(inputs: _Inputs, cfg: StylizeConfig, device: torch.device, generator: torch.Generator,
            long_edge: int | None = None) -> _Prepared:
    """Resize to ``long_edge`` (default: the output size), apply color preservation, build the start image."""
    edge = long_edge or cfg.size
    size = fit_long_edge(inputs.content.size, edge)
    c = resize(inputs.content.flat_rgb(), size).to(device)
    style_edge = max(1, round(edge * cfg.style_scale))
    s = [resize(st.flat_rgb(), fit_long_edge(st.size, style_edge)).to(device) for st in inputs.styles]
    c_opt = c
    if cfg.preserve_color == "histogram":
        s = [color.match_color(x, c) for x in s]
    elif cfg.preserve_color == "luminance":
        s = [color.luminance_as_rgb(x, like=c) for x in s]
        c_opt = color.luminance_as_rgb(c)
    if inputs.init is not None:
        init = resize(inputs.init.flat_rgb(), size).to(device)
        if cfg.preserve_color == "luminance":
            init = color.luminance_as_rgb(init)
    elif cfg.init == "noise":
        init = torch.rand(c.shape, generator=generator).to(device)
    else:
        init = c_opt.clone()
    masks = region_masks(inputs.style_masks, inputs.keep_mask, size, len(s))
    keep = None if inputs.keep_mask is None else resize(inputs.keep_mask, size).to(device)
    return _Prepared(c_opt, c, inputs.content.alpha, [augmented(x, cfg) for x in s],
                     [None if m is None else m.to(device) for m in masks], keep, init)


def finish(x: Tensor, prepared: _Prepared, cfg: StylizeConfig) -> Image.Image:
    """Optimized tensor -> output image (luminance recombined, kept region restored, alpha re-attached)."""
    x = x.detach().float().clamp(0, 1)
    if cfg.preserve_color == "luminance":
        x = color.recombine_luminance(x, prepared.content_rgb)
    if prepared.keep is not None:
        keep = resize(prepared.keep, tuple(x.shape[-2:]))
        x = keep * resize(prepared.content_rgb, tuple(x.shape[-2:])) + (1 - keep) * x
    return to_pil(x, prepared.alpha)


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    config: StylizeConfig | None = None,
    callback: Callback | None = None,
    extractor: VGGFeatures | None = None,
    **options: Any,
) -> Image.Image:
    """Repaint ``content`` in the style of ``styles`` (Gatys et al., 2016).

    ``content`` and each style may be a path, a PIL image or a (3, H, W) tensor in [0, 1].
    Options are the fields of :class:`StylizeConfig` (e.g. ``size=512, style_weight=1e3``).
    ``callback(progress)`` is called after each iteration with a :class:`Progress`.
    ``extractor`` reuses a network built by :func:`impasto.features.build_extractor` across calls.

    Returns an RGB image (RGBA if the content had alpha: the content's alpha is re-attached).
    Raises :class:`InputError` for bad inputs, :class:`NonFiniteLossError` if the optimization
    diverges, and :class:`StylizeInterrupted` (with ``.image``, a PIL image) on Ctrl-C.
    """
    start = time.perf_counter()
    cfg = make_config(config, **options)
    style_list = _as_list(styles)
    cfg.check_styles(len(style_list))
    device = resolve_device(cfg.device)
    generator = torch.Generator()
    if cfg.seed is not None:
        generator.manual_seed(cfg.seed)
    else:
        generator.seed()  # non-deterministic, without touching torch's global RNG

    inputs = load_inputs(content, style_list, cfg)
    edges, counts = cfg.pyramid(), cfg.scale_iterations()
    _check_smallest_scale(inputs.content, edges[0], cfg)
    plan = plan_tiles(inputs.content.size, edges, cfg, device)
    if extractor is None:
        extractor = build_extractor(cfg.layers, weights=cfg.weights, pooling=cfg.pooling, device=device)
    total = sum(count * max(1, len(tiles)) for count, tiles in zip(counts, plan))
    work = 0
    for edge, count, tiles in zip(edges, counts, plan):
        h, w = fit_long_edge(inputs.content.size, edge)
        work += count * (sum(t.size[0] * t.size[1] for t in tiles) if tiles else h * w)
    run = _Run(cfg, callback, start, total, len(edges), work)
    x: Tensor | None = None
    prepared: _Prepared | None = None
    for scale, (edge, count, tiles) in enumerate(zip(edges, counts, plan)):
        prepared = prepare(inputs, cfg, device, generator, long_edge=edge)
        init = prepared.init if x is None else resize(x, tuple(prepared.init.shape[-2:]))
        targets = style_targets(extractor, prepared.styles, cfg) if cfg.style_weight else None
        if scale == 0:
            run.setup = time.perf_counter() - start
        if tiles:
            x = run.tiled(init, extractor, targets, prepared, count, scale, tiles)
        else:
            objective = build_objective(extractor, prepared.content, None, cfg, prepared.masks, targets)
            x = run.scale(init, objective, prepared, count, scale)
    assert x is not None and prepared is not None
    return finish(x, prepared, cfg)


def plan_tiles(content_hw: tuple[int, int], edges: list[int], cfg: StylizeConfig,
               device: torch.device) -> list[list[Tile]]:
    """For each scale, its tiles ([] = optimized in one piece)."""
    if cfg.memory_budget:
        budget = int(cfg.memory_budget * 2**30)
    elif device.type == "cuda":
        budget = int(0.8 * torch.cuda.mem_get_info(device)[0])
    else:
        budget = int(0.8 * available_bytes())
    plan: list[list[Tile]] = []
    for edge in edges:
        h, w = fit_long_edge(content_hw, edge)
        need = estimate_bytes(h, w, cfg.style_loss, cfg.optimizer)
        if cfg.tile:
            plan.append(grid((h, w), cfg.tile, cfg.tile_overlap) if max(h, w) > cfg.tile else [])
        elif need <= budget:
            plan.append([])
        elif cfg.tile == 0:
            raise InputError(
                f"a {w}x{h} scale needs about {need / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB "
                "available; use --tile (or a smaller --size)"
            )
        else:
            pixels = max_tile_pixels(budget, cfg.style_loss, cfg.optimizer)
            tiles = budget_grid((h, w), pixels, cfg.tile_overlap)
            plan.append(tiles if len(tiles) > 1 else [])
    return plan


@dataclass
class _Run:
    """Progress bookkeeping across scales and tiles, and the two ways of optimizing a scale."""

    cfg: StylizeConfig
    callback: Callback | None
    start: float
    total: int
    scales: int
    total_work: float
    done: int = 0
    work_done: float = 0.0
    setup: float = 0.0
    state: dict = field(default_factory=dict)

    def _optimize(self, init: Tensor, objective: Any, count: int, scale: int,
                  render: Callable[[Tensor], Image.Image]) -> Tensor:
        size = tuple(init.shape[-2:])

        def on_step(step: int, losses: dict[str, float], x: Tensor) -> None:
            self.work_done += size[0] * size[1]
            if self.callback is not None:
                self.callback(Progress(step, self.total, losses, time.perf_counter() - self.start,
                                       size, self.setup, scale, self.scales,  # type: ignore[arg-type]
                                       min(1.0, self.work_done / self.total_work), lambda: render(x)))

        cfg = self.cfg
        gpu = init.device.type == "cuda"  # there: no host sync in the loop, losses read every 10 steps
        x, self.state = optimize(init, objective, optimizer=cfg.optimizer, iterations=count, lr=cfg.lr,
                                 callback=on_step, first_step=self.done, resume=self.state,
                                 ema_decay=cfg.ema_decay, sync_free=gpu, sync_every=10 if gpu else 1)
        self.done += count
        return x

    def scale(self, init: Tensor, objective: Any, prepared: _Prepared, count: int, scale: int) -> Tensor:
        try:
            return self._optimize(init, objective, count, scale, lambda x: finish(x, prepared, self.cfg))
        except StylizeInterrupted as stop:
            raise StylizeInterrupted(finish(stop.image, prepared, self.cfg), stop.step) from None

    def tiled(self, init: Tensor, extractor: VGGFeatures, targets: Any, prepared: _Prepared, count: int,
              scale: int, tiles: list[Tile]) -> Tensor:
        """Optimize tile by tile against the shared style targets, pasting each with a feather."""
        canvas = Canvas(init, self.cfg.tile_overlap)
        for tile in tiles:
            def crop(t: Tensor) -> Tensor:
                return t[..., tile.y0:tile.y1, tile.x0:tile.x1]

            masks = [None if m is None else crop(m) for m in prepared.masks]
            objective = build_objective(extractor, crop(prepared.content), None, self.cfg, masks, targets)
            self.state = {}  # optimizer state is per tile
            try:
                piece = self._optimize(canvas.crop(tile).clone(), objective, count, scale,
                                       lambda x: finish(canvas.image(), prepared, self.cfg))
            except StylizeInterrupted as stop:
                canvas.paste(stop.image, tile)
                raise StylizeInterrupted(finish(canvas.image(), prepared, self.cfg), stop.step) from None
            canvas.paste(piece.clamp(0, 1), tile)
        self.state = {}  # the last tile's optimizer state means nothing for the next scale
        return canvas.image()


def _check_smallest_scale(content: LoadedImage, edge: int, cfg: StylizeConfig) -> None:
    """The coarsest scale must leave at least one pixel at the deepest layer."""
    from .features import layer_names

    names = layer_names("vgg16" if cfg.weights == "torchvision-vgg16" else "vgg19")
    deepest = max(names.index(n) for n in cfg.layers if n in names)
    pools = sum(1 for n in names[:deepest] if n.startswith("pool"))
    h, w = fit_long_edge(content.size, edge)
    if min(h, w) < 2**pools:
        raise InputError(
            f"image too small: the {'first scale' if edge != cfg.size else 'output'} is {w}x{h} px, "
            f"but layer {names[deepest]} needs at least {2**pools} px on the short side; "
            "raise --size or --start-size"
        )
