"""``impasto train``: train a feed-forward network for one or more styles."""

from __future__ import annotations

import argparse
import sys
import warnings
from types import SimpleNamespace
from typing import Any

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressBar,
    add_precision,
    integer,
    names,
    number,
    numbers,
    positive_int,
    report_errors,
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..fast.train import TrainConfig
    from ..losses.style import STYLE_LOSSES

    d = SimpleNamespace(**TrainConfig.from_options().flat())
    p = sub.add_parser(
        "train", help="train a fast (feed-forward) style network",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train one network for STYLE (several styles: one network that holds them all, Dumoulin et al.) "
                    "on random crops of the photos under --data. Each style is named after its file stem.",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted (a checkpoint is saved; "
               "rerun with --resume).",
    )
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folder(s) of content photos")
    p.add_argument("--data-terms", default=None, metavar="TEXT",
                   help="the licence or terms the photos are used under, for the model card (which also names "
                        "their folders, count and a hash of their list)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="model file to write")
    p.add_argument("--size", type=positive_int, default=d.size, help="side of the square training crops (32-1024)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="crops per step (1-256)")
    p.add_argument("--steps", type=positive_int, default=d.steps, help="training steps")
    p.add_argument("--max-minutes", type=number, default=d.max_minutes, help="stop after this many minutes")
    p.add_argument("--lr", type=number, default=d.lr, help="Adam learning rate")
    p.add_argument("--width", type=number, default=d.width, help="channel multiplier (1 = Johnson's 32/64/128)")
    p.add_argument("--blocks", type=positive_int, default=d.blocks, help="residual blocks")
    p.add_argument("--style-weight", type=number, default=d.style_weight, help="style weight (as for stylize)")
    p.add_argument("--content-weight", type=number, default=d.content_weight, help="content weight")
    p.add_argument("--tv-weight", type=number, default=d.tv_weight, help="total-variation weight")
    p.add_argument("--lattice-weight", type=number, default=d.lattice_weight,
                   help="weight of the lattice term: a pattern repeating on the network's 4-pixel output grid "
                        "(the fine crosshatch fast networks paint); 0 = off")
    p.add_argument("--style-loss", choices=tuple(n for n, k in STYLE_LOSSES.items() if k.trains),
                   default=d.style_loss, help="style statistics")
    p.add_argument("--content-layers", type=names, default=d.content_layers, metavar="L1,L2",
                   help="content layers (see 'impasto layers')")
    p.add_argument("--style-layers", type=names, default=d.style_layers, metavar="L1,L2",
                   help="style layers; default: the style loss's own (relu1_1..relu5_1)")
    p.add_argument("--style-layer-factors", type=numbers, default=d.style_layer_factors, metavar="F1,F2",
                   help="one factor per style layer times its auto weight (1,1,1,1,3: relu5_1 counts 3x)")
    p.add_argument("--jitter", type=integer, default=d.jitter, metavar="PX",
                   help="crop the output and its photo at a random offset of up to PX before the loss network "
                        "each step, so texture cannot lock onto its pooling lattice (a fine grid); 0 = off")
    p.add_argument("--upsample", choices=("nearest", "bilinear"), default=d.upsample,
                   help="the network's upsampling before each decoder convolution")
    p.add_argument("--downsample", choices=("stride", "blur"), default=d.downsample,
                   help="the network's downsampling: strided convolutions, or the same after a blur (less aliasing)")
    p.add_argument("--pooling", choices=("max", "avg"), default=d.pooling, help="the loss network's pooling")
    p.add_argument("--style-size", type=positive_int, default=d.style_size,
                   help="long edge of the style images (the stroke scale at the output size you will use)")
    p.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every, metavar="N")
    p.add_argument("--sample-every", type=positive_int, default=d.sample_every, metavar="N",
                   help="write OUTPUT.sample.png (the sample photo in every style) every N steps")
    p.add_argument("--sample", default=None, metavar="IMAGE", help="photo for the samples (default: the first one)")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start every weight from this trained model (the same styles, width and blocks) with a "
                        "fresh optimizer: more training for a model whose checkpoint is gone")
    p.add_argument("--teacher", default=None, metavar="MODEL",
                   help="distil: the first --teacher-steps steps match this trained model's output (the same "
                        "styles, any width and blocks), without the loss network; then training goes on as usual")
    p.add_argument("--teacher-steps", type=integer, default=d.teacher_steps, metavar="N",
                   help="steps that match --teacher")
    p.add_argument("--base", default=None, metavar="MODEL",
                   help="add STYLE(s) to this trained model, training only their own parameters")
    p.add_argument("--max-skipped", type=positive_int, default=d.max_skipped, metavar="N",
                   help="a step whose gradient is not finite is skipped (and logged); stop after N in a row")
    p.add_argument("--resume", action="store_true", help="go on from OUTPUT.ckpt")
    p.add_argument("--force", action="store_true", help="overwrite an existing model file")
    p.add_argument("--workers", type=integer, default=d.workers, help="data-loading processes")
    p.add_argument("--seed", type=integer, default=d.seed, help="random seed")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N, mps or auto")
    add_precision(p, d.precision)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..fast.train import TrainConfig, train
    from ..runtime import tune_allocator

    config = TrainConfig.from_options(**{k: getattr(args, k) for k in TrainConfig.from_options().flat()
                                         if hasattr(args, k)})
    bar = ProgressBar(args.quiet)

    tune_allocator()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # said when it happens (a skipped step mid-run), above the progress bar
        warnings.showwarning = lambda message, *_, **__: tqdm.write(f"impasto: warning: {message}", file=sys.stderr)
        try:
            train(args.styles, args.data, args.output, config=config, base=args.base, init=args.init,
                  teacher=args.teacher, resume=args.resume, force=args.force, callback=bar, sample=args.sample,
                  data_terms=args.data_terms)
        finally:
            bar.close()
    if not args.quiet:
        print(f"saved {args.output}", file=sys.stderr)
    return EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def interrupted(stop: Any) -> int:
        print(f"\nimpasto: interrupted at step {stop.step}; checkpoint saved to {args.output}.ckpt "
              "(rerun with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED

    return report_errors(lambda: _run(args), parser, interrupted)
