"""Training-loss trials for fast models: ``python benchmarks/experiments/fast_trials.py``. Prints; asserts nothing.

Trains one single-style network per variant (the same photos, steps budget, seed and network) and
judges each on photos that are not in the training data, at 512 px, against impasto's optimization
at its defaults on the same pairs, with the fixed ruler of ``impasto.metrics``: content and style
distances, and the structure measure (correlation of luminance gradient magnitudes at 64 px).
Writes ``benchmarks/results/fast_trials.md`` and a contact sheet ``benchmarks/results/fast_trials.jpg`` (one
row per variant, the optimization first).

A variant is ``name=option=value,option=value`` (TrainConfig options), e.g.
``relu3_1=content_layers=relu3_1``; several are separated by ``;``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import EXAMPLES, ROOT, SHARED, contact_sheet, cpu_name, measure_process
from impasto.fast import TrainConfig, load_model, train
from impasto.metrics import distances, lattice_peaks, ruler, structure

PHOTOS = (EXAMPLES / "lighthouse.jpg", SHARED / "images" / "content" / "tubingen.jpg",
          SHARED / "images" / "content" / "debian-mate" / "Storm.jpg")
DEFAULT_VARIANTS = ("relu4_2=content_layers=relu4_2;relu3_1=content_layers=relu3_1;"
                    "relu2_2=content_layers=relu2_2;relu2_2+relu4_2=content_layers=relu2_2+relu4_2")


def parse_variants(text: str) -> list[tuple[str, dict]]:
    variants = []
    for item in text.split(";"):
        name, _, rest = item.partition("=")
        options: dict = {}
        for pair in filter(None, rest.split(",")):
            key, _, value = pair.partition("=")
            if key.endswith("layers"):
                options[key] = tuple(value.split("+"))
            else:
                try:
                    options[key] = json.loads(value)
                except json.JSONDecodeError:
                    options[key] = value
        variants.append((name, options))
    return variants


def optimized(photo: Path, style: Path, work: Path) -> Path:
    out = work / f"opt-{photo.stem}.png"
    measure_process([sys.executable, "-m", "impasto", "stylize", str(photo), str(style), "-o", str(out),
                     "--size", "512", "--quiet", "--seed", "0"])
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/experiments/fast_trials.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry_night")
    p.add_argument("--variants", default=DEFAULT_VARIANTS)
    p.add_argument("--minutes", type=float, default=6.0, help="training time per variant")
    p.add_argument("--size", type=int, default=128, help="crop size")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--data", default=str(SHARED / "training" / "imagenet-sample"))
    p.add_argument("--keep", default=None, help="folder to keep the trained models in")
    p.add_argument("--name", default="fast_trials",
                   help="writes benchmarks/results/NAME.md and NAME.jpg (a separate study: another name)")
    args = p.parse_args()
    style = next((SHARED / "images" / "style").glob(f"{args.style}.*"))
    work = Path(args.keep or tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    r = ruler()
    refs = {photo: optimized(photo, style, work) for photo in PHOTOS}
    rows, sheet_rows = [], [[Image.open(photo).convert("RGB") for photo in PHOTOS],
                            [Image.open(refs[photo]).convert("RGB") for photo in PHOTOS]]
    ref_d = {ph: (distances(refs[ph], ph, style, r), structure(refs[ph], ph)) for ph in PHOTOS}
    for name, options in parse_variants(args.variants):
        config = TrainConfig.from_options(size=args.size, width=args.width, batch_size=args.batch_size, lr=args.lr,
                                          steps=10**6, max_minutes=args.minutes, workers=1, checkpoint_every=10**6,
                                          sample_every=10**6, **options)
        out = work / f"{name}.pt"
        t0 = time.perf_counter()
        trained = train([str(style)], [args.data], out, config=config, force=True)
        minutes = (time.perf_counter() - t0) / 60
        model = load_model(out)
        row, images = [], []
        for photo in PHOTOS:
            image = model.stylize(photo, size=512)
            path = work / f"{name}-{photo.stem}.png"
            image.save(path)
            images.append(image.convert("RGB"))
            d = distances(path, photo, style, r)
            (dr, sr) = ref_d[photo]
            grid = max(lattice_peaks(path).values())
            row.append((photo.stem, d.content / dr.content, d.style / dr.style, structure(path, photo) / sr, grid))
        rows.append((name, trained.training["steps_done"], minutes, row))
        sheet_rows.append(images)
        print(f"{name}: {trained.training['steps_done']} steps in {minutes:.1f} min; " + "; ".join(
            f"{ph} content {c:.2f}x style {s:.2f}x structure {st:.2f}x lattice {g:.0f}" for ph, c, s, st, g in row),
            flush=True)
    lines = [f"CPU: {cpu_name()}; style {args.style}; {args.size} px crops, width {args.width}, batch "
             f"{args.batch_size}, lr {args.lr}, {args.minutes:g} min each; ratios to the optimization at 512 px",
             "", "| variant | steps | " + " | ".join(f"{ph.stem}: content / style / structure" for ph in PHOTOS)
             + " | lattice peak (mean) |", "|---|---:|" + "---|" * len(PHOTOS) + "---:|",
             f"| optimization | | {' | '.join('1 / 1 / 1' for _ in PHOTOS)} | "
             f"{sum(max(lattice_peaks(refs[ph]).values()) for ph in PHOTOS) / len(PHOTOS):.0f} |"]
    for name, steps, _, row in rows:
        lines.append(f"| {name} | {steps} | " + " | ".join(f"{c:.2f} / {s:.2f} / {st:.2f}" for _, c, s, st, _ in row)
                     + f" | {sum(g for *_, g in row) / len(row):.0f} |")
    table = "\n".join(lines)
    print(table)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / f"{args.name}.md").write_text(table + "\n")
    sheet = contact_sheet(sheet_rows, cell=200, gap=6)
    sheet.save(ROOT / "benchmarks" / "results" / f"{args.name}.jpg", quality=88)
    return 0


if __name__ == "__main__":
    sys.exit(main())
