"""``impasto export``: a trained model as an ONNX file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_OK, report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", help="export a fast model, or the wct method's networks, to ONNX",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write MODEL (a shipped model's name or a model file) as ONNX: input 'image' (1, 3, H, W) "
                    "float32 RGB in [0, 1] with dynamic H and W; for several styles also 'style_weights' "
                    "(number of styles,) float32; output 'stylized' (1, 3, H, W) in [0, 1]. MODEL 'wct' writes "
                    "the universal method's encoder and decoder of each level into the folder -o names "
                    "(with universal.json); its transforms stay in PyTorch or NumPy around them.",
    )
    p.add_argument("model", metavar="MODEL", help="shipped model name or model file, or wct")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx|FOLDER")
    p.add_argument("--decoders", default=None, metavar="FILE", help="with wct: a decoder file (default: shipped)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing .onnx file; with wct, write into a folder that is not empty (its "
                        "files of the export's names are replaced). Without it, nothing is overwritten, as with "
                        "impasto train")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=lambda args: report_errors(lambda: run(args), p))
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..fast.export import export_onnx
    from ..fast.model import load_model

    out = Path(args.output)
    if args.model == "wct":
        return _export_universal(args, out)
    if args.decoders is not None:
        raise InputError("--decoders goes with MODEL wct only")
    if out.suffix.lower() != ".onnx":
        raise InputError(f"the output must be a .onnx file; got {args.output!r}")
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    if Path(args.model).exists() and out.resolve() == Path(args.model).resolve():
        raise InputError("the output is the model file itself; choose another path")
    if out.exists() and not args.force:  # one rule with train and export wct: nothing replaced unasked
        raise InputError(f"{str(out)!r} exists; choose another name, or pass --force to replace it")
    model = load_model(args.model)
    export_onnx(model, out)
    if not args.quiet:
        print(f"saved {out} (styles: {', '.join(model.styles)})", file=sys.stderr)
    return EXIT_OK


def _export_universal(args: argparse.Namespace, out: Path) -> int:
    from ..errors import InputError
    from ..universal.export import export_onnx
    from ..universal.stylize import Universal

    if not args.output.strip():
        raise InputError("-o must name a folder for wct's files; got an empty name")
    if out.suffix.lower() == ".onnx" or (out.exists() and not out.is_dir()):
        raise InputError(f"wct exports several files: -o must be a folder; got {str(out)!r}")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise InputError(f"folder {str(out)!r} is not empty; choose a new folder, or pass --force to write into it")
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    index = export_onnx(Universal(args.decoders, precision="fp32"), out)
    if not args.quiet:
        print(f"saved {out}/ (encoders and decoders per level; {index.name})", file=sys.stderr)
    return EXIT_OK
