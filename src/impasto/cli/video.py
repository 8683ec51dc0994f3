"""``impasto video``: a video (or a folder of numbered frames), temporally consistent."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressBar,
    add_method_options,
    integer,
    method_options,
    names,
    number,
    report_errors,
)

# the command's own flags and the video's settings (VideoConfig), not a method's options
VIDEO_FLAGS = frozenset({"input", "styles", "output", "temporal_weight", "frame_iterations", "long_term",
                         "flow_preset", "start", "duration", "crf", "model", "method", "style", "blend", "quiet",
                         "style_masks", "keep_mask"})


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..video.pipeline import VideoConfig
    from .stylize import add_config_arguments

    d = VideoConfig()
    p = sub.add_parser(
        "video", help="stylize a video without flicker, keeping its sound",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Stylize INPUT (a video file FFmpeg reads, or a folder of numbered frames) into OUTPUT (mp4, "
                    "mov, mkv, webm, gif, or a folder for PNG frames), frame by frame with optical-flow temporal "
                    "consistency (Ruder et al. 2016). The sound is copied. Frames are kept beside the output "
                    "while they are made, so an interrupted run resumes when run again with the same arguments.",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted (rerun to resume).",
    )
    p.add_argument("input", metavar="INPUT", help="video file or folder of numbered frames")
    p.add_argument("styles", metavar="STYLE", nargs="*", help="style image(s) (for a method that takes them)")
    p.add_argument("-o", "--output", required=True, help="output video (mp4, mov, mkv, webm, gif) or folder")
    g = p.add_argument_group("video")
    g.add_argument("--temporal-weight", type=number, default=d.temporal_weight,
                   help="weight of the temporal loss (higher = steadier, less free per frame)")
    g.add_argument("--frame-iterations", type=integer, default=d.frame_iterations,
                   help="iterations for each frame after the first")
    g.add_argument("--long-term", type=lambda t: tuple(int(v) for v in names(t)), default=d.long_term,
                   metavar="J1,J2", help="earlier frames to stay consistent with, e.g. 1,2,4")
    g.add_argument("--flow-preset", choices=("ultrafast", "fast", "medium"), default=d.flow_preset,
                   help="DIS optical flow preset")
    g.add_argument("--start", type=number, default=d.start, metavar="SECONDS", help="where to begin")
    g.add_argument("--duration", type=number, default=d.duration, metavar="SECONDS",
                   help="how much to stylize (try a short part first)")
    g.add_argument("--crf", type=integer, default=d.crf, help="encoder quality, 0 (lossless) to 51")
    g.add_argument("--method", default=None,
                   help="any registered method (wct, a fast model, a plug-in's; see 'impasto methods'); default "
                        "optimize")
    add_method_options(g)
    g.add_argument("--model", default=None, help="a fast model's name or file instead of optimization")
    g.add_argument("--style", default=None, help="with --model: which of its styles")
    g.add_argument("--blend", type=number, default=d.blend,
                   help="with a one-pass method (--model, wct): how much of the warped previous frame to keep "
                        "where the flow is reliable")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(p)
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..errors import InputError
    from ..methods import get_method
    from ..runtime import tune_allocator
    from ..video.pipeline import VideoConfig, stylize_video
    from .stylize import config_from_args

    if args.method and args.model and args.method != args.model:
        raise InputError("give --method or --model, not both")
    method = get_method(args.method or args.model or "optimize")
    if method.takes_styles and not args.styles:
        raise InputError(f"the {method.name} method needs STYLE image(s)")
    video = VideoConfig(**{k: getattr(args, k) for k in VideoConfig.__dataclass_fields__})
    if method.name == "optimize":
        if args.method_options:
            raise InputError("--set is for a --method other than optimize (every optimize option has a flag)")
        config, options = config_from_args(args), {}
    else:  # its options asked of the method: the flags it takes, --set for the rest
        config, options = None, method_options(args, parser, method, VIDEO_FLAGS)
    bar = ProgressBar(args.quiet)

    notes: list[str] = []
    tune_allocator()
    try:
        stylize_video(args.input, args.styles, args.output, method=method, config=config, video=video,
                      style=args.style, callback=bar, notes=notes, style_masks=args.style_masks,
                      keep_mask=args.keep_mask, **options)
    finally:
        bar.close()
        for note in notes:
            print(f"impasto: {note}", file=sys.stderr)
    if not args.quiet:
        print(f"saved {args.output}", file=sys.stderr)
    return EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def interrupted(stop: Any) -> int:
        print("\nimpasto: interrupted; the frames made so far are kept, run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED

    return report_errors(lambda: _run(args, parser), parser, interrupted)
