"""Time and peak memory as the output grows, and a print-size tiled image with its seam measure.

    python benchmarks/print_size.py            # 512, 1024, 2048 px at the defaults, then 4096 px tiled
    python benchmarks/print_size.py --smoke    # the same pipeline at toy sizes, in a minute

Each run is a separate `impasto stylize` process (peak resident memory from wait4). The 4096 px
run tiles automatically (the estimate exceeds this machine's memory) at the defaults too;
`--big-iterations` adds flags to it only. It
prints the seam ratio of the result on its tile lines (1.0 = as smooth as the rest), and saves a
downscaled copy and two full-resolution crops (a four-tile corner, and an interior) to docs/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from common import measure_process
from impasto.io.image import load_image
from impasto.ops.tiles import Tile, seam_ratio
from impasto.optimize.config import OptimizeConfig
from impasto.optimize.memory import available_bytes, memory_budget, plan_scales

ROOT = Path(__file__).resolve().parents[1]


def shifted(tiles: list[Tile], d: int, h: int, w: int) -> list[Tile]:
    """The tiles with every inner edge moved by ``d`` px (image borders stay): control lines."""
    def move(a: int, end: int) -> int:
        return a if a in (0, end) else min(max(a + d, 1), end - 1)
    return [Tile(move(t.y0, h), move(t.y1, h), move(t.x0, w), move(t.x1, w)) for t in tiles]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(ROOT.parent / "shared/images/content/debian-mate/Garden.jpg"))
    parser.add_argument("--style", default=str(ROOT / "examples/starry_night.jpg"))
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--big", type=int, default=4096)
    parser.add_argument("--big-iterations", default="", help="extra flags for the big run (default: none)")
    parser.add_argument("--keep", help="also save the big output here (full resolution)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    docs = ROOT / "docs"
    extra: list[str] = []
    if args.smoke:
        args.sizes, args.big, docs = "64,96", 192, Path(tempfile.mkdtemp())
        extra = ["--iterations", "2", "--initial-iterations", "2"]
        args.big_iterations = "--iterations 2 --initial-iterations 2 --tile 96 --tile-overlap 16"
    with tempfile.TemporaryDirectory() as tmp:
        print("| output | wall time (s) | peak memory (MiB) | MiB per added megapixel |")
        print("|---|---:|---:|---:|")
        previous = None
        for size in [int(s) for s in args.sizes.split(",") if s]:
            out = Path(tmp) / f"{size}.png"
            wall, peak, _ = measure_process([sys.executable, "-m", "impasto", "stylize", args.content, args.style,
                                             "-o", str(out), "--size", str(size), "--quiet", *extra])
            w, h = Image.open(out).size
            slope = "" if previous is None else f"{(peak - previous[1]) / ((w * h - previous[0]) / 1e6):.0f}"
            previous = (w * h, peak)
            print(f"| {w}x{h} | {wall:.0f} | {peak:.0f} | {slope} |", flush=True)
        big = Path(tmp) / "big.png"
        # the child and the seam measure below must plan the same tiles: fix the memory budget now
        budget = round(0.8 * available_bytes() / 2**30, 1)
        flags = [*args.big_iterations.split(), "--memory-budget", str(budget)]
        wall, peak, _ = measure_process([sys.executable, "-m", "impasto", "stylize", args.content, args.style,
                                         "-o", str(big), "--size", str(args.big), "--quiet", *flags])
        image = Image.open(big)
        w, h = image.size
        cfg = OptimizeConfig(size=args.big, memory_budget=budget,
                             **({"tile": 96, "tile_overlap": 16} if args.smoke else {}))
        cpu = __import__("torch").device("cpu")
        plan = [s.tiles for s in plan_scales(load_image(args.content).size, cfg, "gram", memory_budget(cfg, cpu))]
        tiles = plan[-1]
        rgb = load_image(image).rgb
        ratio = seam_ratio(rgb, tiles, cfg.tile_overlap) if tiles else float("nan")
        print(f"\n{w}x{h} ({' '.join(flags) or 'defaults'}): {wall:.0f} s, peak {peak:.0f} MiB, "
              f"{len(tiles)} tiles of {tiles[0].size if tiles else '-'} at the last scale, seam ratio {ratio:.3f}")
        if tiles:
            # The interior's own level on lines like these: the same measure on the seam lines moved
            # away from every overlap (image content alone makes some lines busier than average).
            span = max(2 * cfg.tile_overlap, min(h, w) // 16)
            controls = sorted(seam_ratio(rgb, shifted(tiles, d, h, w), cfg.tile_overlap)
                              for d in range(-3 * span, 3 * span + 1, span // 2) if abs(d) >= span)
            print(f"control lines ({len(controls)} shifts of {span}..{3 * span} px away from the seams): "
                  f"min {controls[0]:.3f}, median {controls[len(controls) // 2]:.3f}, max {controls[-1]:.3f}")
        if args.keep:
            image.save(args.keep)
        small = image.copy()
        small.thumbnail((1024, 1024))
        small.save(docs / "print_size_small.jpg", quality=90)
        if tiles:
            t = tiles[0]
            # centred on the first tile's right/bottom seam (its middle along an axis without one)
            cx = t.x1 - cfg.tile_overlap // 2 if t.x1 < w else (t.x0 + t.x1) // 2
            cy = t.y1 - cfg.tile_overlap // 2 if t.y1 < h else (t.y0 + t.y1) // 2
            r = min(256, w // 4, h // 4)
            image.crop((cx - r, cy - r, cx + r, cy + r)).save(docs / "print_size_seam_crop.jpg", quality=92)
            ix, iy = (t.x0 + t.x1) // 2, (t.y0 + t.y1) // 2  # the first tile's centre: no seam near
            image.crop((ix - r, iy - r, ix + r, iy + r)).save(docs / "print_size_interior_crop.jpg", quality=92)
        if args.smoke:
            print(f"smoke run ok; images in {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
