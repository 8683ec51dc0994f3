import importlib

import pytest
import torch

from impasto.errors import InputError, StylizeInterrupted
from impasto.progress import CancelToken
from impasto.universal import load_decoders
from impasto.universal.train import DecoderTrainingConfig, checkpoint_path, train_decoders

training = importlib.import_module("impasto.universal.train")
TINY = dict(levels=("relu1_1", "relu2_1"), size=32, batch_size=2, workers=0, device="cpu", checkpoint_every=3,
            lr=2e-3)


def test_decoders_train_lower_their_loss_and_load_back(tmp_path, photos):
    events = []
    out = tmp_path / "d.pt"
    trained = train_decoders([photos], out, config=DecoderTrainingConfig(**TINY, steps=12), callback=events.append)
    first, last = events[0].losses, events[-1].losses
    for level in ("relu1_1", "relu2_1"):
        assert last[f"{level}.pixel"] < first[f"{level}.pixel"], (first, last)
    loaded = load_decoders(out)
    assert loaded.levels == ("relu1_1", "relu2_1") and loaded.width == 0.5
    assert loaded.training_record["steps_done"] == 12 and not checkpoint_path(out).exists()
    feats = torch.rand(1, 64, 16, 16) * 50
    assert torch.allclose(loaded.decoders["relu1_1"](feats), trained.decoders["relu1_1"](feats).detach(), atol=0.05)


def test_cancel_keeps_a_checkpoint_and_resume_goes_on(tmp_path, photos):
    out, token, seen = tmp_path / "d.pt", CancelToken(), []

    def on_step(event):
        seen.append(event.step)
        if event.step == 2:
            token.cancel()

    cfg = DecoderTrainingConfig(**TINY, steps=4)
    with pytest.raises(StylizeInterrupted):
        train_decoders([photos], out, config=cfg, callback=on_step, cancel=token)
    assert checkpoint_path(out).exists() and not out.exists()
    resumed = []
    train_decoders([photos], out, config=cfg, resume=True, callback=lambda e: resumed.append(e.step))
    assert seen == [1, 2] and resumed == [3, 4] and out.exists()
    with pytest.raises(InputError, match="exists; pass force"):
        train_decoders([photos], out, config=cfg)
    with pytest.raises(InputError, match=r"nothing to resume"):
        train_decoders([photos], tmp_path / "other.pt", config=cfg, resume=True)


@pytest.mark.parametrize(("options", "words"), [
    ({"levels": ("relu9_1",)}, "levels must be distinct names"),
    ({"size": 40}, "size must be a multiple of 16"),
    ({"width": 0}, "width must be"),
])
def test_bad_settings_are_refused_in_one_line(options, words):
    with pytest.raises(InputError, match=words):
        DecoderTrainingConfig(**{**TINY, **options})


def test_a_training_step_keeps_every_tensor_on_the_batch_device(tmp_path, photos, monkeypatch):
    """As for the fast models (tests/fast/test_devices.py): the meta device fails on any tensor left
    on the CPU."""
    monkeypatch.setattr(training, "resolve_device", lambda name: torch.device("meta"))
    run = training._setup([photos], tmp_path / "d.pt", DecoderTrainingConfig(**TINY, precision="fp32"), False, False)
    meta = torch.device("meta")
    assert {p.device for p in run.decoders.parameters()} == {meta}
    assert {b.device for o in run.objectives.values() for b in o.buffers()} == {meta}
    names, values = run.forward_backward(run.next_batch())  # the loop's own calls
    run.optimizer.step()
    assert values.device == meta and names[-1] == "total"
    assert all(p.grad is not None and p.grad.device == meta for p in run.decoders.parameters())


def test_init_starts_from_a_decoder_file_with_a_fresh_optimizer(tmp_path, photos):
    first = tmp_path / "a.pt"
    train_decoders([photos], first, config=DecoderTrainingConfig(**TINY, steps=3))
    events = []
    again = train_decoders([photos], tmp_path / "b.pt", config=DecoderTrainingConfig(**TINY, steps=2), init=first,
                           callback=events.append)
    assert again.training_record["init"] == "a.pt" and again.training_record["steps_done"] == 2
    # the card keeps every earlier leg, oldest first, however many times the file is trained on
    third = train_decoders([photos], tmp_path / "d.pt", config=DecoderTrainingConfig(**TINY, steps=1),
                           init=tmp_path / "b.pt")
    assert [leg["steps_done"] for leg in third.training_record["legs"]] == [3, 2]
    assert third.training_record["init"] == "b.pt" and third.training_record["steps_done"] == 1
    with pytest.raises(InputError, match=r"has levels relu1_1, relu2_1 at width 0\.5; this run relu1_1 at 0\.5"):
        train_decoders([photos], tmp_path / "c.pt", config=DecoderTrainingConfig(**{**TINY, "levels": ("relu1_1",)}),
                       init=first)
