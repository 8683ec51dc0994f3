"""The optimization method (Gatys et al. 2016): ``stylize(content, styles, **options)``.

The run, in order: load and check every input (:func:`load_inputs`); plan the scales of the
coarse-to-fine pyramid and which of them must be tiled to fit in memory; then, per scale, prepare
the images (:func:`prepare`), compute or reuse the style targets, build the objective and
optimize (:class:`_Run`); finally recombine colors and the kept region (:func:`finish`).

Seams for other front ends: an initial image (``init_image``), precomputed style targets per
scale (``targets``, see :func:`compute_targets`), extra objective terms (``extra_terms``), a
:class:`CancelToken`, ``output="tensor"``, and ``snapshots`` (a :class:`SnapshotFile`: the run
saves where it is every few seconds and at each scale's end, and continues from there). Video
passes the warped previous frame, one set of targets for every frame and a temporal term.
"""

from __future__ import annotations

import concurrent.futures
import copy
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import InputError, Interrupted, OutOfMemory
from ..io.image import ImageLike, LoadedImage, as_output, load_image
from ..io.mask import load_mask
from ..losses.objective import Objective, StyleTargets, Term, build_objective, style_targets
from ..nets.vgg import VGGFeatures, build_extractor, min_side
from ..ops import color
from ..ops.geometry import fit_long_edge, resize, rotate, spatial_size, upsample_with_detail
from ..ops.regions import region_masks, restore_kept
from ..ops.tiles import MIN_TILE, Canvas, Tile, waves
from ..progress import Callback, CancelToken, Progress
from ..runtime import autocast_dtype, resolve_devices
from .config import StylizeConfig
from .memory import Scale, memory_budget, plan_scales
from .optimizers import graphs_pay, optimize
from .snapshot import Snapshot, Snapshots


