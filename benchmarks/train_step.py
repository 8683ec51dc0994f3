"""Seconds per training step of a fast model: ``python benchmarks/train_step.py``. Prints; asserts nothing.

One step of :func:`impasto.fast.train` (the transformer's forward, the VGG loss of every crop,
backward, Adam), on random crops held in memory, in float32 and in bfloat16 autocast, with the
default layout training uses and, with ``--layouts``, channels-last too (which gave no gain in
bfloat16 on a 2-core AMX Xeon, so training keeps the default). Median of ``--steps`` steps after two warm-ups.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from common import EXAMPLES
from impasto.fast.train import TrainConfig, _forward_backward, _State, build_objective
from impasto.io.image import load_image
from impasto.nets.transformer import TransformerNet
from impasto.nets.vgg import build_extractor
from impasto.ops.geometry import fit_long_edge, resize
from impasto.runtime import autocast_dtype, cpu_has_bf16_units, tune_allocator
from impasto.training import Task, step


class OneBatch(Task):
    """The fast model's step as the training loop takes it, on one fixed batch."""

    def __init__(self, state: _State, objective, which: torch.Tensor) -> None:
        self.state, self.objective, self.which = state, objective, which
        self.net, self.optimizer = state.net, state.optimizer

    def forward_backward(self, batch):
        return _forward_backward(self.state, self.objective, batch, self.which, 0)


def seconds_per_step(cfg: TrainConfig, precision: str, layout: torch.memory_format, steps: int,
                     n_styles: int) -> float:
    torch.manual_seed(0)
    device = torch.device("cpu")
    dtype = autocast_dtype(precision, device)
    loss = cfg.loss
    extractor = build_extractor(loss.layers)
    style = load_image(EXAMPLES / "starry_night.jpg").rgb
    style = resize(style, fit_long_edge(tuple(style.shape[-2:]), cfg.training.style_size))
    objective = build_objective(extractor, [style] * n_styles, loss, dtype)
    tc = cfg.training
    net = TransformerNet(n_styles, width=tc.width, blocks=tc.blocks).to(memory_format=layout)
    state = _State(net, torch.optim.Adam(net.parameters(), lr=tc.lr))
    batch = torch.rand(tc.batch_size, 3, tc.size, tc.size).contiguous(memory_format=layout)
    which = torch.arange(tc.batch_size) % n_styles
    task, times = OneBatch(state, objective, which), []
    for i in range(steps + 2):
        t = time.perf_counter()
        step(task, batch)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/train_step.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--styles", type=int, default=6)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--layouts", action="store_true", help="also time bf16 with channels-last activations")
    args = p.parse_args(argv)
    tune_allocator()
    cfg = TrainConfig.from_options(size=args.size, width=args.width, batch_size=args.batch_size)
    print(f"training step: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, bf16 units: {cpu_has_bf16_units()}")
    print(f"{args.size} px crops, width {args.width}, batch {args.batch_size}, {args.styles} styles")
    results = {}
    for precision in ("fp32", "bf16"):
        results[precision] = seconds_per_step(cfg, precision, torch.contiguous_format, args.steps, args.styles)
        print(f"  {precision}: {results[precision]:.3f} s/step", flush=True)
    if args.layouts:
        other = seconds_per_step(cfg, "bf16", torch.channels_last, args.steps, args.styles)
        print(f"  bf16, channels-last: {other:.3f} s/step")
    print(f"bf16 is {results['fp32'] / results['bf16']:.2f}x faster than fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
