"""Judge models while they train: ``python benchmarks/judge_checkpoint.py M.pt.ckpt [MODEL ...]``.

A training checkpoint (``OUTPUT.ckpt``, written every ``--checkpoint-every`` steps) holds the
network's weights as they are at that step, before any model file is written. This loads each
checkpoint's weights into a network of its own settings (width, blocks, resampling) and judges it
like ``benchmarks/fast.py --skip-speed --no-figure``: content, style, structure and lattice peaks at
512 px on the held-out photos, against the optimization's results kept in ``--opt-dir`` (made
there once if missing). Copy a checkpoint before judging it if its run is still going: the run
replaces the file every few minutes. Model files and shipped names are judged as they are.

``--scales 384,512,640`` judges instead each model applied at those sizes and resized (Lanczos)
to the optimization's 512 px: larger or smaller strokes on the same picture. If a smaller or larger
size came closer in style, the model would paint at the wrong scale (its style images were used
at ``--style-size``, 512 px, while it trained on 256 px crops).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from fast import HELD_OUT, SHARED, quality
from impasto.errors import InputError
from impasto.fast import load_model
from impasto.fast.model import StyleModel
from impasto.fast.train import read_checkpoint
from impasto.metrics import distances, ruler, structure
from impasto.nets.transformer import TransformerNet


def from_checkpoint(path: Path) -> StyleModel:
    data = read_checkpoint(path)
    c = data["config"]
    net = TransformerNet(len(data["styles"]), width=c["width"], blocks=c["blocks"], upsample=c["upsample"],
                         downsample=c["downsample"])
    net.load_state_dict(data["net"])
    return StyleModel(net.eval(), list(data["styles"]), training={**c, "steps_done": data["step"]},
                      name=f"{path.name} (step {data['step']})")


def scales(models: dict[str, StyleModel], sizes: list[int], opt_dir: Path) -> None:
    """Each model at each size, resized to the optimization's 512 px, as ratios to it."""
    r, work = ruler(), Path(tempfile.mkdtemp())
    print("| model | style | " + " | ".join(f"at {s}: content / style / structure" for s in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name, model in models.items():
        for style in model.styles:
            photo = SHARED / "images" / "content" / HELD_OUT.get(style, "tubingen.jpg")
            painting = next((SHARED / "images" / "style").glob(f"{style}.*"))
            opt = opt_dir / f"{style}-opt.png"
            if not opt.exists():
                raise SystemExit(f"no optimization result {str(opt)!r}: run without --scales first to make it")
            d_opt, s_opt = distances(opt, photo, painting, r), structure(opt, photo)
            cells = []
            for size in sizes:
                out = work / f"{style}-{size}.png"
                model.stylize(photo, style=style, size=size).convert("RGB").resize(
                    Image.open(opt).size, Image.LANCZOS).save(out)
                d = distances(out, photo, painting, r)
                cells.append(f"{d.content / d_opt.content:.2f} / {d.style / d_opt.style:.2f} / "
                             f"{structure(out, photo) / s_opt:.2f}")
            print(f"| {name} | {style} | " + " | ".join(cells) + " |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="checkpoints (*.ckpt), model files or shipped names")
    p.add_argument("--opt-dir", type=Path, default=Path("out/opt512"))
    p.add_argument("--scales", default=None, metavar="S1,S2",
                   help="apply at these sizes and resize to 512 px (see above) instead of the usual judgement")
    args = p.parse_args()
    try:
        models = {spec: from_checkpoint(Path(spec)) if spec.endswith(".ckpt") else load_model(spec)
                  for spec in args.models}
    except (InputError, OSError) as exc:
        p.error(str(exc))
    if len({tuple(m.styles) for m in models.values()}) > 1:
        p.error("the models must have the same styles")
    args.opt_dir.mkdir(parents=True, exist_ok=True)
    if args.scales:
        try:
            sizes = [int(v) for v in args.scales.split(",")]
        except ValueError:
            p.error(f"--scales takes comma-separated sizes in px; got {args.scales!r}")
        scales(models, sizes, args.opt_dir)
    else:
        quality(models, 512, args.opt_dir, figure=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
