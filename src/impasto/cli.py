"""Command-line interface: argv -> config -> library -> exit code.

Exit codes: 0 success; 1 runtime failure (divergence, out of memory, write error); 2 usage error
(bad option, bad or missing input file, bad output path); 130 interrupted by Ctrl-C (the image so
far is saved to the output path).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

ALPHA_HELP = (
    "Transparency: images with alpha are composited onto white before stylizing; the content's "
    "alpha is re-attached to the output for PNG, WebP and TIFF (JPEG output stays flattened)."
)
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from .config import DEVICE_CHOICES, INIT_CHOICES, OPTIMIZERS, StylizeConfig
    from .features import POOLING_CHOICES, WEIGHT_CHOICES
    from .image import SAVE_FORMATS
    from .losses import STYLE_LOSSES

    d = StylizeConfig()
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="impasto", description="Neural style transfer (Gatys et al., 2016).")
    parser.add_argument("--version", action="version", version=f"impasto {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "stylize", help="repaint a photo in the style of one or more paintings", formatter_class=fmt,
        description="Repaint CONTENT in the style of STYLE (several styles are blended). " + ALPHA_HELP,
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted (partial result saved).",
    )
    p.add_argument("content", metavar="CONTENT", help="content photo")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output image; format from the extension ({', '.join(sorted(SAVE_FORMATS))})")

    g = p.add_argument_group("size and length")
    g.add_argument("--size", type=_positive_int, default=d.size, help="long edge of the output in pixels")
    g.add_argument("--iterations", type=_positive_int, default=d.iterations,
                   help="iterations at each scale after the first (at the only scale if --scales 1)")
    g.add_argument("--initial-iterations", type=_positive_int, default=d.initial_iterations,
                   help="iterations at the first, coarsest scale")
    g.add_argument("--scales", type=_positive_int, default=d.scales,
                   help="coarse-to-fine scales; default: as many as fit from --start-size; 1 = single scale")
    g.add_argument("--start-size", type=_positive_int, default=d.start_size,
                   help="long edge of the first scale; default: min(128, --size)")
    g.add_argument("--scale-ratio", type=_float, default=d.scale_ratio,
                   help="ratio between consecutive scales (> 1, e.g. 2 or 1.414)")
    g.add_argument("--style-scale", type=_float, default=d.style_scale,
                   help="style image long edge relative to the output's")

    g = p.add_argument_group("loss weights (loss = a*content + b*style + c*tv)")
    g.add_argument("--content-weight", type=_float, default=d.content_weight,
                   help="a: content loss weight (relative error of content activations)")
    g.add_argument("--style-weight", type=_float, default=d.style_weight,
                   help="b: style loss weight (mean relative error of Gram matrices); higher = more style")
    g.add_argument("--strength", type=_float, default=d.strength,
                   help="single style knob from 0 (the photo) to 1 (style only); sets --style-weight to "
                        "1000**strength, so equal steps look like equal changes (default weight 15 = 0.39)")
    g.add_argument("--tv-weight", type=_float, default=d.tv_weight, help="c: total-variation (smoothness) weight")
    g.add_argument("--content-layers", type=_names, default=d.content_layers, metavar="L1,L2",
                   help="content layers (comma-separated)")
    g.add_argument("--style-layers", type=_names, default=d.style_layers, metavar="L1,L2",
                   help="style layers (comma-separated; see 'impasto layers'); default: relu1_1..relu5_1 "
                        "for gram and meancov, relu3_1,relu4_1 for mrf")
    g.add_argument("--style-layer-weights", type=_floats, default=d.style_layer_weights, metavar="W1,W2",
                   help="one weight per style layer; default: auto (each layer relative to its target)")
    g.add_argument("--style-blend-weights", type=_floats, default=d.style_blend_weights, metavar="W1,W2",
                   help="one weight per style image; default: equal")
    g.add_argument("--normalization", choices=("chw", "paper"), default=d.normalization,
                   help="Gram normalization: C*H*W with mean squared error, or the paper's 1/(4N^2M^2)")

    g = p.add_argument_group("style loss and spatial control")
    g.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=d.style_loss,
                   help="gram: Gram matrices (Gatys); meancov: mean and covariance (Wasserstein-2); "
                        "mrf: nearest 3x3 neural patches (Li & Wand), keeps local structure")
    g.add_argument("--mrf-stride", type=_positive_int, default=d.mrf_stride,
                   help="mrf: sample style patches every N positions (1 = all; slower)")
    g.add_argument("--style-rotations", type=_floats, default=d.style_rotations, metavar="DEG,DEG",
                   help="also use copies of the style rotated by these angles (e.g. -15,15)")
    g.add_argument("--style-scales", type=_floats, default=d.style_scales, metavar="F,F",
                   help="also use copies of the style scaled by these factors (e.g. 0.8,1.25)")
    g.add_argument("--style-mask", dest="style_masks", nargs="+", default=d.style_masks, metavar="MASK",
                   help="one greyscale mask per style: where each style applies (white); soft and "
                        "overlapping masks blend")
    g.add_argument("--keep-mask", default=d.keep_mask, metavar="MASK",
                   help="greyscale mask of the region to keep unstylized (white = keep)")

    g = p.add_argument_group("optimization")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    g.add_argument("--learning-rate", type=_float, default=d.learning_rate,
                   help="step size; default: lbfgs 1.0, adam 0.02, gd 0.01")
    g.add_argument("--ema", dest="ema_decay", type=_float, default=d.ema_decay, metavar="DECAY",
                   help="output an exponential moving average of the iterates (e.g. 0.9) for a cleaner image")
    g.add_argument("--init", default=d.init, help=f"start image: {' or '.join(INIT_CHOICES)} or an image path")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed (bitwise-reproducible CPU runs)")

    g = p.add_argument_group("color and network")
    g.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d.preserve_color,
                   help="keep the content's colors: luminance-only transfer, or match style colors first")
    g.add_argument("--pooling", choices=POOLING_CHOICES, default=d.pooling, help="VGG pooling")
    g.add_argument("--weights", default=d.weights,
                   help=f"network weights: {', '.join(WEIGHT_CHOICES)} or a torchvision VGG16/19 .pth file")
    g.add_argument("--device", default=d.device, help=f"{', '.join(DEVICE_CHOICES)} or cuda:N")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d.precision,
                   help="auto: bfloat16 mixed precision on CUDA GPUs (Grams stay float32), float32 elsewhere")

    g = p.add_argument_group("print size")
    g.add_argument("--tile", type=int, default=d.tile, metavar="PX",
                   help="optimize scales larger than PX in overlapping tiles of at most PX a side; default: automatic, "
                        "only when a scale would not fit in --memory-budget; 0 = never")
    g.add_argument("--tile-overlap", type=int, default=d.tile_overlap, metavar="PX",
                   help="overlap between tiles, feathered when pasting")
    g.add_argument("--memory-budget", type=_float, default=d.memory_budget, metavar="GIB",
                   help="memory a scale may use before it is tiled; default: 80%% of what is available")

    g = p.add_argument_group("output")
    g.add_argument("--save-every", type=_positive_int, default=None, metavar="N",
                   help="also save the image every N iterations as OUTPUT_STEM.NNNN.EXT")
    g.add_argument("--log", default=None, metavar="FILE.jsonl",
                   help="write one JSON line per iteration (step, elapsed, losses)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("layers", help="list the layer names of the network", formatter_class=fmt)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


CONFIG_ARGS = (
    "size", "iterations", "initial_iterations", "scales", "start_size", "scale_ratio", "style_scale", "content_weight", "style_weight", "tv_weight", "content_layers",
    "style_layers", "style_layer_weights", "style_blend_weights", "normalization", "optimizer",
    "learning_rate", "init", "seed", "preserve_color", "pooling", "weights", "device",
    "precision", "tile", "tile_overlap", "memory_budget", "ema_decay", "strength", "style_loss", "mrf_stride", "style_rotations", "style_scales", "style_masks", "keep_mask",
)


def _intermediate_path(output: str, step: int) -> str:
    path = Path(output)
    return str(path.with_name(f"{path.stem}.{step:04d}{path.suffix}"))


class _Reporter:
    """Turns progress events into a progress bar, a JSONL log and intermediate images."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bar: Any = None
        self.log: Any = None

    def __call__(self, event: Any) -> None:
        from .image import save_image

        if self.bar is None and not self.args.quiet:  # created on the first event, after loading
            from tqdm import tqdm

            # progress in % of the estimated work, so that the ETA accounts for the larger scales
            self.bar = tqdm(total=100.0, dynamic_ncols=True, file=sys.stderr,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")
        if self.log is None and self.args.log:
            self.log = open(self.args.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        losses = event.losses
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"step {event.step}/{event.iterations}, scale {event.scale + 1}/{event.scales}, "
                f"content {losses['content']:.3g}, style {losses['style']:.3g}", refresh=False
            )
            self.bar.update(round(100.0 * event.work - self.bar.n, 4))
        if self.log is not None:
            record = {"step": event.step, "elapsed": round(event.elapsed, 4), **losses}
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        every = self.args.save_every
        if every and event.step % every == 0 and event.step < event.iterations:
            save_image(event.image(), _intermediate_path(self.args.output, event.step))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()


def _stylize(args: argparse.Namespace) -> int:
    from .config import StylizeConfig
    from .image import check_output_path, save_image
    from .runtime import tune_allocator
    from .api import stylize

    config = StylizeConfig(**{name: getattr(args, name) for name in CONFIG_ARGS})
    inputs = [args.content, *args.styles] + ([config.init] if config.init not in ("content", "noise") else [])
    inputs += list(config.style_masks or []) + ([config.keep_mask] if config.keep_mask else [])
    check_output_path(args.output, inputs)
    if args.log:
        log_dir = os.path.dirname(os.path.abspath(args.log))
        if not os.path.isdir(log_dir):
            from .errors import InputError

            raise InputError(f"log folder does not exist: {log_dir!r}")
        if any(os.path.realpath(args.log) == os.path.realpath(p) for p in inputs + [args.output]):
            from .errors import InputError

            raise InputError(f"log file {args.log!r} would overwrite an input or the output")
    tune_allocator()
    reporter = _Reporter(args)
    try:
        image = stylize(args.content, args.styles, config=config, callback=reporter)
    finally:
        reporter.close()
    save_image(image, args.output)
    if not args.quiet:
        print(f"saved {args.output}", file=sys.stderr)
    return EXIT_OK


def _layers(_: argparse.Namespace) -> int:
    from .features import ARCHS, layer_names

    for arch in ARCHS:
        print(f"{arch}: {' '.join(layer_names(arch))}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (never calls sys.exit itself)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    from .errors import ImpastoError, InputError, StylizeInterrupted

    try:
        return _stylize(args) if args.command == "stylize" else _layers(args)
    except StylizeInterrupted as stop:
        from .image import save_image

        save_image(stop.image, args.output)
        print(f"\nimpasto: interrupted at step {stop.step}; saved the image so far to {args.output}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before the first iteration: nothing to save
        print("\nimpasto: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # writing the output failed (disk full, permissions)
        print(f"impasto: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"impasto: error: {first}", file=sys.stderr)
        return EXIT_FAILURE


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
