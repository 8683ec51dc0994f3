"""Would caching the frozen encoder's features of the training crops halve a training step? Issue 36, item 4.

Times, on this machine, one training step of the wct decoders (128 px, 8 crops, every level) and
of the fast model (256 px, 4 crops, the shipped model's shape and content layer), and within it
the one part a feature cache could save: the frozen VGG19's pass over the photo crops (the
decoders' input features and targets; the fast model's content targets). The rest (the network,
the loss network's pass over the *output* with its backward, Adam) depends on the weights and
cannot be cached. Prints each step's seconds and that part's share; asserts nothing.

    python benchmarks/experiments/feature_cache.py [--steps 3]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import SHARED, cpu_name
from impasto.fast import TrainConfig
from impasto.gallery import painting
from impasto.universal.train import DecoderTrainingConfig
from impasto.universal.train import _setup as decoder_setup

fast_training = importlib.import_module("impasto.fast.train")
STYLES = ("starry_night", "the_scream", "wave_crop", "udnie", "woman-with-hat-matisse", "shipwreck")


def timed(cached_part, whole_step, steps: int) -> list[tuple[float, float]]:
    out = []
    for i in range(steps + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        with torch.no_grad():
            cached_part()
        t1 = time.perf_counter()
        whole_step()
        t2 = time.perf_counter()
        if i:
            out.append((t1 - t0, t2 - t1))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--data", default=str(SHARED / "training" / "imagenet-sample"))
    args = p.parse_args()
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp())
    cfg = DecoderTrainingConfig(size=128, batch_size=8, steps=10, workers=0)
    run = decoder_setup([args.data], tmp / "d.pt", cfg, False, True)
    batch = run.next_batch()

    def decoder_step() -> None:
        run.forward_backward(batch)
        run.optimizer.step()

    rows = [("decoders, 128 px x 8 crops, five levels", timed(lambda: run.encoder(batch, cfg.levels), decoder_step,
                                                               args.steps))]
    fcfg = TrainConfig.from_options(size=256, batch_size=4, width=0.25, blocks=9, content_layers=("relu3_1",),
                                    workers=0)
    frun = fast_training._setup([painting(n) for n in STYLES], [args.data], tmp / "m.pt", fcfg, None, False, True,
                                None)
    fbatch = frun.next_batch()

    def fast_step() -> None:
        frun.forward_backward(fbatch)
        frun.state.optimizer.step()

    rows.append(("fast model, 256 px x 4 crops, 6 styles", timed(
        lambda: frun.objective.features(fbatch[0], frun.objective.content_layers), fast_step, args.steps)))
    print("| step | whole step (s) | the crops' encoder pass (s) | share a cache could save |")
    print("|---|---:|---:|---:|")
    for name, times in rows:
        part = sorted(t[0] for t in times)[len(times) // 2]
        whole = sorted(t[1] for t in times)[len(times) // 2]
        print(f"| {name} | {whole:.2f} | {part:.2f} | {part / whole:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
