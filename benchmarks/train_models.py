"""Train the shipped model: ``python benchmarks/train_models.py -o MODEL``.

Runs :func:`impasto.fast.train` (what ``impasto train`` runs) with the settings of the README's
model card, for a wall-clock budget (``--minutes``). Writes the model, its sample image
(``MODEL.sample.png``) and a JSON log of the losses every 50 steps (``MODEL.log.json``; a
``--resume`` keeps the earlier legs' entries up to the step it resumes from).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import EXAMPLES, IMAGENET_SAMPLE_TERMS, SHARED
from impasto.fast import TrainConfig, train

STYLES = ("starry_night", "the_scream", "wave_crop", "udnie", "woman-with-hat-matisse", "shipwreck")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    # ImageNet-sample only: kodak24 holds the README's lighthouse photo, which must stay held out
    p.add_argument("--data", nargs="+", default=[str(SHARED / "training" / "imagenet-sample")])
    p.add_argument("--styles", default=str(SHARED / "images" / "style"))
    p.add_argument("--names", default=",".join(STYLES))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--minutes", type=float, default=75.0)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--style-weight", type=float, default=15.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--content-layers", default="relu3_1", help="comma-separated (benchmarks/fast_trials.py)")
    p.add_argument("--style-layers", default="", help="comma-separated; empty: the style loss's own (relu1_1..relu5_1)")
    p.add_argument("--style-layer-factors", default="",
                   help="comma-separated, one per style layer, times its auto weight (impasto train's flag)")
    p.add_argument("--tv-weight", type=float, default=10.0,
                   help="10, not 1: the fine 2-4 px hatch comes from the loss (benchmarks/results/fast_hatch4.md)")
    p.add_argument("--lattice-weight", type=float, default=0.0,
                   help="weight of the lattice term (impasto train --lattice-weight); 0 = off")
    p.add_argument("--device", default="auto")
    p.add_argument("--init", default=None, help="start from this trained model's weights (impasto train --init)")
    p.add_argument("--teacher", default=None, help="distil this trained model first (impasto train --teacher)")
    p.add_argument("--teacher-steps", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--data-terms", default=IMAGENET_SAMPLE_TERMS,
                   help="the terms the photos are used under, for the model card (default: the ImageNet sample's)")
    args = p.parse_args()
    styles = [str(next(Path(args.styles).glob(f"{n}.*"))) for n in args.names.split(",")]
    config = TrainConfig.from_options(
        size=args.size, width=args.width, blocks=args.blocks, teacher_steps=args.teacher_steps,
        batch_size=args.batch_size, steps=args.steps,
        style_weight=args.style_weight, tv_weight=args.tv_weight, lattice_weight=args.lattice_weight,
        lr=args.lr, workers=args.workers,
        max_minutes=args.minutes, checkpoint_every=200, sample_every=250, device=args.device,
        content_layers=tuple(args.content_layers.split(",")),
        style_layers=tuple(args.style_layers.split(",")) if args.style_layers else None,
        style_layer_factors=tuple(float(f) for f in args.style_layer_factors.split(",")) if args.style_layer_factors
        else None)
    log_path = Path(args.output).with_suffix(".log.json")
    # a resumed run goes on with the log of the legs before it (the checkpoint holds no losses)
    log = json.loads(log_path.read_text())["log"] if args.resume and log_path.exists() else []

    def on_step(event):
        if event.step % 50 == 0:
            del log[next((i for i, e in enumerate(log) if e["step"] >= event.step), len(log)):]
            log.append({"step": event.step, "elapsed": round(event.elapsed, 1), **event.losses})
            print(json.dumps(log[-1]), flush=True)
            if event.step % 200 == 0:  # as often as the checkpoint, so an interrupted leg keeps its log
                log_path.write_text(json.dumps({"training": None, "log": log}))

    model = train(styles, args.data, args.output, config=config, force=True, resume=args.resume,
                  callback=on_step, sample=str(EXAMPLES / "lighthouse.jpg"), init=args.init,
                  teacher=args.teacher, data_terms=args.data_terms)
    log_path.write_text(json.dumps({"training": model.training, "log": log}))
    print(json.dumps(model.training))
    return 0


if __name__ == "__main__":
    sys.exit(main())
