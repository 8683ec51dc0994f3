"""``impasto apply``: stylize images with a trained (fast) model, in one pass each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    EXIT_FAILURE,
    EXIT_OK,
    ProgressBar,
    add_bit_depth,
    add_precision,
    numbers,
    positive_int,
    report_errors,
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..io.image import SAVE_FORMATS

    p = sub.add_parser(
        "apply", help="stylize images with a fast model (milliseconds to seconds each)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Repaint INPUT(s) with MODEL, a shipped model's name (see 'impasto models') or a model file. "
                    "One input: -o is the output image. Several inputs: -o is a folder, and each output is named "
                    "after its input.",
        epilog="Exit codes: 0 ok, 1 runtime failure (or some inputs failed), 2 usage error.",
    )
    p.add_argument("model", metavar="MODEL", help="shipped model name or model file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="photo(s)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output image ({', '.join(sorted(SAVE_FORMATS))}) or, for several inputs, a folder")
    p.add_argument("--style", default=None, help="which style of a multi-style model (default: the first)")
    p.add_argument("--style-blend-weights", type=numbers, default=None, metavar="W1,W2,...",
                   help="mix the model's styles: one weight per style, in the order 'impasto models' lists them")
    p.add_argument("--size", type=positive_int, default=None, help="long edge of the output (default: the input's)")
    p.add_argument("--preserve-color", choices=("luminance",), default=None, help="keep the photo's colors")
    p.add_argument("--tile", type=positive_int, default=None, metavar="PX",
                   help="run images larger than PX in overlapping tiles (default: 1024 on CPU, 2048 on GPU)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="run through PyTorch or through onnxruntime (exported on the fly)")
    p.add_argument("--format", default=".png", help="extension of the outputs written to a folder")
    add_bit_depth(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (torch runtime)")
    add_precision(p, where=" (torch runtime)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _outputs(args: argparse.Namespace) -> list[Path]:
    from ..errors import InputError
    from ..io.image import check_output_path, output_format

    if len(args.inputs) == 1 and not Path(args.output).is_dir():
        check_output_path(args.output, args.inputs)
        return [Path(args.output)]
    folder = Path(args.output)
    if not folder.is_dir():
        raise InputError(f"with several inputs, the output must be an existing folder: {args.output!r}")
    ext = args.format if args.format.startswith(".") else "." + args.format
    output_format("x" + ext)
    outs = [folder / (Path(i).stem + ext) for i in args.inputs]
    seen: set[Path] = set()
    for out in outs:
        if out in seen:
            raise InputError(f"two inputs would both be written to {str(out)!r}; rename one")
        seen.add(out)
        check_output_path(out, args.inputs)
    return outs


def _depths(args: argparse.Namespace, outs: list[Path]) -> list[int]:
    """Each output's bit depth (refuses --bit-depth 16 for a JPEG or WebP output before any work)."""
    from ..io.image import output_bit_depth, output_format

    return [output_bit_depth(args.bit_depth, src, output_format(out)) for src, out in zip(args.inputs, outs)]


def _refuse_style_methods(name: str) -> None:
    """``impasto apply wct``: a method that paints with any painting is not a trained model; say which
    command runs it (a file of that name is still a model file)."""
    import os

    from ..errors import InputError
    from ..methods.registry import available

    method = available().get(name)
    if method is not None and method.takes_styles and not os.path.exists(name):
        raise InputError(f"{name!r} is a method that paints with a painting you give it, not a trained model: "
                         f"impasto stylize PHOTO PAINTING -o OUT --method {name}")


def _run(args: argparse.Namespace) -> int:
    import tempfile

    from ..errors import InputError
    from ..fast.model import load_model
    from ..io.image import save_image
    from ..runtime import resolve_device

    outs = _outputs(args)
    depths = _depths(args, outs)
    _refuse_style_methods(args.model)
    model = load_model(args.model, device=resolve_device(args.device), precision=args.precision)
    model.style_vector(args.style, args.style_blend_weights)  # refuse a bad style before any work
    tmp = None
    if args.runtime == "onnx":
        tmp = tempfile.TemporaryDirectory(prefix="impasto-onnx-")
        model.use_onnx(tmp.name)
    bar = ProgressBar(args.quiet or len(args.inputs) == 1)
    failed = 0
    try:
        for done, (src, out, depth) in enumerate(zip(args.inputs, outs, depths), start=1):
            try:
                image = model.stylize(src, style=args.style, style_blend_weights=args.style_blend_weights,
                                      size=args.size, preserve_color=args.preserve_color, tile=args.tile,
                                      output="loaded")
            except InputError as exc:
                if len(args.inputs) == 1:
                    raise
                failed += 1
                print(f"impasto: skipped {src}: {exc}", file=sys.stderr)
                continue
            save_image(image, out, bit_depth=depth)
            bar.update(done / len(outs), f"{done}/{len(outs)} images")
    finally:
        bar.close()
        if tmp is not None:
            tmp.cleanup()
    if not args.quiet:
        print(f"saved {len(outs) - failed} image(s) to {args.output}", file=sys.stderr)
    return EXIT_FAILURE if failed else EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return report_errors(lambda: _run(args), parser)
