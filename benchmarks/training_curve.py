"""What more training would buy: ``python benchmarks/training_curve.py`` (from ``benchmarks/``).

Judges the shipped model's lineage, the models its training wrote on the way (kept in
``checkpoints/``), like ``benchmarks/fast.py --skip-speed --no-figure``: content, style and structure
at 512 px on the held-out photos, as ratios to the optimization's results in ``--opt-dir`` (made
there once if missing). Each model's steps are counted through its ``init`` chain (the model card's
``init_training``), so a model trained with ``--init`` counts the steps of the one it started from.

Then, per pair, it fits ``log(ratio) = a + b * log2(steps)`` over the models (least squares) and
prints the change per doubling of the steps, and where the fit falls, how many steps would reach
the target (style 1.5x, content 1.25x) and how many hours that is at ``--seconds-per-step`` (the
model card's: 0.8 s on a 2-core AMX Xeon, 2.2 s on a 2-core EPYC). The lineage changes learning
rate and loss on the way (the lattice term, the content layers), so the fit is a trend, not a law:
the correlation is printed beside it. A trend that needs more than 1000x the steps so far is
printed as out of reach.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from fast import quality
from impasto.errors import InputError
from impasto.fast import load_model

LINEAGE = ("checkpoints/multistyle6-w25b9.pt", "checkpoints/multistyle6-w25b9-anneal.pt",
           "checkpoints/multistyle6-w25b9-long.pt", "checkpoints/multistyle6-w25b9-final.pt",
           "checkpoints/multistyle6-lattice300.pt", "multistyle6", "checkpoints/multistyle6-content42.pt",
           "checkpoints/multistyle6-content42-anneal.pt")
TARGETS = {"style": 1.5, "content": 1.25}
OUT_OF_REACH = 1000


def total_steps(training: dict | None) -> int:
    """The steps of a model and of every model it was started from (``--init``)."""
    if not training:
        return 0
    return int(training.get("steps_done", 0)) + total_steps(training.get("init_training"))


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: (a, b, correlation)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    b = sxy / sxx
    return my - b * mx, b, sxy / math.sqrt(sxx * syy) if syy > 0 else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=list(LINEAGE), help="model files or shipped names, in order")
    p.add_argument("--opt-dir", type=Path, default=Path("out/opt512"))
    p.add_argument("--seconds-per-step", default="0.8,2.2", help="comma-separated, for the hours column")
    args = p.parse_args()
    try:
        models = {spec: load_model(spec) for spec in args.models}
        rates = [float(v) for v in args.seconds_per_step.split(",")]
    except (InputError, OSError, ValueError) as exc:
        p.error(str(exc))
    if len(models) < 3:
        p.error("give at least three models: a trend needs them")
    steps = {name: total_steps(m.training) for name, m in models.items()}
    args.opt_dir.mkdir(parents=True, exist_ok=True)
    ratios = quality(models, 512, args.opt_dir, figure=False)
    styles = list(next(iter(ratios.values())))
    print("\n| model | steps | " + " | ".join(f"{s}: style / content" for s in styles) + " |")
    print("|---|---:|" + "---|" * len(styles))
    for name in models:
        print(f"| {name} | {steps[name]:,} | " + " | ".join(
            f"{ratios[name][s]['style']:.2f} / {ratios[name][s]['content']:.2f}" for s in styles) + " |")
    last = max(steps.values())
    hours = " | ".join(f"hours at {r:g} s/step" for r in rates)
    print(f"\n| pair | measure | at {last:,} steps (fit) | change per doubling | correlation | steps to the target | "
          f"{hours} |\n|---|---|---:|---:|---:|---:|" + "---:|" * len(rates))
    xs = [math.log2(steps[n]) for n in models]
    for style in styles:
        for measure, target in TARGETS.items():
            a, b, corr = fit(xs, [math.log(ratios[n][style][measure]) for n in models])
            now = math.exp(a + b * math.log2(last))
            if now <= target:
                need, cells = "met", ["0"] * len(rates)
            elif b >= 0:
                need, cells = "never (not falling)", ["-"] * len(rates)
            else:
                total = last * 2 ** ((math.log(target) - math.log(now)) / b)
                if total > OUT_OF_REACH * last:
                    need, cells = f"over {OUT_OF_REACH}x the steps so far", ["-"] * len(rates)
                else:
                    need, cells = f"{total:,.0f}", [f"{(total - last) * r / 3600:,.0f}" for r in rates]
            print(f"| {style} | {measure} | {now:.2f} | {math.exp(b) - 1:+.1%} | {corr:+.2f} | {need} | "
                  + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
