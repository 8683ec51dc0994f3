"""Full disks and failed writes: one line, exit 1, no partial file, inputs untouched; in the service
the job fails with the reason and the server goes on."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import impasto.io.atomic as atomic
from impasto.cli import main
from impasto.errors import WriteError
from impasto.io.image import save_image

SMALL = ["--size", "128", "--iterations", "2", "--quiet"]


def digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4k", read_only: bool = False):
    """A tmpfs of ``size`` at ``path`` (skips where mounting is not allowed: not root, no CAP_SYS_ADMIN)."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.decode().strip()[:80]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def full_disk_after(limit: int, suffix: str = ""):
    """An ``open`` for impasto.io.atomic whose files (those ending in ``suffix``) raise ENOSPC once
    ``limit`` bytes are written, as a write(2) on a full disk does."""
    real_open = open

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "w" not in mode or not str(path).endswith(suffix):
            return fh
        real_write, total = fh.write, [0]

        def write(data):
            total[0] += len(data)
            if total[0] > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(data)

        fh.write = write
        return fh

    return fake_open


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_stylize_onto_a_full_filesystem_fails_in_one_line_and_leaves_nothing(tmp_path, small_images, capsys):
    content, style = small_images
    before = digest(content, style)
    with small_filesystem(tmp_path / "small") as disk:
        code = main(["stylize", str(content), str(style), "-o", str(disk / "out.png"), *SMALL])
        err = one_line_error(capsys)
        assert code == 1 and "No space left on device" in err and "out.png" in err and ".impasto-" not in err
        assert os.listdir(disk) == []  # no partial output, no temporary file
    assert digest(content, style) == before


def test_stylize_into_a_read_only_folder_fails_in_one_line(tmp_path, small_images, capsys):
    content, style = small_images
    with small_filesystem(tmp_path / "ro", read_only=True) as disk:
        code = main(["stylize", str(content), str(style), "-o", str(disk / "out.png"), *SMALL])
        err = one_line_error(capsys)
        assert code == 1 and "Read-only file system" in err and "out.png" in err


def test_a_full_disk_at_the_file_layer_keeps_the_old_output_and_the_inputs(tmp_path, small_images, capsys,
                                                                          monkeypatch):
    content, style = small_images
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier result")
    before = digest(content, style)
    monkeypatch.setattr(atomic, "open", full_disk_after(1000), raising=False)
    code = main(["stylize", str(content), str(style), "-o", str(out), *SMALL])
    err = one_line_error(capsys)
    assert code == 1 and err == f"impasto: error: cannot write {str(out)!r}: No space left on device"
    assert out.read_bytes() == b"an earlier result"  # replaced only by a whole file
    assert not list(tmp_path.glob(".impasto-*"))
    assert digest(content, style) == before


def test_an_output_folder_that_vanishes_mid_run_fails_in_one_line(tmp_path, small_images):
    content, style = small_images
    folder, log = tmp_path / "gone", tmp_path / "run.jsonl"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "stylize", str(content), str(style), "-o",
                             str(folder / "out.png"), "--size", "128", "--iterations", "200", "--quiet",
                             "--log", str(log)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    shutil.rmtree(folder)  # the folder goes while the run goes on
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "No such file or directory" in err and "out.png" in err


def test_save_image_raises_write_error_naming_the_target(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(atomic, "open", full_disk_after(10), raising=False)
    with pytest.raises(WriteError) as info:
        save_image(torch.rand(1, 3, 16, 16), tmp_path / "x.png")
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert str(info.value) == f"cannot write {str(tmp_path / 'x.png')!r}: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_job_whose_result_cannot_be_written_fails_cleanly_and_the_service_goes_on(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import TINY_JOB, jpeg, make_client, run_queued

    def post(client):
        response = client.post("/api/jobs", data={**TINY_JOB, "style": "starry_night"},
                               files=[("content", ("photo.jpg", jpeg(), "image/jpeg"))])
        assert response.status_code == 202, response.text
        return response.json()["id"]

    with make_client(tmp_path) as client:
        job_id = post(client)
        with monkeypatch.context() as patch:
            patch.setattr(atomic, "open", full_disk_after(100, ".png"), raising=False)  # the result, not previews
            run_queued(client)
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "failed"
        assert job["error"] == "cannot write 'result-a1.png': No space left on device"  # no server path in it
        folder = tmp_path / "data" / "jobs" / job_id
        assert not list(folder.glob("result*")) and not list(folder.glob(".impasto-*"))
        assert not list(folder.glob("snapshot*"))
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 404  # a failed job has no result
        assert client.get("/api/health").status_code == 200
        again = post(client)  # space again: the next job is done, the store is sound
        run_queued(client)
        assert client.get(f"/api/jobs/{again}").json()["status"] == "done"
        assert {j["id"]: j["status"] for j in client.get("/api/jobs").json()} == {job_id: "failed", again: "done"}
