"""Train the shipped decoders of universal style transfer: ``python benchmarks/train_decoders.py -o FILE``.

Runs :func:`impasto.universal.train.train_decoders` on the ImageNet sample (photos only: the
decoders learn to rebuild a photo from its VGG19 features, level by level) with the settings of
the model card, for a wall-clock budget (``--minutes``); ``--resume`` goes on from ``FILE.ckpt``,
``--init FILE`` from a decoder file's weights (the shipped ones) with a fresh optimizer.
Writes the decoders, and a JSON log of the losses every 50 steps (``FILE.log.json``; a resumed
run keeps the earlier legs' entries up to the step it resumes from).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import IMAGENET_SAMPLE_TERMS, SHARED
from impasto.universal.decoder import LEVELS
from impasto.universal.train import DecoderTrainingConfig, train_decoders


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", nargs="+", default=[str(SHARED / "training" / "imagenet-sample")])
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--levels", default=",".join(LEVELS))
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", default=None,
                   help="start from a decoder file's weights with a fresh optimizer (the shipped ones: "
                        "src/impasto/universal/models/decoders.pt), when its checkpoint is gone")
    p.add_argument("--data-terms", default=IMAGENET_SAMPLE_TERMS,
                   help="the terms the photos are used under, for the model card (default: the ImageNet sample's)")
    args = p.parse_args()
    config = DecoderTrainingConfig(levels=tuple(args.levels.split(",")), width=args.width, size=args.size,
                                   batch_size=args.batch_size, steps=args.steps, lr=args.lr, workers=args.workers,
                                   max_minutes=args.minutes, device=args.device, checkpoint_every=200)
    log_path = Path(args.output).with_suffix(".log.json")
    log = json.loads(log_path.read_text())["log"] if args.resume and log_path.exists() else []

    def on_step(event):
        if event.step % 50 == 0:
            del log[next((i for i, e in enumerate(log) if e["step"] >= event.step), len(log)):]
            log.append({"step": event.step, "elapsed": round(event.elapsed, 1),
                        **{k: round(v, 5) for k, v in event.losses.items()}})
            print(json.dumps(log[-1]), flush=True)
            if event.step % 200 == 0:  # as often as the checkpoint
                log_path.write_text(json.dumps({"training": None, "log": log}))

    decoders = train_decoders(args.data, args.output, config=config, resume=args.resume, force=True,
                              callback=on_step, init=args.init, data_terms=args.data_terms)
    log_path.write_text(json.dumps({"training": decoders.training_record, "log": log}))
    print(json.dumps(decoders.training_record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
