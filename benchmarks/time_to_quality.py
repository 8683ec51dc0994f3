"""Time to quality: impasto at its defaults against pastiche at its defaults, on one fixed ruler.

    python benchmarks/time_to_quality.py                 # everything (about 80 minutes on 2 cores)
    python benchmarks/time_to_quality.py --reuse-pastiche   # re-run impasto only, reuse pastiche rows

Both programs run as separate processes on the CPU at a 512 px long edge, on three content/style
pairs from ../shared/images. pastiche runs once per pair for its largest N with an intermediate
image saved every 100 steps (its own --workspace option); the wall time of step N is when its
"N elapsed loss" line reaches this script (unbuffered), counted from spawning the process, so the
100- and 300-step points cost nothing extra. Each output is judged by impasto.metrics (content
and style distances with the embedded VGG19 at the output's size). Peak resident memory comes
from wait4() on each child. pastiche's rows depend only on pastiche, so --reuse-pastiche reads
them from benchmarks/results/pastiche.json, written by an earlier full run on the same machine.

``--pairs wallpaper`` runs three held-out pairs instead (desktop-wallpaper photos from Debian's
mate-backgrounds with Composition VII, The Starry Night and The Scream: pairs nothing was tuned
on), writing ``time_to_quality_wallpaper.*``. Every impasto row also gets ``impasto.metrics.
structure`` (how much of the photo's shapes it keeps), and the ``--preset quick`` row (the
optimization refining a one-pass wct painting) is judged against issue 36's target: pastiche-300's
quality on both distances in at most 1/60 of its time, with structure at least 0.9x the defaults'.

Prints a markdown table and writes it, the raw JSON and a plot (docs/time_to_quality.png).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from common import cpu_name, measure_process

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZE = 512
CPU = cpu_name()
PAIRS = [  # (content, style, pastiche step counts); 1000 steps is sampled on the first pair only
    ("content/tubingen.jpg", "style/starry_night.jpg", (100, 300, 1000)),
    ("content/china.jpg", "style/the_scream.jpg", (100, 300)),
    ("content/flower.jpg", "style/wave_crop.jpg", (100, 300)),
]
WALLPAPER_PAIRS = [  # held out: nothing in impasto was tuned on these photos
    ("content/debian-mate/Dune.jpg", "style/composition_vii.jpg", (100, 300)),
    ("content/debian-mate/Storm.jpg", "style/starry_night.jpg", (100, 300)),
    ("content/debian-mate/TwoWings.jpg", "style/the_scream.jpg", (100, 300)),
]
QUICK = "--preset quick"
DEFAULT_VARIANTS = ("--iterations 5;--iterations 8;default;--precision fp32;--iterations 50 --initial-iterations 200;"
                    f"{QUICK};{QUICK} --iterations 6;{QUICK} --iterations 12")


def run_pastiche(content: Path, style: Path, steps: tuple[int, ...], work: Path) -> dict[int, dict]:
    n, every = max(steps), math.gcd(*steps)
    ws = work / "ws"
    cmd = [sys.executable, "-m", "pastiche", "-c", str(content), "-s", str(style), "-o", str(work / "final.png"),
           "--size", str(SIZE), "--num-steps", str(n), "--device", "cpu", "--workspace", str(ws),
           "--workspace-step", str(every), "--info-step", str(every)]
    _, peak, lines = measure_process(cmd)
    at = {}
    for seconds, line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            at[int(parts[0])] = seconds
    width = len(str(n))
    return {k: {"time": at[k], "peak_mib": peak, "image": str(ws / f"{k:0{width}d}.png")} for k in steps}


def run_impasto(content: Path, style: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "impasto", "stylize", str(content), str(style), "-o", str(out),
           "--size", str(SIZE), "--quiet", *extra]
    wall, peak, _ = measure_process(cmd)
    return {"time": wall, "peak_mib": peak, "image": str(out)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=str(ROOT.parent / "shared" / "images"))
    parser.add_argument("--reuse-pastiche", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="a 1-minute check of the whole pipeline at 64 px (results in a temporary folder)")
    parser.add_argument("--impasto-variants", default=DEFAULT_VARIANTS,
                        help="';'-separated extra impasto flag sets ('default' = none)")
    parser.add_argument("--pairs", choices=("default", "wallpaper"), default="default",
                        help="the three tuning-era pairs, or three held-out wallpaper pairs")
    parser.add_argument("--pastiche-steps", type=int, default=None,
                        help="run pastiche to at most this many steps (e.g. 300: skips the 1000-step point)")
    parser.add_argument("--replot", action="store_true", help="only draw the plot again from the results' JSON")
    args = parser.parse_args()
    global SIZE, PAIRS, RESULTS
    if args.replot:
        name = "time_to_quality_wallpaper" if args.pairs == "wallpaper" else "time_to_quality"
        plot(json.loads((RESULTS / f"{name}.json").read_text()), ROOT / "docs" / f"{name}.png")
        return 0
    from impasto.metrics import distances, ruler, structure

    plot_path = ROOT / "docs" / "time_to_quality.png"
    name = "time_to_quality"
    if args.pairs == "wallpaper":
        PAIRS, name = WALLPAPER_PAIRS, "time_to_quality_wallpaper"
        plot_path = ROOT / "docs" / "time_to_quality_wallpaper.png"
    if args.smoke:
        SIZE, RESULTS = 64, Path(tempfile.mkdtemp())
        PAIRS = [(c, s, (2, 4)) for c, s, _ in PAIRS[:2]]
        args.impasto_variants = f"--iterations 2 --initial-iterations 2;{QUICK} --iterations 1"
        plot_path = RESULTS / "plot.png"
    if args.pastiche_steps:
        PAIRS = [(c, s, tuple(n for n in steps if n <= args.pastiche_steps)) for c, s, steps in PAIRS]
    images = Path(args.images)
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_path = RESULTS / "pastiche.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    ex = ruler()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (c_rel, s_rel, steps) in enumerate(PAIRS):
            content, style = images / c_rel, images / s_rel
            pair = f"{content.stem} / {style.stem}"
            key = f"{c_rel}|{s_rel}|{SIZE}|{max(steps)}|pastiche {version('pastiche')}|{CPU}"
            if args.reuse_pastiche and key in cache:
                pastiche = {int(k): v for k, v in cache[key].items()}
            else:
                work = Path(tmp) / f"p{i}"
                work.mkdir()
                pastiche = run_pastiche(content, style, steps, work)
                for row in pastiche.values():
                    d = distances(row.pop("image"), content, style, ex)
                    row.update(content_d=d.content, style_d=d.style)
                cache[key] = pastiche
                cache_path.write_text(json.dumps(cache, indent=1))
            for n, row in sorted(pastiche.items()):
                rows.append({"pair": pair, "program": f"pastiche-{n}", **row})
            if args.smoke:  # let the table's verdict column run too
                rows.append({**rows[-1], "program": "pastiche-300"})
            for variant in args.impasto_variants.split(";"):
                extra = [] if variant.strip() == "default" else variant.split()
                row = run_impasto(content, style, Path(tmp) / f"i{i}.png", extra)
                image = row.pop("image")
                d = distances(image, content, style, ex)
                row.update(content_d=d.content, style_d=d.style, structure=structure(image, content))
                program = "impasto " + (" ".join(extra) or "(defaults)")
                if args.smoke and not variant.startswith(QUICK):
                    program = "impasto (defaults)"
                elif args.smoke:
                    program = f"impasto {QUICK}"
                rows.append({"pair": pair, "program": program, **row})
            print(f"done: {pair}", file=sys.stderr, flush=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1))
    table = render(rows) + "\n\n" + summary(rows)
    (RESULTS / f"{name}.md").write_text(f"CPU: {CPU}\n\n" + table + "\n")
    print(f"CPU: {CPU}")
    print(table)
    plot(rows, plot_path)
    if args.smoke:
        print(f"smoke run ok; results in {RESULTS}", file=sys.stderr)
    return 0


def summary(rows: list[dict]) -> str:
    """Per pair: the fastest impasto run at pastiche-300's quality (style distance no worse, content
    within 1.25x) as a fraction of pastiche-300's time, and the defaults in bf16 against fp32."""
    lines = []
    for pair in dict.fromkeys(r["pair"] for r in rows):
        mine = [r for r in rows if r["pair"] == pair]
        ref = next((r for r in mine if r["program"] == "pastiche-300"), None)
        if ref is not None:
            good = [r for r in mine if r["program"].startswith("impasto") and r["style_d"] <= ref["style_d"]
                    and r["content_d"] <= 1.25 * ref["content_d"]]
            if good:
                best = min(good, key=lambda r: r["time"])
                lines.append(f"- {pair}: pastiche-300's quality in {best['time']:.1f} s ({best['program']}), "
                             f"1/{ref['time'] / best['time']:.0f} of pastiche-300's {ref['time']:.0f} s")
            else:
                lines.append(f"- {pair}: no impasto run reached pastiche-300's quality")
        quick = next((r for r in mine if r["program"] == f"impasto {QUICK}"), None)
        auto = next((r for r in mine if r["program"] == "impasto (defaults)"), None)
        if quick is not None and ref is not None and auto is not None:
            better = quick["style_d"] <= ref["style_d"] and quick["content_d"] <= ref["content_d"]
            kept = quick["structure"] / auto["structure"] if auto["structure"] > 0 else float("inf")
            ok = better and ref["time"] / quick["time"] >= 60 and kept >= 0.9
            lines.append(f"- {pair}: {QUICK} {'met' if ok else 'NOT met'}: {quick['time']:.1f} s = "
                         f"1/{ref['time'] / quick['time']:.0f} of pastiche-300's time (target 1/60); content "
                         f"{quick['content_d'] / ref['content_d']:.2f}x and style "
                         f"{quick['style_d'] / ref['style_d']:.2f}x "
                         f"pastiche-300's (target <= 1); structure {quick['structure']:.2f} = {kept:.2f}x the "
                         f"defaults' {auto['structure']:.2f} (target >= 0.9)")
        fp32 = next((r for r in mine if r["program"] == "impasto --precision fp32"), None)
        if auto is not None and fp32 is not None:
            lines.append(f"- {pair}: defaults {auto['time']:.1f} s against {fp32['time']:.1f} s in fp32 = "
                         f"{fp32['time'] / auto['time']:.2f}x faster; content "
                         f"{auto['content_d'] / fp32['content_d']:.3f}x, "
                         f"style {auto['style_d'] / fp32['style_d']:.3f}x "
                         "of fp32's")
    return "\n".join(lines)


