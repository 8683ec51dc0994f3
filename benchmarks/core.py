"""Core benchmark: ``python benchmarks/core.py``. Prints figures; asserts nothing.

* start-up: whole processes, timed from spawn, in the same run: ``python -c "import torch"``;
  ``impasto stylize`` of a 64 px image for 1 iteration, to its first iteration *done* (the
  process prints a timestamp from the progress callback) and to its exit; the default 512 px run
  to its first iteration done. The figure that matters is each one *minus* ``import torch``,
  which impasto cannot make faster;
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
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from common import EXAMPLES, cpu_name
from impasto.io.image import load_image
from impasto.losses import STYLE_LOSSES
from impasto.losses.objective import build_objective, style_targets
from impasto.nets.vgg import build_extractor
from impasto.ops.geometry import fit_long_edge, resize
from impasto.optimize.config import StylizeConfig
from impasto.runtime import autocast_dtype, cpu_has_bf16_units, tune_allocator

PROBE = """
import os, sys, time
t0 = float(sys.argv[1])
from impasto.cli import main
import impasto.optimize.pipeline as pipeline
original = pipeline.optimize
def first(*args, **kwargs):
    user = kwargs.get("callback")
    def once(step, losses, x):
        print(f"first {time.time() - t0:.4f}", flush=True)
        kwargs["callback"] = user
        if user: user(step, losses, x)
    kwargs["callback"] = once
    return original(*args, **kwargs)
pipeline.optimize = first
sys.exit(main(sys.argv[2:]))
"""


def _timed(argv: list[str]) -> tuple[float, float | None]:
    """(seconds from spawn to exit, seconds from spawn to the first iteration done or None)."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", PROBE, f"{t0:.6f}", *argv], capture_output=True, text=True, check=True)
    total = time.time() - t0
    first = [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("first ")]
    return total, (first[0] if first else None)


