"""Does torch.compile pay on a CPU? ``python benchmarks/experiments/compile_cpu.py``

The objective's forward and backward (one optimization iteration's network work) at 128 px (where
100 of the default job's 130 iterations run) and 256 px, fp32 and bf16, eager against
``torch.compile`` (default mode), median of 8 after the first call; and what the first call
costs. Makes the table in ``benchmarks/results/compile_cpu.md`` (docs/gpu.md cites it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import cpu_name
from impasto.losses.config import LossConfig
from impasto.losses.objective import build_objective, style_targets
from impasto.nets.vgg import build_extractor


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    torch._logging.set_logs(dynamo=40)  # recompile notices are not figures
    loss = LossConfig()
    extractor = build_extractor(loss.layers)
    print(f"torch {torch.__version__}, {cpu_name()}, {torch.get_num_threads()} threads")
    print("| size | precision | eager ms | compiled ms | first compiled call |")
    print("|---|---|---|---|---|")
    for size in (128, 256):
        content, style = torch.rand(1, 3, size, size), torch.rand(1, 3, 256, 256)
        for dtype in (None, torch.bfloat16):
            objective = build_objective(extractor, content, style_targets(extractor, [[style]], loss), loss,
                                        autocast_dtype=dtype)
            row = {}
            for name, run in (("eager", objective), ("compiled", torch.compile(objective))):
                times = []
                for _ in range(9):
                    x = content.clone().requires_grad_(True)
                    t0 = time.perf_counter()
                    run(x)[0].backward()
                    times.append(time.perf_counter() - t0)
                row[name] = (1000 * statistics.median(times[1:]), times[0])
            print(f"| {size}² | {'bf16' if dtype else 'fp32'} | {row['eager'][0]:.1f} | {row['compiled'][0]:.1f} | "
                  f"{row['compiled'][1]:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
