"""Train the shipped models: ``python benchmarks/train_models.py --data DIR --styles DIR -o MODEL``.

Runs :func:`impasto.fast.train` (what ``impasto train`` runs) with the settings of the model card
in the README, sized to a time budget: a short warm-up measures the steps per second, and the
step count is set to fill ``--minutes``. Writes the model, its sample image and a JSON log.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the checkout's src on sys.path)

from impasto.fast import TrainConfig, train

STYLES = ("starry_night", "the_scream", "wave_crop", "udnie", "composition_vii", "mondrian", "shipwreck",
          "woman-with-hat-matisse", "contrast_of_forms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--styles", required=True, help="folder holding the paintings as NAME.jpg")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--style-weight", type=float, default=15.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--sample", default=None)
    p.add_argument("--names", default=",".join(STYLES))
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    styles = [str(next(Path(args.styles).glob(f"{n}.*"))) for n in args.names.split(",")]
    common = dict(width=args.width, batch_size=args.batch_size, style_weight=args.style_weight, lr=args.lr,
                  workers=args.workers, checkpoint_every=500, sample_every=1000)
    warm = Path(args.output).with_suffix(".warmup.pt")
    t0 = time.time()
    train(styles, [args.data], warm, config=TrainConfig(steps=60, **common), force=True, sample=args.sample)
    rate = 50 / (time.time() - t0 - 5)  # rough: the first seconds are start-up
    steps = int(rate * args.minutes * 60) // 100 * 100
    for leftover in (warm, warm.with_name(warm.stem + ".sample.png")):
        leftover.unlink(missing_ok=True)
    print(f"warm-up: about {rate:.1f} steps/s; training {steps} steps", flush=True)
    log = []

    def on_step(event):
        if event.step % 100 == 0:
            log.append({"step": event.step, "elapsed": round(event.elapsed, 1), **event.losses})
            print(json.dumps(log[-1]), flush=True)

    model = train(styles, [args.data], args.output, config=TrainConfig(steps=steps, **common), force=True,
                  resume=args.resume, callback=on_step, sample=args.sample)
    Path(args.output).with_suffix(".log.json").write_text(json.dumps({"training": model.training, "log": log}))
    print(json.dumps(model.training))
    return 0


if __name__ == "__main__":
    sys.exit(main())
