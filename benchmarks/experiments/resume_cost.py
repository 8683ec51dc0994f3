"""What resuming from a snapshot costs: ``python benchmarks/experiments/resume_cost.py``. Prints; asserts nothing.

An optimize run is stopped at a fraction of its work (snapshots every step), then resumed from its
snapshot with a fresh optimizer (what the service does after a crash); the result's content and
style distances are printed beside an uninterrupted run's (the same seed, photo and painting).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import EXAMPLES, cpu_name
from impasto.errors import Interrupted
from impasto.metrics import distances
from impasto.optimize import SnapshotFile, load_snapshot, stylize
from impasto.progress import CancelToken


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--stops", default="0.25,0.5,0.75")
    args = p.parse_args()
    photo, painting = EXAMPLES / "lighthouse.jpg", EXAMPLES / "starry_night.jpg"
    opts = dict(size=args.size, iterations=args.iterations, seed=0)
    whole = distances(stylize(photo, painting, output="tensor", **opts), photo, painting)
    print(f"{cpu_name()}; {args.size} px, {args.iterations} iterations; uninterrupted: content {whole.content:.3f}, "
          f"style {whole.style:.4f}")
    print("| stopped at | resumed from (scale, step, work) | content (ratio) | style (ratio) |")
    print("|---:|---|---:|---:|")
    for stop in (float(s) for s in args.stops.split(",")):
        snap = Path(tempfile.mkdtemp()) / "run.snap"
        cancel = CancelToken()

        def at(event, stop=stop, cancel=cancel) -> None:
            if event.work >= stop:
                cancel.cancel()

        with contextlib.suppress(Interrupted):  # stopped where asked; the snapshot file holds where
            stylize(photo, painting, callback=at, cancel=cancel, snapshots=SnapshotFile(snap, every=1e-6), **opts)
        saved = load_snapshot(snap)
        assert saved is not None
        out = stylize(photo, painting, snapshots=SnapshotFile(snap), output="tensor", **opts)
        d = distances(out, photo, painting)
        print(f"| {stop:.2f} | {saved.scale}, {saved.step}, {saved.work:.2f} | {d.content:.3f} "
              f"({d.content / whole.content:.2f}) | {d.style:.4f} ({d.style / whole.style:.2f}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
