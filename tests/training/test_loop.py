"""The one training loop (issue 36): both trainers plug into it, and it holds the step, the
non-finite guard, the checkpoint format (the older two read) and what a resume may change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from impasto.errors import InputError, NonFiniteLossError
from impasto.runtime import Ranks
from impasto.training import (
    LoopSettings,
    LoopState,
    NonFiniteStepWarning,
    Task,
    check_resume,
    read_checkpoint,
    run,
    save_checkpoint,
    step,
)

ROOT = Path(__file__).resolve().parents[2]


class Line(Task):
    """A one-weight model fitting y = 2x, whose gradient can be poisoned at chosen steps."""

    kind, what = "line", "line"

    def __init__(self, poison=(), lose_weights_at=None):
        self.net = torch.nn.Linear(1, 1, bias=False)
        self.net.weight.data.zero_()
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.5)
        self.poison, self.lose_weights_at, self.calls = set(poison), lose_weights_at, 0

    def next_batch(self):
        return torch.linspace(-1, 1, 8)[:, None]

    def forward_backward(self, batch):
        self.calls += 1
        if self.calls == self.lose_weights_at:
            self.net.weight.data.fill_(float("nan"))
        loss = (self.net(batch) - 2 * batch).square().mean()
        if self.calls in self.poison:  # a finite loss whose gradient is not
            loss = loss + 0 * (self.net.weight - self.net.weight.detach()).sum().sqrt()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        finite = torch.isfinite(self.net.weight.grad).all()
        return ["fit", "total"], torch.stack([loss.detach(), loss.detach(), finite.float()])

    def diagnose(self, batch):
        return ["fit"]


def test_the_loop_trains_checkpoints_and_reports_every_step():
    task, state, saved, events = Line(), LoopState(), [], []
    run(task, state, LoopSettings(steps=20, checkpoint_every=5), ranks=Ranks(), checkpoint=lambda: saved.append(
        state.step), callback=events.append)
    assert state.step == 20 and saved == [5, 10, 15, 20] and [e.step for e in events] == list(range(1, 21))
    assert abs(task.net.weight.item() - 2) < 0.05 and events[-1].losses["fit"] < events[0].losses["fit"]


def test_a_non_finite_step_is_skipped_named_counted_and_too_many_stop_the_run():
    task, state = Line(poison={3}), LoopState()
    weights = {}

    def seen(event):
        weights[event.step] = task.net.weight.item()

    with pytest.warns(NonFiniteStepWarning, match=r"step 3 skipped: the gradient of fit is not finite \(1 skipped"):
        run(task, state, LoopSettings(steps=5, checkpoint_every=100), ranks=Ranks(), checkpoint=lambda: None,
            callback=seen)
    assert state.skipped_steps == [3] and state.step == 5 and weights[3] == weights[2]  # step 3 changed nothing
    stuck = Line(poison={2, 3, 4})
    with pytest.warns(NonFiniteStepWarning), pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        run(stuck, LoopState(), LoopSettings(steps=9, checkpoint_every=100, max_skipped=3), ranks=Ranks(),
            checkpoint=lambda: None)
    lost = Line(lose_weights_at=2)
    with pytest.raises(NonFiniteLossError, match="diverged at step 2: the line's weights are not finite"):
        run(lost, LoopState(), LoopSettings(steps=9, checkpoint_every=100), ranks=Ranks(), checkpoint=lambda: None)


def test_a_step_asked_to_stop_says_so_and_still_steps():
    task = Line()
    before = task.net.weight.item()
    out = step(task, task.next_batch(), stop=True)
    assert out["stop"] == 1.0 and out["skipped"] == 0.0 and task.net.weight.item() != before


def test_one_checkpoint_format_and_the_older_two_are_read(tmp_path):
    task, state = Line(), LoopState(step=7, seconds=1.5, skipped_steps=[3])
    path = tmp_path / "m.pt.ckpt"
    save_checkpoint(path, kind="line", state=state, config={"lr": 0.1}, net=task.net, optimizer=task.optimizer,
                    extra={"styles": ["a"]})
    data = read_checkpoint(path, "line")
    assert (data["step"], data["seconds"], data["skipped_steps"], data["extra"]) == (7, 1.5, [3], {"styles": ["a"]})
    assert torch.equal(data["model"]["weight"], task.net.weight.detach())
    with pytest.raises(InputError, match="is a line checkpoint, not a fast one"):
        read_checkpoint(path, "fast")
    old_fast, old_decoders = tmp_path / "fast.ckpt", tmp_path / "decoders.ckpt"
    torch.save({"format": "impasto-checkpoint", "version": 1, "step": 4, "seconds": float("nan"), "styles": ["x"],
                "config": {}, "net": {"w": torch.ones(1)}, "optimizer": {}}, old_fast)
    torch.save({"format": "impasto-decoders-checkpoint", "version": 1, "step": 5, "seconds": 2.0, "config": {},
                "decoders": {"w": torch.zeros(1)}, "optimizer": {}}, old_decoders)
    fast = read_checkpoint(old_fast, "fast")
    assert fast["extra"] == {"styles": ["x"]} and fast["seconds"] == 0.0 and torch.equal(fast["model"]["w"],
                                                                                        torch.ones(1))
    assert read_checkpoint(old_decoders, "decoders")["step"] == 5
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        read_checkpoint(tmp_path / "junk.ckpt")


def test_the_shipped_models_resume_checkpoint_still_reads():
    data = read_checkpoint(ROOT / "benchmarks" / "checkpoints" / "multistyle6-lattice1000.pt.ckpt", "fast")
    assert len(data["extra"]["styles"]) == 6 and data["step"] > 0 and data["model"] and data["optimizer"]


def test_a_resume_may_change_how_long_and_where_not_what_it_learns(tmp_path):
    saved = {"lr": 0.001, "steps": 10, "device": "cpu", "style_weight": None}
    check_resume(tmp_path / "c", saved, {**saved, "steps": 20, "device": "cuda", "max_skipped": 9})
    with pytest.raises(InputError, match=r"other settings: lr 0.001 \(now 0.01\), style_weight default \(now 30\)"):
        check_resume(tmp_path / "c", saved, {**saved, "lr": 0.01, "style_weight": 30})


def test_decoder_training_skips_a_non_finite_step_through_the_shared_guard(tmp_path, photos, monkeypatch):
    from impasto.losses.objective import PixelTerm
    from impasto.universal.train import DecoderTrainingConfig, train_decoders

    real = PixelTerm.forward
    calls = []

    def poisoned(self, image, features, context=None):  # the second step's pixel terms: finite, NaN gradient
        calls.append(1)
        value = real(self, image, features, context)
        return value + 0 * (image - image.detach()).sum().sqrt() if len(calls) in (3, 4) else value

    monkeypatch.setattr(PixelTerm, "forward", poisoned)
    cfg = DecoderTrainingConfig(levels=("relu1_1", "relu2_1"), size=32, batch_size=2, workers=0, device="cpu",
                                steps=3, precision="fp32")
    with pytest.warns(NonFiniteStepWarning, match="step 2 skipped: the gradient of"):
        trained = train_decoders([photos], tmp_path / "d.pt", config=cfg)
    assert trained.training_record["skipped_steps"] == [2] and trained.training_record["steps_done"] == 3


def test_decoders_train_under_torchrun_as_one_model_written_once(tmp_path, photos):
    out, record = tmp_path / "d.pt", tmp_path / "ranks"
    record.mkdir()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           str(Path(__file__).with_name("ddp_decoders.py")), str(photos), str(out), str(record)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = {p.stem: json.loads(p.read_text()) for p in record.glob("*.json")}
    assert set(ranks) == {"0", "1"} and ranks["0"]["digest"] == ranks["1"]["digest"]
    assert ranks["0"]["saves"] == [str(out)] and ranks["1"]["saves"] == []
    assert ranks["0"]["steps"] == ranks["1"]["steps"] == 3 and ranks["0"]["processes"] == 2
    assert out.exists() and not Path(str(out) + ".ckpt").exists()


def test_the_card_names_its_data_with_a_hash_of_the_photo_list_and_its_terms(tmp_path, photos):
    """The same photos give the same hash wherever they lie; another list another hash; the terms
    are the trainer's words (a decoder run's card carries them), never guessed."""
    import shutil

    from impasto.io.photos import find_images
    from impasto.training import data_card
    from impasto.universal.train import DecoderTrainingConfig, train_decoders

    files = find_images([photos])[0]
    copy = shutil.copytree(photos, tmp_path / "elsewhere")
    card = data_card([photos], files, "  CC0  ")
    assert card == {"folders": [photos.name], "images": len(files), "list_sha256": card["list_sha256"],
                    "terms": "CC0"}
    assert data_card([copy], find_images([copy])[0], None)["list_sha256"] == card["list_sha256"]
    assert data_card([photos], files[1:], None)["list_sha256"] != card["list_sha256"]
    assert data_card([photos], files, " ")["terms"].startswith("not stated")
    decoders = train_decoders([photos], tmp_path / "d.pt", data_terms="the photographers' CC BY 4.0",
                              config=DecoderTrainingConfig(levels=("relu1_1",), size=32, batch_size=2, steps=1,
                                                           workers=0, precision="fp32"))
    assert decoders.training_record["data"] == {**card, "terms": "the photographers' CC BY 4.0"}


def test_trained_steps_sums_every_leg_a_card_records():
    from impasto.training import last_leg, trained_steps

    nested = {"lr": 1e-4, "steps_done": 5, "init_training": {"lr": 3e-4, "steps_done": 7, "init_training": {
        "lr": 1e-3, "steps_done": 11}}}
    listed = {"lr": 1e-4, "steps_done": 5, "device": "cpu", "legs": [{"steps_done": 7}, {"steps_done": 11}]}
    summary = {"steps_done": 23, "legs": [{"steps_done": 7, "lr": 1}, {"steps_done": 16, "lr": 1, "device": "cuda"}]}
    assert trained_steps(nested) == 23 and trained_steps(listed) == 23 and trained_steps(summary) == 23
    assert last_leg(listed)["device"] == "cpu" and last_leg(summary)["device"] == "cuda"
