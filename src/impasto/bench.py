"""Benchmarks: ``python -m impasto.bench``. Prints figures; asserts nothing.

* start-up: process start (just before the interpreter is spawned) to the first iteration, i.e.
  imports, weight decoding, image loading and target computation, for the default CLI settings;
* seconds per iteration at a given size (single scale, L-BFGS, default layers);
* seconds per iteration and peak memory for each style loss (``--losses``), each in a fresh
  process so that its peak resident memory is its own;
* the convolution GFLOP/s achieved per iteration (forward and backward convolution FLOPs counted
  by torch's FlopCounterMode) against the GFLOP/s of one large 3x3 convolution timed in the same
  run, i.e. how close an iteration gets to the machine's convolution speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import StylizeConfig
from .features import build_extractor
from .image import fit_long_edge, load_image, resize
from .losses import STYLE_LOSSES
from .objective import build_objective
from .runtime import tune_allocator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def measure_process(cmd: list[str]) -> tuple[float, float, list[tuple[float, str]]]:
    """Run ``cmd``: (wall seconds, its own peak resident MiB from wait4, [(seconds, stdout line)]).

    Lines are timestamped as they arrive (the child runs with PYTHONUNBUFFERED=1).
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.time() - t0, line.rstrip("\n")))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed with exit code {code}")
    return wall, usage.ru_maxrss / 1024, lines


def _probe(content: str, style: str) -> None:
    """Child process of the start-up benchmark: report wall-clock times of the first iteration."""
    import impasto

    tune_allocator()
    called = time.time()

    def first(event: impasto.Progress) -> None:
        print(f"{called + event.setup:.6f} {called + event.elapsed:.6f}", flush=True)
        os._exit(0)

    impasto.stylize(content, style, callback=first)


def startup(content: str, style: str, repeats: int = 3) -> tuple[float, float]:
    """Median seconds from spawning a fresh interpreter to the first iteration's start and end."""
    starts, ends = [], []
    for _ in range(repeats):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-m", "impasto.bench", "--probe", content, style],
                             capture_output=True, text=True, check=True).stdout.split()
        starts.append(float(out[0]) - t0)
        ends.append(float(out[1]) - t0)
    return statistics.median(starts), statistics.median(ends)


def conv_gflops(repeats: int = 5) -> float:
    """GFLOP/s of one large 3x3 convolution (256->256 channels, 128x128, channels-last)."""
    x = torch.randn(1, 256, 128, 128).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 128 * 128
    F.conv2d(x, w, padding=1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        F.conv2d(x, w, padding=1)
        times.append(time.perf_counter() - t)
    return flops / min(times) / 1e9


def iteration(content: str, style: str, size: int, iterations: int, style_loss: str = "gram",
              count_flops: bool = True) -> tuple[tuple[int, int], float, float]:
    """(h, w), median seconds per iteration, and convolution GFLOP per iteration at ``size``."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = StylizeConfig(size=size, style_loss=style_loss)
    c = load_image(content).rgb
    c = resize(c, fit_long_edge(tuple(c.shape[-2:]), size))
    s = load_image(style).rgb
    s = resize(s, fit_long_edge(tuple(s.shape[-2:]), size))
    ex = build_extractor(cfg.layers)
    objective = build_objective(ex, c, [[s]], cfg)
    x = c.clone().requires_grad_(True)

    def step() -> None:
        x.grad = None
        total, _ = objective(x)
        total.backward()

    conv = 0
    if count_flops:
        counter = FlopCounterMode(display=False)
        with counter:
            step()
        conv = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "convolution" in str(op))
    step()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return (x.shape[-2], x.shape[-1]), statistics.median(times), conv / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impasto.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(EXAMPLES / "lighthouse.jpg"))
    parser.add_argument("--style", default=str(EXAMPLES / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations")
    parser.add_argument("--losses", action="store_true", help="only the per-style-loss lines")
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--loss-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        _probe(*args.probe)
        return 0
    if args.loss_probe:
        import resource

        tune_allocator()
        (h, w), sec, _ = iteration(args.content, args.style, args.size, args.iterations, args.loss_probe,
                                   count_flops=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"style loss {args.loss_probe:8s} at {w}x{h}: {sec:.3f} s/iter, peak memory {peak:.0f} MiB")
        return 0
    if args.losses:
        for name in STYLE_LOSSES:
            subprocess.run([sys.executable, "-m", "impasto.bench", "--loss-probe", name, "--content", args.content,
                            "--style", args.style, "--size", str(args.size), "--iterations", str(args.iterations)],
                           check=True)
        return 0
    tune_allocator()
    print(f"impasto benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    ready, first_done = startup(args.content, args.style)
    print(f"start-up to first iteration: {ready:.2f} s (first iteration done at {first_done:.2f} s; "
          "default settings, first scale)")
    peak = conv_gflops()
    (h, w), sec, gflop = iteration(args.content, args.style, args.size, args.iterations)
    achieved = gflop / sec
    print(f"iteration at {w}x{h} (single scale, L-BFGS): {sec:.3f} s/iter, {gflop:.1f} GFLOP of convolutions")
    print(f"convolution throughput: {achieved:.1f} GFLOP/s per iteration vs {peak:.1f} GFLOP/s for one "
          f"3x3 256->256 conv at 128x128 = {100 * achieved / peak:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
