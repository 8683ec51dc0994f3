"""Time and peak memory as the output grows, and a print-size tiled image with its seam measure.

    python benchmarks/print_size.py            # 512, 1024, 2048 px at the defaults, then 4096 px tiled
    python benchmarks/print_size.py --smoke    # the same pipeline at toy sizes, in a minute

Each run is a separate `impasto stylize` process (peak resident memory from wait4). The 4096 px
run tiles automatically (the estimate exceeds this machine's memory); with `--big-iterations` it
uses fewer iterations per scale, since every 4096 px iteration costs ~64 times a 512 px one. It
prints the seam ratio of the result on its tile lines (1.0 = as smooth as the rest), and saves a
downscaled copy and two full-resolution crops (a four-tile corner, and an interior) to docs/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from impasto.api import plan_tiles
from impasto.bench import measure_process
from impasto.config import StylizeConfig
from impasto.image import load_image
from impasto.tiling import seam_ratio

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(ROOT.parent / "shared/images/content/debian-mate/Garden.jpg"))
    parser.add_argument("--style", default=str(ROOT / "examples/starry_night.jpg"))
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--big", type=int, default=4096)
    parser.add_argument("--big-iterations", default="--iterations 10 --initial-iterations 100")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    docs = ROOT / "docs"
    extra: list[str] = []
    if args.smoke:
        args.sizes, args.big, docs = "64,96", 192, Path(tempfile.mkdtemp())
        extra = ["--iterations", "2", "--initial-iterations", "2"]
        args.big_iterations = "--iterations 2 --initial-iterations 2 --tile 96 --tile-overlap 16"
    with tempfile.TemporaryDirectory() as tmp:
        print("| output | wall time (s) | peak memory (MiB) | MiB per megapixel |")
        print("|---|---:|---:|---:|")
        for size in [int(s) for s in args.sizes.split(",")]:
            out = Path(tmp) / f"{size}.png"
            wall, peak, _ = measure_process([sys.executable, "-m", "impasto", "stylize", args.content, args.style,
                                             "-o", str(out), "--size", str(size), "--quiet", *extra])
            w, h = Image.open(out).size
            print(f"| {w}x{h} | {wall:.0f} | {peak:.0f} | {peak / (w * h / 1e6):.0f} |", flush=True)
        big = Path(tmp) / "big.png"
        flags = args.big_iterations.split()
        wall, peak, _ = measure_process([sys.executable, "-m", "impasto", "stylize", args.content, args.style,
                                         "-o", str(big), "--size", str(args.big), "--quiet", *flags])
        image = Image.open(big)
        w, h = image.size
        cfg = StylizeConfig(size=args.big, **({"tile": 96, "tile_overlap": 16} if args.smoke else {}))
        plan = plan_tiles(load_image(args.content).size, cfg.pyramid(), cfg, __import__("torch").device("cpu"))
        tiles = plan[-1]
        ratio = seam_ratio(load_image(image).rgb, tiles, cfg.tile_overlap) if tiles else float("nan")
        print(f"\n{w}x{h} ({' '.join(flags)}): {wall:.0f} s, peak {peak:.0f} MiB, "
              f"{len(tiles)} tiles of {tiles[0].size if tiles else '-'} at the last scale, seam ratio {ratio:.3f}")
        small = image.copy()
        small.thumbnail((1024, 1024))
        small.save(docs / "print_size_small.jpg", quality=90)
        if tiles:
            t = tiles[0]
            c = (t.x1 - cfg.tile_overlap // 2, t.y1 - cfg.tile_overlap // 2)
            r = min(256, w // 4, h // 4)
            image.crop((c[0] - r, c[1] - r, c[0] + r, c[1] + r)).save(docs / "print_size_seam_crop.jpg", quality=92)
            image.crop((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r)).save(docs / "print_size_interior_crop.jpg",
                                                                               quality=92)
        if args.smoke:
            print(f"smoke run ok; images in {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
