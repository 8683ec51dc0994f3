"""Run by tests/fast/test_distributed.py under torchrun: train a tiny model, record what each rank did.

Each rank writes RANK.json into the folder given: its weights' checksum after the last step, and
whether it wrote the model file (StyleModel.save is wrapped to record calls).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from impasto.fast import model as model_module
from impasto.fast import train
from impasto.fast.train import TrainConfig


def main() -> int:
    photos, styles, out, record = sys.argv[1], sys.argv[2].split(","), Path(sys.argv[3]), Path(sys.argv[4])
    rank = os.environ["RANK"]
    saves = []
    original = model_module.StyleModel.save

    def save(self, path):
        saves.append(str(path))
        return original(self, path)

    model_module.StyleModel.save = save  # type: ignore[method-assign]
    config = TrainConfig.from_options(size=32, batch_size=4, steps=3, width=0.125, blocks=1, style_size=64,
                                      workers=0, checkpoint_every=2, sample_every=2, precision="fp32", device="cpu")
    trained = train(styles, [photos], out, config=config)
    digest = hashlib.sha256()
    for value in trained.net.state_dict().values():
        digest.update(value.detach().float().contiguous().numpy().tobytes())
    (record / f"{rank}.json").write_text(json.dumps({"digest": digest.hexdigest(), "saves": saves,
                                                     "steps": trained.training["steps_done"],
                                                     "processes": trained.training["processes"]}))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
