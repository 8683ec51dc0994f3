"""Judge models while they train: ``python benchmarks/judge_checkpoint.py M.pt.ckpt [MODEL ...]``.

A training checkpoint (``OUTPUT.ckpt``, written every ``--checkpoint-every`` steps) holds the
network's weights as they are at that step, before any model file is written. This loads each
checkpoint's weights into a network of its own settings (width, blocks, resampling) and judges it
like ``benchmarks/fast.py --skip-speed --no-figure``: content, style, structure and lattice peaks at
512 px on the held-out photos, against the optimization's results kept in ``--opt-dir`` (made
there once if missing). Copy a checkpoint before judging it if its run is still going: the run
replaces the file every few minutes. Model files and shipped names are judged as they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fast import quality
from impasto.errors import InputError
from impasto.fast import load_model
from impasto.fast.model import StyleModel
from impasto.fast.train import read_checkpoint
from impasto.nets.transformer import TransformerNet


def from_checkpoint(path: Path) -> StyleModel:
    data = read_checkpoint(path)
    c = data["config"]
    net = TransformerNet(len(data["styles"]), width=c["width"], blocks=c["blocks"], upsample=c["upsample"],
                         downsample=c["downsample"])
    net.load_state_dict(data["net"])
    return StyleModel(net.eval(), list(data["styles"]), training={**c, "steps_done": data["step"]},
                      name=f"{path.name} (step {data['step']})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="checkpoints (*.ckpt), model files or shipped names")
    p.add_argument("--opt-dir", type=Path, default=Path("out/opt512"))
    args = p.parse_args()
    try:
        models = {spec: from_checkpoint(Path(spec)) if spec.endswith(".ckpt") else load_model(spec)
                  for spec in args.models}
    except (InputError, OSError) as exc:
        p.error(str(exc))
    if len({tuple(m.styles) for m in models.values()}) > 1:
        p.error("the models must have the same styles")
    args.opt_dir.mkdir(parents=True, exist_ok=True)
    quality(models, 512, args.opt_dir, figure=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
