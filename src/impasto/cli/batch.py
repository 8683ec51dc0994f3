"""``impasto batch``: a folder of photos -> a folder of paintings; resumable; processes or Ray."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressBar,
    add_bit_depth,
    add_method_options,
    method_options,
    positive_int,
    report_errors,
)
from .stylize import add_config_arguments, config_from_args


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "batch", help="stylize every image in a folder (resumable; several processes or a Ray cluster)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Repaint every image under INPUT_DIR (sub-folders too) into OUTPUT_DIR, keeping the folder "
                    "layout. Videos there (.mp4, .mov, .mkv, .webm, .avi) are stylized with the video method "
                    "(temporal consistency, sound kept; needs impasto[video]). Outputs are written atomically "
                    "and existing ones are skipped, so after an interruption the same command resumes where it "
                    "stopped. A bad image is reported and skipped. With --model, STYLE is not given: the "
                    "model's --style is used.",
        epilog="Exit codes: 0 all done, 1 some images failed (listed), 2 usage error, 130 interrupted "
               "(finished outputs are kept; rerun to resume).",
    )
    p.add_argument("input_dir", metavar="INPUT_DIR", help="folder of photos")
    p.add_argument("styles", metavar="STYLE", nargs="*", help="style image(s) (the optimize method)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT_DIR", help="folder for the results")
    p.add_argument("--format", default=".png", help="extension of the outputs (.png, .jpg, .webp, .tif)")
    add_bit_depth(p)
    g = p.add_argument_group("where it runs")
    g.add_argument("--workers", type=positive_int, default=1,
                   help="processes on this machine (each gets its share of the CPU threads)")
    g.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the images as Ray tasks on the cluster at ADDRESS (e.g. ray://head:10001 or auto), "
                        "one GPU each where there are GPUs; 'local' starts Ray on this machine")
    g = p.add_argument_group("another method (instead of optimization)")
    g.add_argument("--model", default=None, help="shipped model name or model file (see 'impasto models')")
    g.add_argument("--method", default=None,
                   help="any registered method by name (wct, a plug-in's; see 'impasto methods'); --model is the "
                        "same for fast models")
    g.add_argument("--style", default=None, help="which style of the model (default: its first)")
    add_method_options(g)
    add_config_arguments(p)  # --size, --style-blend-weights and --preserve-color also apply to --model
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def recipe_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The recipe the flags describe; only options that differ from the defaults are recorded."""
    from ..errors import InputError
    from ..jobs.recipe import OPTIMIZE, Recipe
    from ..methods import get_method
    from ..optimize.config import StylizeConfig

    if args.method and args.model and args.method != args.model:
        raise InputError("give --method or --model, not both")
    method = get_method(args.method or args.model or OPTIMIZE)
    if method.name != OPTIMIZE:  # asked of the method: the flags it takes, --set for the rest
        return _other_method(args, parser, method)
    if args.method_options:
        raise InputError("--set is for a --method other than optimize (every optimize option has a flag)")
    defaults = StylizeConfig().flat()
    given = {k: v for k, v in config_from_args(args).flat().items()
             if v != defaults[k] and k not in ("strength", "style_weight")}
    if args.strength is not None:
        given["strength"] = args.strength
    elif args.style_weight is not None:
        given["style_weight"] = args.style_weight
    if args.style is not None:
        raise InputError(f"--style picks one of a method's own styles; the {method.name} method takes STYLE images")
    return Recipe(method.name, given, args.bit_depth)


BATCH_FLAGS = frozenset({"input_dir", "styles", "output", "format", "bit_depth", "workers", "ray", "model", "method",
                         "style", "quiet"})


def _other_method(args: argparse.Namespace, parser: argparse.ArgumentParser, method: Any) -> Any:
    from ..errors import InputError
    from ..jobs.recipe import Recipe

    options = method_options(args, parser, method, BATCH_FLAGS)
    if args.style is not None:
        if method.takes_styles:
            raise InputError(f"--style picks one of a method's own styles; the {method.name} method takes STYLE "
                             "images")
        options["style"] = args.style
    return Recipe(method.name, options, args.bit_depth)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..jobs.batch import run_batch

    recipe = recipe_from_args(args, parser)
    bar = ProgressBar(args.quiet)

    def progress(report: Any, task: Any) -> None:
        if args.quiet:
            return
        todo = report.total - report.skipped
        if task is None:
            if report.skipped:
                bar.write(f"{report.skipped} of {report.total} already done; resuming")
            return
        finished = report.done + len(report.failed)
        bar.update(finished / max(todo, 1), f"{finished}/{todo} images")
        if report.failed and report.failed[-1][0] == task.source:
            bar.write(f"impasto: skipped {task.source}: {report.failed[-1][1]}")

    try:
        report = run_batch(args.input_dir, args.styles, args.output, recipe, fmt=args.format,
                           workers=args.workers, ray=args.ray, progress=progress)
    except KeyboardInterrupt:
        print("\nimpasto: interrupted; finished images are kept, rerun the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    failed = len(report.failed)
    if not args.quiet or failed:
        print(f"{report.done} done, {report.skipped} already there, {failed} failed, in {args.output}",
              file=sys.stderr)
    if failed and args.quiet:
        for path, error in report.failed:
            print(f"impasto: skipped {path}: {error}", file=sys.stderr)
    return EXIT_FAILURE if failed else EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return report_errors(lambda: _run(args, parser), parser)