def render(rows: list[dict]) -> str:
    lines = ["| pair | program | wall time (s) | content distance | style distance | structure | peak memory (MiB) "
             "| target |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        verdict = ""
        if r["program"] == "impasto (defaults)":
            ref = next(x for x in rows if x["pair"] == r["pair"] and x["program"] == "pastiche-300")
            ok = (r["style_d"] <= ref["style_d"] and r["content_d"] <= 1.25 * ref["content_d"]
                  and r["time"] <= ref["time"] / 10)
            verdict = (f"{'met' if ok else 'NOT met'}: {ref['time'] / r['time']:.1f}x faster than pastiche-300, "
                       f"style {r['style_d'] / ref['style_d']:.2f}x, content {r['content_d'] / ref['content_d']:.2f}x")
        kept = f"{r['structure']:.2f}" if "structure" in r else ""
        lines.append(f"| {r['pair']} | {r['program']} | {r['time']:.1f} | {r['content_d']:.3f} | {r['style_d']:.4f} "
                     f"| {kept} | {r['peak_mib']:.0f} | {verdict} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    pairs = sorted({r["pair"] for r in rows})
    markers = "osd^v"
    for metric, ax in zip(("style_d", "content_d"), axes):
        for j, pair in enumerate(pairs):
            for prog, colour in (("pastiche", "tab:gray"), ("impasto", "tab:red"), (f"impasto {QUICK}", "tab:blue")):
                pts = sorted((r["time"], r[metric]) for r in rows
                             if r["pair"] == pair and r["program"].startswith(prog)
                             and (prog != "impasto" or not r["program"].startswith(f"impasto {QUICK}")))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=markers[j % 5], color=colour,
                        label=f"{prog}: {pair}")
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s), 2-core CPU, 512 px")
        ax.set_ylabel({"style_d": "style distance (lower = more style)",
                       "content_d": "content distance (lower = closer to photo)"}[metric])
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
