"""Snapshots: a run stopped mid-way continues from where it was, at the same scale and step."""

import errno

import pytest
import torch

from impasto.errors import Interrupted, WriteError
from impasto.metrics import distances
from impasto.optimize import SnapshotFile, load_snapshot, save_snapshot, stylize
from impasto.progress import CancelToken

RUN = {"size": 96, "scales": 2, "iterations": 12, "initial_iterations": 24, "seed": 0}


class Recorder:
    def __init__(self, stop_at: float | None = None) -> None:
        self.steps: list[int] = []
        self.works: list[float] = []
        self.cancel = CancelToken()
        self.stop_at = stop_at

    def __call__(self, event) -> None:
        self.steps.append(event.step)
        self.works.append(event.work)
        if self.stop_at is not None and event.work >= self.stop_at:
            self.cancel.cancel()


def test_a_run_stopped_mid_way_resumes_at_its_scale_and_step_and_ends_close_to_a_whole_run(tmp_path, small_images):
    content, style = small_images
    whole = Recorder()
    reference = stylize(content, style, callback=whole, output="tensor", **RUN)
    total = whole.steps[-1]

    snaps = SnapshotFile(tmp_path / "run.snap", every=1e-6)  # every step: the latest is where it stopped
    first = Recorder(stop_at=0.6)
    with pytest.raises(Interrupted):
        stylize(content, style, callback=first, cancel=first.cancel, snapshots=snaps, **RUN)
    saved = load_snapshot(tmp_path / "run.snap")
    assert saved is not None and saved.scale == 1 and 0.5 < saved.work <= first.works[-1]

    again, resumed = Recorder(), SnapshotFile(tmp_path / "run.snap")
    out = stylize(content, style, callback=again, snapshots=resumed, output="tensor", **RUN)
    assert resumed.resumed_from == pytest.approx(saved.work)
    assert again.steps[0] == 24 + saved.step + 1  # the next step after the snapshot's, not step 1
    assert again.steps[-1] == total and again.works[0] > 0.5 and again.works[-1] == pytest.approx(1.0)
    assert len(first.steps) + len(again.steps) < 1.2 * total  # far from two whole runs
    ref, got = distances(reference, content, style), distances(out, content, style)
    assert got.content == pytest.approx(ref.content, rel=0.25, abs=0.02)
    assert got.style == pytest.approx(ref.style, rel=0.25)


def test_a_snapshot_at_a_scale_end_resumes_at_the_next_scale(tmp_path, small_images):
    content, style = small_images
    snaps = SnapshotFile(tmp_path / "run.snap", every=0)  # scale ends only
    first = Recorder(stop_at=0.4)  # the coarse scale ends at about a fifth of the work
    with pytest.raises(Interrupted):
        stylize(content, style, callback=first, cancel=first.cancel, snapshots=snaps, **RUN)
    saved = load_snapshot(tmp_path / "run.snap")
    assert (saved.scale, saved.step) == (0, 24)
    again = Recorder()
    stylize(content, style, callback=again, snapshots=SnapshotFile(tmp_path / "run.snap"), **RUN)
    assert again.steps[0] == 25


def test_a_snapshot_of_another_run_or_a_broken_one_is_ignored(tmp_path, small_images):
    content, style = small_images
    snaps = SnapshotFile(tmp_path / "run.snap", every=1e-6)
    stopper = Recorder(stop_at=0.6)
    with pytest.raises(Interrupted):
        stylize(content, style, callback=stopper, cancel=stopper.cancel, snapshots=snaps, **RUN)
    other, rec = SnapshotFile(tmp_path / "run.snap"), Recorder()
    stylize(content, style, callback=rec, snapshots=other, **{**RUN, "size": 80})  # another pyramid
    assert other.resumed_from is None and rec.steps[0] == 1
    (tmp_path / "run.snap").write_bytes(b"not a snapshot")
    assert load_snapshot(tmp_path / "run.snap") is None and load_snapshot(tmp_path / "none.snap") is None


def test_a_snapshot_that_cannot_be_written_fails_cleanly_and_keeps_the_last_one(tmp_path, small_images, monkeypatch):
    content, style = small_images
    snaps = SnapshotFile(tmp_path / "run.snap", every=1e-6)
    stopper = Recorder(stop_at=0.3)
    with pytest.raises(Interrupted):
        stylize(content, style, callback=stopper, cancel=stopper.cancel, snapshots=snaps, **RUN)
    before = load_snapshot(tmp_path / "run.snap")

    def full_disk(obj, f, *args, **kwargs):  # torch.save writing into the temporary file: no space left
        raise OSError(errno.ENOSPC, "No space left on device", str(f))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(WriteError, match="No space left on device") as info:
        stylize(content, style, snapshots=SnapshotFile(tmp_path / "run.snap", every=1e-6), **RUN)
    assert "run.snap" in str(info.value) and ".impasto-" not in str(info.value)
    after = load_snapshot(tmp_path / "run.snap")
    assert after is not None and (after.scale, after.step) == (before.scale, before.step)
    assert torch.equal(after.image, before.image)
    assert not list(tmp_path.glob(".impasto-*"))  # no temporary file left


def test_save_and_load_round_trip(tmp_path):
    from impasto.optimize import Snapshot

    snap = Snapshot(scale=1, step=7, size=(4, 6), image=torch.rand(1, 3, 4, 6), work=0.42)
    save_snapshot(snap, tmp_path / "s.snap")
    back = load_snapshot(tmp_path / "s.snap")
    assert (back.scale, back.step, back.size, back.work) == (1, 7, (4, 6), 0.42)
    assert torch.equal(back.image, snap.image)