def _as_list(styles: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(styles, (list, tuple)):
        return list(styles)
    return [styles]  # type: ignore[list-item]


@dataclass
class Inputs:
    """Everything loaded from the user's files, once, at full resolution."""

    content: LoadedImage
    styles: list[LoadedImage]
    init: LoadedImage | None = None
    style_masks: list[Tensor] | None = None
    keep_mask: Tensor | None = None


def load_inputs(content: ImageLike, styles: Sequence[ImageLike], cfg: StylizeConfig, *,
                init_image: ImageLike | None = None, style_masks: Sequence[ImageLike] | None = None,
                keep_mask: ImageLike | None = None) -> Inputs:
    """Load and check every input image and mask before any work is done."""
    limit, edge = cfg.optimize.max_pixels, cfg.optimize.size
    # Each image is decoded no larger than it is used (JPEGs at 1/2..1/8 scale, see open_pil).
    style_edge = math.ceil(edge * cfg.loss.style_scale * max((1.0, *cfg.loss.style_scales)))
    inputs = Inputs(load_image(content, max_pixels=limit, reduce_to=edge),
                    [load_image(s, max_pixels=limit, reduce_to=style_edge) for s in styles])
    if init_image is not None:
        inputs.init = load_image(init_image, max_pixels=limit, reduce_to=edge)
    elif cfg.optimize.init not in ("content", "noise"):
        inputs.init = load_image(cfg.optimize.init, max_pixels=limit, reduce_to=edge)
    _check_style_sizes(inputs, cfg)
    hw = inputs.content.size
    if style_masks is not None:
        if len(style_masks) != len(styles):
            raise InputError(f"{len(style_masks)} style masks for {len(styles)} style images; "
                             "give one per style image")
        inputs.style_masks = [load_mask(m, hw, what=f"style mask {i + 1}", max_pixels=limit)
                              for i, m in enumerate(style_masks)]
    if keep_mask is not None:
        inputs.keep_mask = load_mask(keep_mask, hw, what="keep mask", max_pixels=limit)
    return inputs


def _check_style_sizes(inputs: Inputs, cfg: StylizeConfig) -> None:
    """Each style image, at the first scale's size (``style_scale`` and the smallest of ``style_scales``
    of its long edge), must hold a pixel at the deepest layer: a style_scale of 0.0001 once failed
    inside PyTorch's pooling."""
    first = cfg.optimize.pyramid()[0]
    need, deepest = min_side(cfg.loss.layers, cfg.network.arch or "vgg19")
    edge = max(1, round(first * cfg.loss.style_scale * min((1.0, *cfg.loss.style_scales))))
    for i, style in enumerate(inputs.styles):
        h, w = fit_long_edge(style.size, edge)
        if min(h, w) < need:
            raise InputError(f"style image {i + 1} would be {w}x{h} px at the first scale (style_scale "
                             f"{cfg.loss.style_scale:g} of {first} px); layer {deepest} needs at least {need} px on "
                             "the short side: raise style_scale or start_size", fields=("style_scale",))


@dataclass
class Prepared:
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
    copies = [style] + [rotate(style, a) for a in cfg.loss.style_rotations]
    h, w = style.shape[-2:]
    copies += [resize(style, (max(1, round(h * f)), max(1, round(w * f)))) for f in cfg.loss.style_scales]
    return copies


def prepare(inputs: Inputs, cfg: StylizeConfig, device: torch.device, generator: torch.Generator,
            long_edge: int | None = None) -> Prepared:
    """Resize to ``long_edge`` (default: the output size), apply color preservation, build the start image."""
    edge = long_edge or cfg.optimize.size
    mode = cfg.optimize.preserve_color
    size = fit_long_edge(inputs.content.size, edge)
    c = resize(inputs.content.flat_rgb(), size).to(device)
    style_edge = max(1, round(edge * cfg.loss.style_scale))
    s = [resize(st.flat_rgb(), fit_long_edge(st.size, style_edge)).to(device) for st in inputs.styles]
    c_opt = color.seen(c, mode)
    s = [color.style_for(x, c, mode) for x in s]
    if inputs.init is not None:
        init = color.seen(resize(inputs.init.flat_rgb(), size).to(device), mode)
    elif cfg.optimize.init == "noise":
        init = torch.rand(c.shape, generator=generator).to(device)
    else:
        init = c_opt.clone()
    masks = region_masks(inputs.style_masks, inputs.keep_mask, size, len(s))
    keep = None if inputs.keep_mask is None else resize(inputs.keep_mask, size).to(device)
    return Prepared(c_opt, c, inputs.content.alpha, [augmented(x, cfg) for x in s],
                    [None if m is None else m.to(device) for m in masks], keep, init)


def finish(x: Tensor, prepared: Prepared, cfg: StylizeConfig) -> Tensor:
    """Optimized tensor -> output tensor (luminance recombined, kept region restored), in [0, 1]."""
    x = color.restore(x.detach().float().clamp(0, 1), prepared.content_rgb, cfg.optimize.preserve_color)
    if prepared.keep is not None:
        x = restore_kept(x, prepared.content_rgb, prepared.keep)
    return x


def compute_targets(inputs: Inputs, cfg: StylizeConfig, extractor: VGGFeatures,
                    device: torch.device) -> dict[int, StyleTargets]:
    """Style targets for every scale of the pyramid, keyed by the scale's long edge (for reuse)."""
    generator = torch.Generator()
    return {edge: style_targets(extractor, prepare(inputs, cfg, device, generator, edge).styles, cfg.loss)
            for edge in cfg.optimize.pyramid()}


def resolve(config: StylizeConfig | None, options: dict[str, Any]) -> StylizeConfig:
    """The run's config: ``config`` (or the defaults) with flat ``options`` applied."""
    base = config or StylizeConfig()
    return base.replace(**options) if options else base


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    config: StylizeConfig | None = None,
    callback: Callback | None = None,
    cancel: CancelToken | None = None,
    extractor: VGGFeatures | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    keep_mask: ImageLike | None = None,
    init_image: ImageLike | None = None,
    targets: Mapping[int, StyleTargets] | None = None,
    extra_terms: Mapping[str, tuple[Term, float]] | None = None,
    output: Literal["pil", "tensor", "loaded"] = "pil",
    snapshots: Snapshots | None = None,
    **options: Any,
) -> Any:
    """Repaint ``content`` in the style of ``styles`` (Gatys et al., 2016).

    ``content``, each style, mask and ``init_image`` may be a path, a PIL image or a (3, H, W)
    tensor in [0, 1]. Options are the fields of the config parts (``size=512, style_weight=30``;
    see :class:`StylizeConfig`). ``callback(progress)`` is called after each iteration with a
    :class:`Progress`; setting ``cancel`` stops the run before its next iteration.

    ``style_masks`` (one per style: where it applies) and ``keep_mask`` (a region to keep) are
    Gatys et al. (2017)'s spatial control. ``extractor`` reuses a network across calls;
    ``targets`` reuses style targets (from :func:`compute_targets`) for the scales they cover;
    ``extra_terms`` adds named ``(term, weight)`` pairs to the objective at the last scale (their
    tensors at the output size). ``snapshots`` (a :class:`SnapshotFile`, or any object with its
    ``load``, ``save`` and ``resumed``) keeps where the run is: the run starts from the snapshot it
    loads, at its scale and step with a fresh optimizer, if it is one of this run's pyramid (else
    from the beginning), and saves one at most every ``snapshots.every`` seconds and at the end of
    each scale but the last.

    Returns an 8-bit RGB PIL image (RGBA if the content had alpha); with ``output="tensor"`` a
    (1, 3, H, W) tensor in [0, 1] on the run's device; with ``output="loaded"`` a
    :class:`LoadedImage` at full precision (alpha and the content's bit depth kept: save it with
    :func:`impasto.save_image` for a 16-bit PNG or TIFF). Raises :class:`InputError` for bad inputs,
    :class:`NonFiniteLossError` if the optimization diverges, and :class:`Interrupted`
    (with the image so far as a tensor) on Ctrl-C or cancellation.
    """
    start = time.perf_counter()
    cfg = resolve(config, options)
    style_list = _as_list(styles)
    cfg.loss.check_styles(len(style_list))
    devices = resolve_devices(cfg.network.device)  # several: a tiled scale's tiles are spread over them
    device = devices[0]
    generator = torch.Generator()
    if cfg.optimize.seed is not None:
        generator.manual_seed(cfg.optimize.seed)
    else:
        generator.seed()  # non-deterministic, without touching torch's global RNG
    inputs = load_inputs(content, style_list, cfg, init_image=init_image, style_masks=style_masks,
                         keep_mask=keep_mask)
    plan = plan_scales(inputs.content.size, cfg.optimize, cfg.loss.style_loss, memory_budget(cfg.optimize, device))
    check_smallest_scale(plan[0].size, plan[0].edge, cfg)
    if extra_terms and plan[-1].tiles:
        raise InputError("extra objective terms cannot be combined with tiling; lower size or raise memory_budget",
                         fields=("size", "memory_budget"))
    if extractor is None:
        extractor = build_extractor(cfg.loss.layers, weights=cfg.network.weights, pooling=cfg.network.pooling,
                                    device=device)
    run = _Run(cfg, callback, cancel, start, total=sum(s.steps for s in plan), scales=len(plan),
               total_work=sum(s.work for s in plan), snapshot=None if snapshots is None else snapshots.save,
               snapshot_every=0.0 if snapshots is None else snapshots.every, devices=devices)
    resume = None if snapshots is None else snapshots.load()
    if resume is not None and run.resume_at(resume, plan):
        snapshots.resumed(resume)  # type: ignore[union-attr]
    try:
        x, prepared = _pyramid(run, plan, inputs, generator, extractor, targets, extra_terms, device)
    except Interrupted as stop:  # the one place a partial result is rendered
        raise Interrupted(run.partial(stop.partial), stop.step, cancelled=stop.cancelled,
                          alpha=inputs.content.alpha) from None
    out = finish(x, prepared, cfg)
    return as_output(out, prepared.alpha, output, inputs.content.bit_depth)