def _import_torch() -> tuple[float, float]:
    """(seconds from spawn to torch imported, to the process's exit); exit includes torch's teardown."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", f"import time, torch; print(time.time() - {t0:.6f})"],
                         capture_output=True, text=True, check=True)
    return float(out.stdout), time.time() - t0


def startup(repeats: int = 5) -> dict[str, float]:
    """Medians over ``repeats`` interleaved runs, in seconds from spawn."""
    work = tempfile.mkdtemp()
    tiny = os.path.join(work, "tiny.png")
    from PIL import Image

    Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((64, 43)).save(tiny)
    style = str(EXAMPLES / "starry_night.jpg")
    tiny_args = ["stylize", tiny, style, "-o", os.path.join(work, "o.png"), "--size", "64", "--iterations", "1",
                 "--scales", "1", "--quiet"]
    photo = os.path.join(work, "photo.jpg")  # a phone-camera-sized JPEG (4352x2448, 12 Mpx)
    Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((4352, 2448), Image.BICUBIC).save(photo, quality=90)
    photo_args = ["stylize", photo, style, "-o", os.path.join(work, "p.png"), "--size", "64", "--iterations", "1",
                  "--scales", "1", "--quiet"]
    full_args = ["stylize", str(EXAMPLES / "lighthouse.jpg"), style, "-o", os.path.join(work, "f.png"), "--quiet",
                 "--initial-iterations", "1", "--iterations", "1"]
    rows: dict[str, list[float]] = {"torch": [], "torch_exit": [], "tiny_first": [], "tiny_exit": [],
                                    "photo_exit": [], "full_first": []}
    for _ in range(repeats):
        imported, exited = _import_torch()
        rows["torch"].append(imported)
        rows["torch_exit"].append(exited)
        total, first = _timed(tiny_args)
        rows["tiny_exit"].append(total)
        rows["tiny_first"].append(first or float("nan"))
        rows["photo_exit"].append(_timed(photo_args)[0])
        rows["full_first"].append(_timed(full_args)[1] or float("nan"))
    return {k: statistics.median(v) for k, v in rows.items()}


def conv_gflops(repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of one large 3x3 convolution (256->256 channels, 128x128, channels-last) in ``dtype``."""
    x = torch.randn(1, 256, 128, 128, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 128 * 128
    F.conv2d(x, w, padding=1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        F.conv2d(x, w, padding=1)
        times.append(time.perf_counter() - t)
    return flops / min(times) / 1e9


def iteration(content: str, style: str, size: int, iterations: int, style_loss: str = "gram",
              count_flops: bool = True, precision: str = "fp32") -> tuple[tuple[int, int], float, float]:
    """(h, w), median seconds per iteration, and convolution GFLOP per iteration at ``size``."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = StylizeConfig.from_options(size=size, style_loss=style_loss, precision=precision)
    c = load_image(content).rgb
    c = resize(c, fit_long_edge(tuple(c.shape[-2:]), size))
    s = load_image(style).rgb
    s = resize(s, fit_long_edge(tuple(s.shape[-2:]), size))
    ex = build_extractor(cfg.loss.layers)
    objective = build_objective(ex, c, style_targets(ex, [[s]], cfg.loss), cfg.loss,
                                autocast_dtype=autocast_dtype(precision, torch.device("cpu")))
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
    parser = argparse.ArgumentParser(prog="python benchmarks/core.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(EXAMPLES / "lighthouse.jpg"))
    parser.add_argument("--style", default=str(EXAMPLES / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations")
    parser.add_argument("--losses", action="store_true", help="only the per-style-loss lines")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up lines")
    parser.add_argument("--loss-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loss_probe:
        import resource

        tune_allocator()
        precision = "bf16" if autocast_dtype("auto", torch.device("cpu")) else "fp32"
        (h, w), sec, _ = iteration(args.content, args.style, args.size, args.iterations, args.loss_probe,
                                   count_flops=False, precision=precision)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"style loss {args.loss_probe:8s} at {w}x{h} ({precision}, what auto picks here): {sec:.3f} s/iter, "
              f"peak memory {peak:.0f} MiB")
        return 0
    if args.losses:
        for name in STYLE_LOSSES:
            subprocess.run([sys.executable, __file__, "--loss-probe", name, "--content", args.content,
                            "--style", args.style, "--size", str(args.size), "--iterations", str(args.iterations)],
                           check=True)
        return 0
    tune_allocator()
    print(f"impasto benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, "
          f"{os.cpu_count()} CPUs, bf16 units: {cpu_has_bf16_units()} (precision auto = "
          f"{'bf16' if autocast_dtype('auto', torch.device('cpu')) else 'fp32'})")
    t = startup()
    print(f"start-up, whole processes from spawn (median of 5): python -c 'import torch': imported "
          f"{t['torch']:.2f} s, exit {t['torch_exit']:.2f} s")
    print(f"  64 px, 1 iteration: first iteration done {t['tiny_first']:.2f} s (+{t['tiny_first'] - t['torch']:.2f} s "
          f"over torch imported), exit {t['tiny_exit']:.2f} s (+{t['tiny_exit'] - t['torch_exit']:.2f} s over "
          "the import-torch process's exit)")
    print(f"  the same from a 4352x2448 JPEG: exit {t['photo_exit']:.2f} s "
          f"(+{t['photo_exit'] - t['torch_exit']:.2f} s)")
    print(f"  512 px defaults: first iteration done {t['full_first']:.2f} s (+{t['full_first'] - t['torch']:.2f} s)")
    if args.startup_only:
        return 0
    seconds = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peak = conv_gflops(dtype=dtype)
        (h, w), sec, gflop = iteration(args.content, args.style, args.size, args.iterations, precision=precision)
        seconds[precision] = sec
        achieved = gflop / sec
        print(f"{precision}: iteration at {w}x{h} (single scale, L-BFGS): {sec:.3f} s/iter, {gflop:.1f} GFLOP of "
              f"convolutions, {achieved:.1f} GFLOP/s vs {peak:.1f} GFLOP/s for one 3x3 256->256 conv at 128x128 "
              f"in {precision} = {100 * achieved / peak:.0f}%", flush=True)
    print(f"bf16 iteration: {seconds['fp32'] / seconds['bf16']:.2f}x faster than fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
