"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"
IMAGENET_SAMPLE_TERMS = (
    "ImageNet sample (one photo per ImageNet class, EliSchwartz/imagenet-sample-images at bc69043, "
    "downscaled to a 256 px short side): ImageNet terms, non-commercial research and educational use; "
    "copyright stays with the photographers")
"""The terms of the shared training photos, for the model cards of what the scripts train on them."""
sys.path.insert(0, str(ROOT / "src"))  # the checkout's impasto, also without an install


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


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform says: every figure names the CPU it is from."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def contact_sheet(rows: list, cell: int = 256, gap: int = 8):
    """A grid of PIL images (one list per row), each fitted in a ``cell`` px square, on white."""
    from PIL import Image

    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (columns * (cell + gap) - gap, len(rows) * (cell + gap) - gap), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            im = im.convert("RGB")
            im.thumbnail((cell, cell))
            sheet.paste(im, (j * (cell + gap), i * (cell + gap)))
    return sheet