def _pyramid(run: _Run, plan: list[Scale], inputs: Inputs, generator: torch.Generator, extractor: VGGFeatures,
             targets: Mapping[int, StyleTargets] | None, extra_terms: Mapping[str, tuple[Term, float]] | None,
             device: torch.device) -> tuple[Tensor, Prepared]:
    """Optimize every scale, coarse to fine, each starting from the last one upsampled."""
    cfg = run.cfg
    x: Tensor | None = None
    prepared: Prepared | None = None
    resume = run.resume
    for scale in plan:
        if resume is not None and scale.index < resume.scale:
            continue  # done before the snapshot
        prepared = prepare(inputs, cfg, device, generator, long_edge=scale.edge)
        if resume is not None and scale.index == resume.scale:
            x = resume.image.to(device)
            if resume.step >= scale.iterations:  # the snapshot is this scale's end
                continue
            init = x
        else:
            init = prepared.init if x is None else upsample_with_detail(x, prepared.content) \
                if cfg.optimize.upsample_detail else resize(x, spatial_size(prepared.init))
        scale_targets = _targets_at(scale.edge, targets, extractor, prepared, cfg)
        if scale.index == 0:
            run.setup = time.perf_counter() - run.start
        if scale.tiles:
            x = run.tiled(init, extractor, scale_targets, prepared, scale)
            if scale is not plan[-1]:
                run.save(scale, scale.iterations, x)
            continue
        objective = build_objective(extractor, prepared.content, scale_targets, cfg.loss, masks=prepared.masks,
                                    autocast_dtype=autocast_dtype(cfg.network.precision, device))
        for name, (term, weight) in (extra_terms or {}).items() if scale is plan[-1] else ():
            objective.add(name, term.to(device), weight)
        x = run.scale(init, objective, prepared, scale)
        if scale is not plan[-1]:
            run.save(scale, scale.iterations, x)
    assert x is not None and prepared is not None
    return x, prepared


