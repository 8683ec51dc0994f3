"""Regenerate the example images of the documentation: ``docs/lighthouse_starry.jpg`` (the README's
first image, the main job's settings), ``style_losses.jpg``, ``masks.jpg`` and ``strength.jpg``
(docs/styles.md).

    python benchmarks/readme_examples.py            # all, about 15 minutes on a 2-core CPU

Every image is made with the public API at the settings written next to it on its page.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

import impasto
from impasto.runtime import tune_allocator

ROOT = Path(__file__).resolve().parents[1]
EX, DOCS = ROOT / "examples", ROOT / "docs"
CONTENT, STARRY, WAVE = EX / "lighthouse.jpg", EX / "starry_night.jpg", EX / "wave.jpg"


def strip(images: list[Image.Image], labels: list[str], height: int = 256) -> Image.Image:
    tiles = [im.convert("RGB").resize((round(im.width * height / im.height), height), Image.LANCZOS)
             for im in images]
    out = Image.new("RGB", (sum(t.width for t in tiles), height + 22), "white")
    x = 0
    draw = ImageDraw.Draw(out)
    for tile, label in zip(tiles, labels):
        out.paste(tile, (x, 22))
        draw.text((x + 6, 5), label, fill="black")
        x += tile.width
    return out


def timed(label: str, **kwargs) -> Image.Image:
    t = time.perf_counter()
    image = impasto.stylize(**kwargs)
    print(f"{label}: {time.perf_counter() - t:.0f} s", flush=True)
    return image


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    tune_allocator()
    DOCS.mkdir(exist_ok=True)
    content = Image.open(CONTENT)
    gram = timed("gram 512 (the defaults)", content=CONTENT, styles=STARRY, seed=0)
    gram.save(DOCS / "lighthouse_starry.jpg", quality=90)  # the README's first image: the main job's settings
    mrf = timed("mrf 512", content=CONTENT, styles=STARRY, style_loss="mrf", seed=0)
    meancov = timed("meancov 512", content=CONTENT, styles=STARRY, style_loss="meancov", seed=0)
    strip([content, gram, mrf, meancov], ["content", "gram (default)", "mrf", "meancov"]).save(
        DOCS / "style_losses.jpg", quality=90)
    split = timed("two styles by mask", content=CONTENT, styles=[STARRY, WAVE],
                  style_masks=[EX / "lighthouse_sky_mask.png", Image.eval(Image.open(EX / "lighthouse_sky_mask.png"),
                                                                       lambda v: 255 - v)], seed=0)
    strip([content, Image.open(EX / "lighthouse_sky_mask.png"), split],
          ["content", "mask: white = starry night, black = wave", "result"]).save(DOCS / "masks.jpg", quality=90)
    levels = [0.2, 0.4, 0.6, 0.8, 1.0]
    results = [timed(f"strength {s}", content=CONTENT, styles=STARRY, strength=s, size=384, seed=0) for s in levels]
    strip(results, [f"--strength {s}" for s in levels], height=224).save(DOCS / "strength.jpg", quality=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
