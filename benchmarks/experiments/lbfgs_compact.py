"""The L-BFGS update alone, the two-loop recursion against the compact form.

    python benchmarks/experiments/lbfgs_compact.py [--sizes 256,512,1024] [--device cuda]

Issue 36, item 5. The compact form (Byrd, Nocedal and Schnabel 1994; ``LBFGS(static=True)``) keeps
the pairs as two matrices and their inner products as small ones: four passes over the history and
a fixed number of kernels a step, where the two-loop recursion (``LBFGS()``, the eager default)
makes 4 x history dot products and vector updates. This times one optimizer update (no network)
on a full history of 50 pairs, for images of each ``--sizes``, on ``--device``, median of
``--repeats``; prints the milliseconds and asserts nothing. On a GPU the figure that matters is
the whole iteration with and without graph capture (``benchmarks/gpu.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import cpu_name
from impasto.optimize.optimizers import LBFGS, LBFGS_HISTORY


def time_update(size: int, static: bool, device: torch.device, repeats: int) -> float:
    g = torch.Generator(device="cpu").manual_seed(0)
    n = 3 * size * size
    x = torch.zeros(n, device=device)
    opt = LBFGS(x, static=static)
    scale = torch.rand(n, generator=g).to(device) + 0.5

    def grad_at() -> torch.Tensor:
        return scale * x.detach() - 1.0  # a quadratic's gradient: usable pairs every step

    for _ in range(LBFGS_HISTORY + 2):  # fill the history
        opt.update(grad_at())
    times = []
    for _ in range(repeats):
        grad = grad_at()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.update(grad)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads, history {LBFGS_HISTORY}")
    print("| size | two-loop (ms) | compact (ms) | compact / two-loop |")
    print("|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        ring, compact = (time_update(size, static, device, args.repeats) for static in (False, True))
        print(f"| {size} | {ring:.1f} | {compact:.1f} | {compact / ring:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