def _out_of_memory(size: tuple[int, int], device: torch.device, scale: Scale) -> OutOfMemory:
    """One line: the size that did not fit, where, and what to try."""
    h, w = size
    tile = max(MIN_TILE, 1 << (max(h, w) // 2).bit_length() - 1)  # a power of two about half the long edge
    what = "tile" if scale.tiles else "scale"
    return OutOfMemory(f"out of memory optimizing a {w}x{h} px {what} on {device}; try --tile {tile} "
                       "(or a lower --memory-budget), or a smaller --size")


def _targets_at(edge: int, given: Mapping[int, StyleTargets] | None, extractor: VGGFeatures,
                prepared: Prepared, cfg: StylizeConfig) -> StyleTargets | None:
    if not cfg.loss.effective_style_weight:
        return None
    if given is not None and edge in given:
        return given[edge]
    return style_targets(extractor, prepared.styles, cfg.loss)


def check_smallest_scale(hw: tuple[int, int], edge: int, cfg: StylizeConfig) -> None:
    """The coarsest scale (``hw`` at long edge ``edge``) must leave a pixel at the deepest layer."""
    arch = cfg.network.arch or "vgg19"
    need, deepest = min_side(cfg.loss.layers, arch)
    h, w = hw
    if min(h, w) < need:
        which = "first scale" if edge != cfg.optimize.size else "output"
        raise InputError(
            f"image too small: the {which} is {w}x{h} px, but layer {deepest} needs at least {need} px "
            "on the short side; raise size or start_size", fields=("size", "start_size")
        )


@dataclass
class _Run:
    """Progress bookkeeping across scales and tiles, and the two ways of optimizing a scale."""

    cfg: StylizeConfig
    callback: Callback | None
    cancel: CancelToken | None
    start: float
    total: int
    scales: int
    total_work: float
    done: int = 0
    work_done: float = 0.0
    setup: float = 0.0
    state: dict = field(default_factory=dict)
    partial: Callable[[Tensor], Tensor] = lambda x: x
    """The optimizer's current iterate -> the finished image so far (for an interruption)."""
    snapshot: Callable[[Snapshot], None] | None = None
    snapshot_every: float = 5.0
    resume: Snapshot | None = None
    last_snapshot: float = field(default_factory=time.monotonic)
    devices: list[torch.device] = field(default_factory=list)
    """Where a tiled scale's tiles run (the first also runs everything else)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resume_at(self, snap: Snapshot, plan: list[Scale]) -> bool:
        """Start at ``snap``: its scale, after its step (the steps and work before it counted as done).
        False (and a start from the beginning) if it is not a snapshot of this pyramid."""
        if not 0 <= snap.scale < len(plan) or tuple(snap.size) != tuple(plan[snap.scale].size) \
                or not 0 <= snap.step <= plan[snap.scale].iterations \
                or (plan[snap.scale].tiles and snap.step < plan[snap.scale].iterations):
            return False
        self.resume = snap
        done = plan[:snap.scale]
        self.done = sum(s.steps for s in done) + snap.step
        here = plan[snap.scale]
        self.work_done = sum(s.work for s in done) + (here.work if snap.step >= here.iterations
                                                      else snap.step * here.size[0] * here.size[1])
        return True

    def save(self, scale: Scale, step: int, x: Tensor) -> None:
        """Hand a snapshot of ``x`` (scale ``scale`` after ``step`` of its steps) to the caller."""
        if self.snapshot is None:
            return
        self.snapshot(Snapshot(scale=scale.index, step=step, size=scale.size,
                               image=x.detach().float().cpu().clone(),
                               work=min(1.0, self.work_done / self.total_work)))
        self.last_snapshot = time.monotonic()

    def _optimize(self, init: Tensor, objective: Objective, count: int, scale: Scale,
                  render: Callable[[Tensor], Tensor], offset: int = 0, *, first: int | None = None,
                  cancel: CancelToken | None = None) -> Tensor:
        """``count`` steps from ``init``. ``first``: the global step before this run's first (default:
        the steps done so far, which then grow by ``count``; a tile running beside others gives its
        own, and the caller counts them)."""
        size = spatial_size(init)
        scale_start = self.done - offset  # the global step this scale began after
        whole = not scale.tiles  # a tiled scale is snapshotted at its end only
        state = self.state if first is None else {}  # a tile beside others starts a fresh optimizer

        def on_step(step: int, losses: dict[str, float], x: Tensor) -> None:
            with self.lock:
                self._on_step(step, losses, x, size, scale, scale_start, whole, render)

        opt = self.cfg.optimize
        gpu = init.device.type == "cuda"  # there: losses read back every 10 steps, not every step
        try:
            x, state = optimize(init, objective, optimizer=opt.optimizer, iterations=count, lr=opt.lr,
                                callback=on_step, first_step=self.done if first is None else first, resume=state,
                                ema_decay=opt.ema_decay, sync_every=10 if gpu else 1,
                                cancel=self.cancel if cancel is None else cancel,
                                graphs=opt.cuda_graphs and graphs_pay(init))
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not isinstance(exc, torch.OutOfMemoryError) \
                    and "out of memory" not in str(exc).lower():
                raise
            raise _out_of_memory(size, init.device, scale) from None
        if first is None:
            self.state = state
            self.done += count
        return x

    def _on_step(self, step: int, losses: dict[str, float], x: Tensor, size: tuple[int, int], scale: Scale,
                 scale_start: int, whole: bool, render: Callable[[Tensor], Tensor]) -> None:
        self.work_done += size[0] * size[1]
        if whole and self.snapshot is not None and self.snapshot_every > 0 \
                and time.monotonic() - self.last_snapshot >= self.snapshot_every:
            self.save(scale, step - scale_start, x)
        if self.callback is not None:
            self.callback(Progress(step=step, iterations=self.total, losses=losses,
                                   elapsed=time.perf_counter() - self.start, size=size, setup=self.setup,
                                   scale=scale.index, scales=self.scales,
                                   work=min(1.0, self.work_done / self.total_work), _render=lambda: render(x)))

    def scale(self, init: Tensor, objective: Objective, prepared: Prepared, scale: Scale) -> Tensor:
        self.partial = lambda x: finish(x, prepared, self.cfg)
        offset = 0
        if self.resume is not None and self.resume.scale == scale.index:
            offset, self.state = self.resume.step, {}  # a fresh optimizer from the snapshot's image
        return self._optimize(init, objective, scale.iterations - offset, scale, self.partial, offset)

    def tiled(self, init: Tensor, extractor: VGGFeatures, targets: StyleTargets | None, prepared: Prepared,
              scale: Scale) -> Tensor:
        """Optimize tile by tile against the shared style targets, pasting each with a feather."""
        if len(self.devices) > 1 and len(scale.tiles) > 1:
            return self.tiled_on_devices(init, extractor, targets, prepared, scale)
        canvas = Canvas(init, self.cfg.optimize.tile_overlap)
        dtype = autocast_dtype(self.cfg.network.precision, init.device)
        for tile in scale.tiles:
            def crop(t: Tensor, tile: Tile = tile) -> Tensor:
                return t[..., tile.y0:tile.y1, tile.x0:tile.x1]

            masks = [None if m is None else crop(m) for m in prepared.masks]
            objective = build_objective(extractor, crop(prepared.content), targets, self.cfg.loss, masks=masks,
                                        autocast_dtype=dtype)
            self.state = {}  # optimizer state is per tile

            def partial(x: Tensor, tile: Tile = tile) -> Tensor:  # this tile so far, pasted into the rest
                canvas.paste(x.clamp(0, 1), tile)
                return finish(canvas.image(), prepared, self.cfg)

            self.partial = partial
            piece = self._optimize(canvas.crop(tile).clone(), objective, scale.iterations, scale,
                                   lambda x: finish(canvas.image(), prepared, self.cfg))
            canvas.paste(piece.clamp(0, 1), tile)
        self.state = {}  # the last tile's optimizer state means nothing for the next scale
        return canvas.image()

    def tiled_on_devices(self, init: Tensor, extractor: VGGFeatures, targets: StyleTargets | None,
                         prepared: Prepared, scale: Scale) -> Tensor:
        """:meth:`tiled` with the tiles spread over ``devices``: the tiles of one wave
        (:func:`impasto.ops.tiles.waves`) run side by side, one per device, each from the image its
        overlapping predecessors made, as one by one; so the output is the same as on one device."""
        canvas = Canvas(init, self.cfg.optimize.tile_overlap)
        home, dtype = init.device, autocast_dtype(self.cfg.network.precision, init.device)
        # a loss network and the style targets on each device (a copy for each, the same device twice too)
        nets = [extractor] + [copy.deepcopy(extractor).to(d) for d in self.devices[1:]]
        targets_on = [targets] + [None if targets is None else targets.to(d) for d in self.devices[1:]]
        stop, first = CancelToken(), self.done
        self.partial = lambda x: finish(x, prepared, self.cfg)

        cpu_share = max(1, torch.get_num_threads() // max(1, sum(d.type == "cpu" for d in self.devices)))

        def run_tile(index: int, slot: int) -> tuple[int, Tensor]:
            tile, device = scale.tiles[index], self.devices[slot]
            if device.type == "cpu":  # CPU entries share the cores (this thread's setting only)
                torch.set_num_threads(cpu_share)

            def crop(t: Tensor) -> Tensor:
                return t[..., tile.y0:tile.y1, tile.x0:tile.x1].to(device)

            masks = [None if m is None else crop(m) for m in prepared.masks]
            objective = build_objective(nets[slot], crop(prepared.content), targets_on[slot], self.cfg.loss,
                                        masks=masks, autocast_dtype=dtype)
            with self.lock:
                start = crop(canvas.image()).clone()
            piece = self._optimize(start, objective, scale.iterations, scale, lambda x: finish(canvas.image(),
                                   prepared, self.cfg), first=first + index * scale.iterations, cancel=stop)
            return index, piece.to(home)

        n = len(self.devices)
        groups = [wave[k:k + n] for wave in waves(scale.tiles) for k in range(0, len(wave), n)]
        with concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="impasto-tile") as pool:
            try:
                for group in groups:  # at most one tile per device at a time
                    running = {pool.submit(run_tile, index, slot) for slot, index in enumerate(group)}
                    while running:
                        done, running = concurrent.futures.wait(running, timeout=0.1)
                        if self.cancel is not None and self.cancel.cancelled:
                            stop.cancel()
                        for future in done:
                            index, piece = future.result()
                            canvas.paste(piece.clamp(0, 1), scale.tiles[index])
            except Interrupted as interrupted:  # the image so far: the tiles pasted until now
                stop.cancel()
                raise Interrupted(canvas.image(), interrupted.step, cancelled=interrupted.cancelled) from None
            except BaseException:  # Ctrl-C or a failure: stop the other tiles, then raise
                stop.cancel()
                raise
        self.done += len(scale.tiles) * scale.iterations
        self.state = {}
        return canvas.image()
