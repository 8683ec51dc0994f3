"""L-BFGS's first step: torch's rule, a step of a fixed RMS size, and that step bounded by the
decrease it predicts (Polyak's bound).

    python benchmarks/experiments/lbfgs_first_step.py [--pairs tuning,wallpaper] [--configs ...] [--rules ...]

L-BFGS has no curvature at its first iteration. torch takes t = min(1, 1/|g|_1) along -g; on a
512 px image |g|_1 is in the hundreds, so the image moves by about 4e-5 RMS: an iteration lost, at
every scale (the optimizer restarts at each). ``LBFGS(first_move=c)`` moves it by c RMS instead
(``LBFGS_FIRST_MOVE``). This runs the optimization in-process with each rule on the tuning pairs
and the held-out wallpaper pairs, for the quick preset at 6 and 8 iterations and for the defaults,
and writes the distances (``impasto.metrics``), the structure and the wall time to
``benchmarks/results/lbfgs_first_step.md``, with a contact sheet of the held-out pairs at
``--preset quick --iterations 6`` (photo, then one painting per rule). Distances do not depend on
the CPU; the times do (each rule does the same work per iteration).

A step of fixed size is wrong near an optimum, where the gradient is small and noisy: the
``near optimum`` table stylizes at ``--strength 0`` (the photo is nearly the answer) an sRGB photo,
its Adobe RGB original and that original with its profile ignored, and gives how far apart the
first two land against the third (lower: the result follows the photo, not the optimizer's noise).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from PIL import Image

import impasto
from common import ROOT, SHARED, contact_sheet, cpu_name
from impasto.metrics import distances, ruler, structure
from impasto.optimize import optimizers

PAIRS = {
    "tuning": [("content/tubingen.jpg", "style/starry_night.jpg"), ("content/china.jpg", "style/the_scream.jpg"),
               ("content/flower.jpg", "style/wave_crop.jpg")],
    "wallpaper": [("content/debian-mate/Dune.jpg", "style/composition_vii.jpg"),
                  ("content/debian-mate/Storm.jpg", "style/starry_night.jpg"),
                  ("content/debian-mate/TwoWings.jpg", "style/the_scream.jpg")],
}
CONFIGS = {
    "quick6": {"preset": "quick", "iterations": 6},
    "quick8": {"preset": "quick", "iterations": 8},
    "defaults": {},
}
RULES: dict[str, dict[str, float | None]] = {
    "torch": {"first_move": None},
    "rms 0.01 (f844e55)": {"first_move": 0.01, "polyak": None},
    "rms 0.01 bounded": {},  # the shipped rule: LBFGS_FIRST_MOVE bounded by LBFGS_POLYAK (1.0)
    "rms 0.01 bounded by half": {"polyak": 0.5},  # tried: nearer torch's near the optimum, loses half the gains
}
NEAR_OPTIMUM = {"5 iterations": {"size": 256, "strength": 0, "iterations": 5, "seed": 0},
                "defaults": {"size": 256, "strength": 0, "seed": 0}}
ADOBE_RGB_PHOTO = "content/rocket.jpg"


def with_rule(rule: dict[str, float | None]) -> type[optimizers.LBFGS]:
    class Rule(optimizers.LBFGS):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **{**kwargs, **rule})
    return Rule


def near_optimum(images: Path, rules: list[str], tmp: Path) -> list[str]:
    """The strength-0 check's rows: ratio of |adobe - srgb| to |ignored - srgb| per rule and run."""
    import io

    import numpy as np
    from PIL import ImageCms

    raw = Image.open(images / ADOBE_RGB_PHOTO)
    source = ImageCms.ImageCmsProfile(io.BytesIO(raw.info["icc_profile"]))
    ImageCms.profileToProfile(raw, source, ImageCms.createProfile("sRGB"), outputMode="RGB").save(tmp / "srgb.png")
    ignored = raw.convert("RGB")
    ignored.info.pop("icc_profile", None)
    ignored.save(tmp / "ignored.png")
    style = ROOT / "examples" / "starry_night.jpg"
    rows = ["| run | first step | ratio | mean difference (of 255) |", "|---|---|---:|---:|"]
    real = optimizers.OPTIMIZER_KINDS["lbfgs"]
    for run, options in NEAR_OPTIMUM.items():
        for rule in rules:
            optimizers.OPTIMIZER_KINDS["lbfgs"] = with_rule(RULES[rule])
            try:
                adobe, srgb, ign = (np.asarray(impasto.stylize(p, style, **options).convert("RGB"), float)
                                    for p in (images / ADOBE_RGB_PHOTO, tmp / "srgb.png", tmp / "ignored.png"))
            finally:
                optimizers.OPTIMIZER_KINDS["lbfgs"] = real
            gap = np.abs(adobe - srgb).mean()
            rows.append(f"| {run} | {rule} | {gap / np.abs(ign - srgb).mean():.3f} | {gap:.2f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=str(SHARED / "images"))
    parser.add_argument("--pairs", default="tuning,wallpaper")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--rules", default="torch,rms 0.01 (f844e55),rms 0.01 bounded")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lbfgs_first_step"))
    args = parser.parse_args()
    images, ex = Path(args.images), ruler()
    rules = args.rules.split(",")
    rows, sheet = [], []
    real = optimizers.OPTIMIZER_KINDS["lbfgs"]
    with tempfile.TemporaryDirectory() as tmp:
        for group in args.pairs.split(","):
            for c_rel, s_rel in PAIRS[group]:
                content, style = images / c_rel, images / s_rel
                pair = f"{content.stem} / {style.stem}"
                line = [Image.open(content)] if group == "wallpaper" else None
                for config in args.configs.split(","):
                    for rule in rules:
                        optimizers.OPTIMIZER_KINDS["lbfgs"] = with_rule(RULES[rule])
                        try:
                            start = time.perf_counter()
                            image = impasto.stylize(content, style, size=args.size, seed=0, **CONFIGS[config])
                            wall = time.perf_counter() - start
                        finally:
                            optimizers.OPTIMIZER_KINDS["lbfgs"] = real
                        path = Path(tmp) / "out.png"
                        image.save(path)
                        d = distances(path, content, style, ex)
                        rows.append((group, pair, config, rule, wall, d.content, d.style, structure(path, content)))
                        print(*rows[-1], sep=" | ", flush=True)
                        if line is not None and config == "quick6":
                            line.append(image)
                if line is not None:
                    sheet.append(line)
        near = near_optimum(images, rules, Path(tmp))
    out = Path(args.out)
    table = ["| pairs | pair | run | first step | wall (s) | content | style | structure |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    table += [f"| {g} | {p} | {c} | {r} | {w:.1f} | {cd:.3f} | {sd:.4f} | {st:.2f} |"
              for g, p, c, r, w, cd, sd, st in rows]
    text = (f"CPU: {cpu_name()}, {args.size} px, seed 0 (`python benchmarks/experiments/lbfgs_first_step.py`)\n\n"
            "quick6 / quick8: `--preset quick --iterations 6 / 8`; defaults: no options. first step: torch's "
            "min(1, 1/|g|_1); a move of 0.01 RMS (`LBFGS_FIRST_MOVE`); or that move bounded by Polyak's step "
            "(`LBFGS_POLYAK`: the decrease it predicts at most the objective; 'by half': at most half of it).\n\n"
            + "\n".join(table) + "\n\n## Near an optimum\n\n"
            "`--strength 0` at 256 px: how far the Adobe RGB photo's result lands from its sRGB copy's, as a "
            "fraction of how far the profile-ignored copy's lands (lower is better).\n\n" + "\n".join(near) + "\n")
    out.with_suffix(".md").write_text(text)
    if sheet:
        contact_sheet(sheet).save(out.with_suffix(".jpg"), quality=88)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
