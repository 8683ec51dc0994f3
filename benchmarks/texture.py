"""The fine grid in flat regions at the defaults: before and after the upsampling fix.

``python benchmarks/texture.py`` stylizes held-out photos at the defaults (512 px, Starry Night)
with and without ``upsample_detail`` (the photo's own detail band added between scales), each
in its own process, and prints a table: seconds, the lattice peaks of ``impasto.metrics`` at
periods 2 and 4 (the grid), and the content and style distances. It writes the 2x crops of
``docs/texture_grid.jpg`` (left: plain upsampling, right: with the detail band).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from common import EXAMPLES, ROOT, SHARED, measure_process
from impasto.metrics import distances, lattice_peaks, ruler

PAIRS = [  # (content, style, crop box at 512 px: a flat region)
    (SHARED / "images/content/tubingen.jpg", EXAMPLES / "starry_night.jpg", (300, 250, 428, 378)),
    (SHARED / "images/content/debian-mate/GreenMeadow.jpg", EXAMPLES / "starry_night.jpg", (300, 240, 428, 368)),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp())
    r = ruler()
    print("| photo | upsampling | seconds | lattice peak, period 2 | period 4 | content distance | style distance |")
    print("|---|---|---:|---:|---:|---:|---:|")
    crops = []
    for content, style, box in PAIRS:
        row = []
        for label, flags in (("plain", ["--no-upsample-detail"]), ("with detail band", [])):
            out = work / f"{content.stem}-{len(flags)}.png"
            wall, _, _ = measure_process([sys.executable, "-m", "impasto", "stylize", str(content), str(style),
                                          "-o", str(out), "--size", str(args.size), "--seed", "0", "--quiet",
                                          *flags])
            peaks = lattice_peaks(out)
            d = distances(out, content, style, r)
            print(f"| {content.name} | {label} | {wall:.1f} | {peaks[2]:.1f} | {peaks[4]:.1f} | {d.content:.3f} | "
                  f"{d.style:.4f} |", flush=True)
            row.append(Image.open(out).convert("RGB").crop(box).resize((256, 256), Image.NEAREST))
        crops.append(row)
    sheet = Image.new("RGB", (2 * 256 + 8, len(crops) * 264 - 8), "white")
    for i, (before, after) in enumerate(crops):
        sheet.paste(before, (0, i * 264))
        sheet.paste(after, (264, i * 264))
    sheet.save(ROOT / "docs" / "texture_grid.jpg", quality=92)
    print(f"\nwrote {ROOT / 'docs' / 'texture_grid.jpg'} (2x crops; left plain, right with the detail band)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
