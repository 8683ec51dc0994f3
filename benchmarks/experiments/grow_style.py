"""Adding a style to a trained model: how many steps does a new style need?

``python benchmarks/grow_style.py`` adds one painting to the shipped ``multistyle6`` with
``impasto train --base`` (Dumoulin et al.: only the new style's instance-norm scales and shifts
train; the other styles stay bit for bit the same) for ``--minutes``, and at ``--at`` steps judges
the new style on a photo that is not in the training data (the run's sample image, 256 px long
edge) against ``impasto stylize`` at its defaults on the same pair at the same size: content and
style distances and structure (``impasto.metrics``). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import SHARED, cpu_name
from impasto.fast.model import read_model_file, shipped_models
from impasto.fast.train import TrainConfig, train
from impasto.io.image import save_image, to_pil
from impasto.metrics import distances, ruler, structure

EDGE = 256  # the training run's sample size (fast.train._sample_input)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="composition_vii")
    p.add_argument("--photo", default="coffee.png")
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--at", default="25,50,100,200,400,800", help="steps at which to judge")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-2)
    args = p.parse_args()
    painting = next((SHARED / "images" / "style").glob(f"{args.style}.*"))
    photo = SHARED / "images" / "content" / args.photo
    work = Path(tempfile.mkdtemp())
    base = shipped_models()["multistyle6"]
    content_layers = tuple(read_model_file(base)["training"].get("content_layers", ("relu4_2",)))
    opt = work / "opt.png"
    subprocess.run([sys.executable, "-m", "impasto", "stylize", str(photo), str(painting), "-o", str(opt),
                    "--size", str(EDGE), "--quiet", "--seed", "0"], check=True)
    r = ruler()
    d_opt, s_opt = distances(opt, photo, painting, r), structure(opt, photo)
    out = work / "grown.pt"
    print(f"CPU: {cpu_name()}; multistyle6 + {args.style} (normalization parameters only), {args.size} px crops, "
          f"batch {args.batch_size}, lr {args.lr:g}, content at {','.join(content_layers)}; judged on {args.photo} "
          f"at {EDGE} px against the optimization")
    print(f"optimization: content {d_opt.content:.3f}, style {d_opt.style:.4f}, structure {s_opt:.2f}\n")
    print("| steps | minutes | content ratio | style ratio | structure ratio |")
    print("|---:|---:|---:|---:|---:|")
    at = {int(v) for v in args.at.split(",")}
    t0 = time.perf_counter()

    def judge(event) -> None:
        if event.step not in at:
            return
        row = event.tensor()  # the sample photo, then the model's styles in order: the new one last
        width = row.shape[-1] // (len(read_model_file(base)["styles"]) + 2)
        path = work / f"grown-{event.step}.png"
        save_image(to_pil(row[..., -width:]), path)
        d = distances(path, photo, painting, r)
        print(f"| {event.step} | {(time.perf_counter() - t0) / 60:.1f} | {d.content / d_opt.content:.2f} | "
              f"{d.style / d_opt.style:.2f} | {structure(path, photo) / s_opt:.2f} |", flush=True)

    config = TrainConfig.from_options(size=args.size, batch_size=args.batch_size, lr=args.lr, steps=max(at),
                                      max_minutes=args.minutes, workers=1, checkpoint_every=10**6,
                                      sample_every=10**6, content_layers=content_layers)
    train([str(painting)], [str(SHARED / "training" / "imagenet-sample")], out, config=config, base=str(base),
          sample=str(photo), callback=judge)
    print(f"\n(outputs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
