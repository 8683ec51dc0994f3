"""Does activation checkpointing (recomputation) lower the peak memory of a Gatys iteration?

    python benchmarks/recompute.py [--side 1024]

Runs one forward and backward pass of the default objective's features (Gram losses at
relu1_1..relu5_1, content at relu4_2) on a side x side image, twice in fresh processes: once
storing the activations as impasto does, once with the whole VGG trunk under
torch.utils.checkpoint (only the six feature maps the losses need are kept; everything else is
recomputed during the backward pass). Prints seconds per pass and peak resident memory above the
process's baseline, per pixel.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
LAYERS = (*STYLE, "relu4_2")


def child(mode: str, side: int) -> None:
    import torch
    from torch.utils.checkpoint import checkpoint

    from impasto.losses.basic import gram_matrix
    from impasto.nets.vgg import build_extractor
    from impasto.runtime import tune_allocator

    tune_allocator()
    extractor = build_extractor(LAYERS)
    image = torch.rand(1, 3, side, side).requires_grad_(True)

    def features(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = extractor(x, LAYERS)
        return tuple(out[name] for name in LAYERS)

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(3):
        t = time.perf_counter()
        feats = checkpoint(features, image, use_reentrant=False) if mode == "recompute" else features(image)
        loss = sum(gram_matrix(f).square().mean() for f in feats[:-1]) + feats[-1].square().mean()
        loss.backward()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{mode:9s} {side}x{side}: {min(times):.2f} s per forward+backward, peak {(peak - base) / 2**20:.0f} MiB "
          f"above baseline = {(peak - base) / side**2:.0f} bytes per pixel", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--child", choices=("stored", "recompute"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side)
        return 0
    for mode in ("stored", "recompute"):
        subprocess.run([sys.executable, __file__, "--child", mode, "--side", str(args.side)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
