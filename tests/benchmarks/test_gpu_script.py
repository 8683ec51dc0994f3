"""benchmarks/gpu.py, the prepared GPU run, at toy size on the CPU: every part it will run on a GPU
runs here first (a GPU is lent rarely, and each minute of it counts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_script_runs_every_part_at_toy_size(tmp_path, photos):
    out = tmp_path / "gpu"
    cmd = [sys.executable, "gpu.py", "--device", "cpu", "--sizes", "48", "--fast-sizes", "48", "--iterations", "2",
           "--train-minutes", "0.02", "--decoder-minutes", "0.02", "--quick", "--data", str(photos), "--out", str(out),
           "--batch-size", "2",
           "--workers", "0", "--skip", "job"]
    done = subprocess.run(cmd, cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = [json.loads(line) for line in (out / "figures.jsonl").read_text().splitlines()]
    kinds = [f["figure"] for f in figures]
    assert "error" not in kinds, [f for f in figures if f["figure"] == "error"]
    assert kinds.count("optimize_iteration") == 4 and kinds.count("fast_inference") == 2
    assert [f["run"] for f in figures if f["figure"] == "train"] == ["from_shipped", "from_scratch"]
    assert next(f for f in figures if f["figure"] == "torchrun")["ok"]
    assert next(f for f in figures if f["figure"] == "decoders")["steps"] >= 1
    assert {"from_shipped.pt", "from_scratch.pt", "from_shipped.sample.png", "torchrun.pt", "decoders.pt"} <= {
        p.name for p in out.iterdir()}
    assert all(f["ms"] > 0 for f in figures if f["figure"] == "optimize_iteration")
