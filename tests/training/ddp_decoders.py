"""Run by tests/training/test_loop.py under torchrun: train tiny decoders, record what each rank did
(its weights' checksum after the last step, and whether it wrote the decoder file)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from impasto.universal import model as model_module
from impasto.universal.train import DecoderTrainingConfig, train_decoders


def main() -> int:
    photos, out, record = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    saves = []
    original = model_module.DecoderSet.save

    def save(self, path):
        saves.append(str(path))
        return original(self, path)

    model_module.DecoderSet.save = save  # type: ignore[method-assign]
    config = DecoderTrainingConfig(levels=("relu1_1", "relu2_1"), size=32, batch_size=4, steps=3, workers=0,
                                   device="cpu", precision="fp32", checkpoint_every=2)
    trained = train_decoders([photos], out, config=config)
    digest = hashlib.sha256()
    for value in trained.state_dict().values():
        digest.update(value.detach().float().contiguous().numpy().tobytes())
    record_ = trained.training_record
    (record / f"{os.environ['RANK']}.json").write_text(json.dumps({
        "digest": digest.hexdigest(), "saves": saves, "steps": record_["steps_done"],
        "processes": record_["processes"]}))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
