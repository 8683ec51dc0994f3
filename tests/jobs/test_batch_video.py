"""Videos in a batch: clips whose streams start late, and a batch interrupted mid-video resumes
from the frames it kept."""

from __future__ import annotations

from typing import Any

import pytest

from impasto.jobs.batch import run_batch
from impasto.jobs.recipe import Recipe
from impasto.methods import register, unregister
from tests.methods.test_plugin import EdgesMethod, EdgesPainter

pytest.importorskip("av")
pytest.importorskip("cv2")

from tests.video.clips import make_clip, streams
from tests.video.test_video import _audio_seconds

NAME = "test-counted-edges"


class Counter:
    painted = 0
    stop_after: int | None = None


class CountedPainter(EdgesPainter):
    """Edges, counting the frames it paints; Ctrl-C after ``Counter.stop_after`` of them."""

    def image(self, content: Any, **kwargs: Any) -> Any:
        if Counter.stop_after is not None and Counter.painted >= Counter.stop_after:
            raise KeyboardInterrupt
        Counter.painted += 1
        return super().image(content, **kwargs)


class CountedEdges(EdgesMethod):
    name = NAME

    def load(self, options: Any, styles: Any, *, cache: dict | None = None, **inputs: Any) -> CountedPainter:
        return CountedPainter(options.get("size"), 1.0)


@pytest.fixture
def counted():
    register(CountedEdges())
    Counter.painted, Counter.stop_after = 0, None
    yield Counter
    unregister(NAME)


@pytest.mark.parametrize("ext", [".mp4", ".ts"])
def test_a_batch_stylizes_late_starting_clips_whole_with_their_sound(tmp_path, ext, counted):
    photos = tmp_path / "in"
    photos.mkdir()
    make_clip(photos / f"late{ext}", frames=15, fps=10, video_start=0.5, audio_start=0.3,
              container="mpegts" if ext == ".ts" else None)
    report = run_batch(photos, [], tmp_path / "out", Recipe(NAME, {"size": 32}))
    assert report.done == 1 and not report.failed, report.failed
    out = tmp_path / "out" / "late.mp4"  # MPEG-TS becomes mp4
    assert streams(out)["frames"] == 15 and counted.painted == 15
    # the sound from the first frame on (the clip's runs 0.3-1.8 s, its video 0.5-2.0 s), within about a frame
    assert abs(_audio_seconds(out) - 1.3) < 0.1


def test_an_interrupted_batch_video_resumes_from_its_kept_frames(tmp_path, counted):
    photos = tmp_path / "in"
    photos.mkdir()
    make_clip(photos / "clip.ts", frames=10, fps=10, video_start=0.5, audio_start=0.3, container="mpegts")
    out = tmp_path / "out"
    counted.stop_after = 4
    with pytest.raises(KeyboardInterrupt):
        run_batch(photos, [], out, Recipe(NAME, {"size": 32}))
    work = out / ".clip.mp4.work"
    assert len(list(work.rglob("frame_*.png"))) == 4 and not (out / "clip.mp4").exists()
    counted.painted, counted.stop_after = 0, None
    report = run_batch(photos, [], out, Recipe(NAME, {"size": 32}))
    assert report.done == 1 and counted.painted == 6  # only the frames the first run did not keep
    assert streams(out / "clip.mp4")["frames"] == 10
    assert abs(_audio_seconds(out / "clip.mp4") - 0.8) < 0.1  # sound 0.3-1.3 s, from the first frame at 0.5 s
    assert not work.exists()  # gone once the output is written


def test_the_service_stylizes_a_late_starting_clip_whole(tmp_path, counted):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import make_client, run_queued

    clip = make_clip(tmp_path / "late.ts", frames=12, fps=10, video_start=0.5, audio_start=0.3,
                     container="mpegts").read_bytes()
    with make_client(tmp_path) as client:
        response = client.post("/api/jobs", data={"method": NAME, "size": "32"},
                               files=[("content", ("late.ts", clip, "video/mp2t"))])
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        run_queued(client)
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done", job
        (tmp_path / "result.mp4").write_bytes(client.get(f"/api/jobs/{job_id}/result").content)
    assert streams(tmp_path / "result.mp4")["frames"] == 12
    assert abs(_audio_seconds(tmp_path / "result.mp4") - 1.0) < 0.1  # sound 0.3-1.5 s, from the first frame


def test_a_video_whose_frames_cannot_be_written_fails_in_one_line_keeping_its_frames(tmp_path, counted,
                                                                                      monkeypatch):
    """A full disk at frame 5 of 8: the task fails with the reason, the 4 frames before are whole."""
    import errno

    import impasto.io.atomic as atomic

    photos = tmp_path / "in"
    photos.mkdir()
    make_clip(photos / "clip.mp4", frames=8)
    real_open, written = open, []

    def full_at_frame_5(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith(".png"):
            written.append(path)
            if len(written) >= 5:
                fh.close()
                raise OSError(errno.ENOSPC, "No space left on device")
        return fh

    monkeypatch.setattr(atomic, "open", full_at_frame_5, raising=False)
    report = run_batch(photos, [], tmp_path / "out", Recipe(NAME, {"size": 32}))
    assert report.done == 0 and len(report.failed) == 1
    reason = report.failed[0][1]
    assert "No space left on device" in reason and "\n" not in reason and ".impasto-" not in reason
    kept = sorted((tmp_path / "out" / ".clip.mp4.work").rglob("frame_*.png"))
    assert len(kept) == 4
    from PIL import Image

    for frame in kept:
        Image.open(frame).load()  # each kept frame is whole
    assert not list((tmp_path / "out").rglob(".impasto-*"))
    monkeypatch.undo()
    assert run_batch(photos, [], tmp_path / "out", Recipe(NAME, {"size": 32})).done == 1  # and it resumes
