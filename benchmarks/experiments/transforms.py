"""Which feature transform, and how much of the photo's structure, for ``--method wct``? Issue 36.

Runs every transform (``ost``, ``wct``, ``adain``, ``efdm``, ``histogram``) at the default levels,
with ``structure`` 0 (Li et al.'s pipeline) and at its default, on four *tuning* pairs (Kodak and
other photos with paintings that neither the decoders' training nor ``benchmarks/universal.py``'s
held-out pairs use), at 512 px, and prints each one's content and style distances and structure
(``impasto.metrics``), and the seconds of a warm run. ``--structure`` and ``--transforms`` narrow
it. The held-out pairs are judged by ``benchmarks/universal.py`` only, after the choice.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import SHARED, cpu_name
from impasto.metrics import distances, ruler, structure
from impasto.universal.stylize import TRANSFORMS, Universal, UniversalConfig, stylize_universal

TUNE = [("kodak24/kodim05.png", "udnie.jpg"), ("kodak24/kodim21.png", "woman-with-hat-matisse.jpg"),
        ("kodak24/kodim13.png", "wave_crop.jpg"), ("coffee.png", "shipwreck.jpg")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transforms", default=",".join(TRANSFORMS), help="comma-separated (default: all)")
    p.add_argument("--structure", default=f"0,{UniversalConfig.structure:g}", help="comma-separated values")
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    model, ex = Universal(), ruler()
    print(f"tuning pairs at {args.size} px; {cpu_name()}")
    print("| transform | structure | content | style | structure kept | s per image |")
    print("|---|---|---|---|---|---|")
    for name in args.transforms.split(","):
        for amount in (float(v) for v in args.structure.split(",")):
            scores, seconds = [], []
            for photo, painting in TUNE:
                c, s = SHARED / "images" / "content" / photo, SHARED / "images" / "style" / painting
                stylize_universal(c, s, model=model, size=args.size, transform=name, structure=amount)  # warm
                t0 = time.perf_counter()
                image = stylize_universal(c, s, model=model, size=args.size, transform=name, structure=amount)
                seconds.append(time.perf_counter() - t0)
                d = distances(image, c, s, ex)
                scores.append((d.content, d.style, structure(image, c)))
            mean = [statistics.mean(v) for v in zip(*scores)]
            print(f"| {name} | {amount:g} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | "
                  f"{statistics.median(seconds):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
