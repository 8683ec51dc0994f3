"""Distributed training: two CPU processes under torchrun (gloo) train one model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from impasto.cli import main

ENTRY = Path(__file__).with_name("ddp_entry.py")


def torchrun(*argv: object, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", *map(str, argv)], capture_output=True, text=True, timeout=timeout)


def test_two_processes_train_one_model_written_once(tmp_path, photos, styles):
    out, record = tmp_path / "m.pt", tmp_path / "ranks"
    record.mkdir()
    done = torchrun(ENTRY, photos, ",".join(map(str, styles)), out, record)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = {p.stem: json.loads(p.read_text()) for p in record.glob("*.json")}
    assert set(ranks) == {"0", "1"}
    assert ranks["0"]["digest"] == ranks["1"]["digest"]  # DDP kept the ranks' weights identical
    assert ranks["0"]["saves"] == [str(out)] and ranks["1"]["saves"] == []  # rank 0 alone writes the model
    assert ranks["0"]["steps"] == ranks["1"]["steps"] == 3 and ranks["0"]["processes"] == 2
    assert out.exists() and not Path(str(out) + ".ckpt").exists()


def test_a_world_size_that_does_not_divide_the_batch_is_refused_before_any_work(tmp_path, photos, styles):
    out = tmp_path / "m.pt"
    done = torchrun("-m", "impasto", "train", *styles, "--data", photos, "-o", out, "--batch-size", "3",
                    "--size", "32", "--steps", "2", "--width", "0.125", "--blocks", "1", "--workers", "0",
                    "--device", "cpu", "--quiet")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("impasto: error")]
    assert lines and all(line == lines[0] for line in lines), done.stderr[-2000:]
    assert "--batch-size 3 is not divisible by the 2 processes of this run" in lines[0]
    assert not out.exists() and not Path(str(out) + ".ckpt").exists()


def test_resume_with_other_settings_names_them(tmp_path, photos, styles, capsys):
    out = tmp_path / "m.pt"
    base = ["train", *map(str, styles), "--data", str(photos), "-o", str(out), "--size", "32", "--width", "0.125",
            "--blocks", "1", "--workers", "0", "--batch-size", "2", "--checkpoint-every", "1", "--quiet"]
    ckpt = Path(str(out) + ".ckpt")
    from impasto.fast import TrainConfig, train

    def stop_after_two(event):
        if event.step == 2:
            raise KeyboardInterrupt

    # a run interrupted after two steps leaves its checkpoint
    with pytest.raises(KeyboardInterrupt):  # StylizeInterrupted
        train([str(s) for s in styles], [photos], out, callback=stop_after_two,
                       config=TrainConfig.from_options(size=32, width=0.125, blocks=1, workers=0,
                                                                batch_size=2, checkpoint_every=1))
    assert ckpt.exists()
    capsys.readouterr()
    code = main([*base, "--resume", "--style-weight", "30", "--lr", "0.01"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "other settings: --lr 0.001 (now 0.01), --style-weight default (now 30.0)" in err[0]
    assert ckpt.exists() and not out.exists()
    assert main([*base, "--resume", "--steps", "3"]) == 0  # the same settings (steps may change) resume
    assert out.exists()
