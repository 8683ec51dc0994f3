"""Replays a training run's data stream and finds its flat crops (issue 29).

``python benchmarks/experiments/flat_crops.py --batch-size 32 --workers 6 --batches 170`` replays what
the first H200 run fed the network (seed 0, 6 loader workers, batch 32, 256 px crops of the ImageNet
sample) and prints every crop whose colour does not vary (standard deviation under 1/255 in every
channel), with its batch; ``--batch-size 4 --workers 1 --batches 5000`` does the same for the first
leg of the shipped model's CPU training. Reads the photos only: no network runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py

from common import SHARED
from impasto.io.photos import Photos, endless


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(SHARED / "training" / "imagenet-sample"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--batches", type=int, default=170)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    photos = Photos([args.data], args.size)
    stream = endless(photos, args.batch_size, args.workers, args.seed)
    found = 0
    for step in range(1, args.batches + 1):
        batch = next(stream)
        spread = batch.flatten(2).std(2).amax(1)  # (N,): the largest channel's standard deviation
        for i in (spread < 1 / 255).nonzero().flatten().tolist():
            found += 1
            print(f"batch {step} (step {step}): crop {i} is flat (std {float(spread[i]):.5f}, "
                  f"colour {[round(float(v), 3) for v in batch[i].flatten(1).mean(1)]})", flush=True)
    print(f"{found} flat crops in {args.batches} batches of {args.batch_size} "
          f"({args.batches * args.batch_size} crops)")


if __name__ == "__main__":
    main()
