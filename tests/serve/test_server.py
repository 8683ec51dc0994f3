"""The real server: a job survives kill -9 of the server and its worker."""

from __future__ import annotations

import io
import sqlite3
import time
import uuid

import pytest
from PIL import Image

from tests.serve.conftest import jpeg
from tests.serve.server import Server


def post_job(url: str, fields: dict[str, str], files: dict[str, bytes]) -> dict:
    """A multipart POST with the standard library only (the server under test is a separate process)."""
    import json
    import urllib.request

    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in fields.items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\n'
                   f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(url + "/api/jobs", data=body.getvalue(), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for(server: Server, job_id: str, ok, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.get(f"/api/jobs/{job_id}")
        if ok(job):
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id}: {job}")


def test_a_job_killed_mid_way_resumes_from_its_snapshot_after_a_restart(tmp_path):
    """kill -9 of the server and its worker around the middle of an optimize job; after a restart
    the job finishes, resumed from past a third of its work, with far fewer steps than two runs and
    a result close to an uninterrupted run's."""
    from impasto.gallery import painting
    from impasto.jobs.recipe import Recipe, Runner
    from impasto.metrics import distances
    from impasto.optimize import load_snapshot

    data, photo = tmp_path / "data", jpeg(size=(200, 160))
    fields = {"style": "the_scream", "size": "128", "iterations": "60", "seed": "0"}  # one scale of 60 steps
    server = Server(data, args=("--snapshot-every", "0.5")).start()
    try:
        job_id = post_job(server.url, fields, {"content": photo})["id"]
        snapshot = data / "jobs" / job_id / "snapshot-a1.pt"  # the first attempt's

        def past_a_third(job: dict) -> bool:
            saved = load_snapshot(snapshot) if job["progress"] > 0.4 else None
            return job["status"] == "running" and saved is not None and saved.work > 0.35

        wait_for(server, job_id, past_a_third, 120)
    finally:
        server.kill9()
    with sqlite3.connect(data / "jobs.sqlite") as con:  # the crash left it mid-run
        assert con.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == "running"
    with Server(data, server.port) as again:
        job = wait_for(again, job_id, lambda j: j["status"] not in ("queued", "running"), 240)
    assert job["status"] == "done", job  # 1. it finishes
    assert job["attempts"] == 2 and job["resumed_from"] > 0.3  # 2. from past a third of its work
    (tmp_path / "photo.jpg").write_bytes(photo)
    steps: list[int] = []
    reference = Runner().run(Recipe("optimize", job["options"]), tmp_path / "photo.jpg", [painting("the_scream")],
                             callback=lambda e: steps.append(e.step))
    assert job["steps"] < 1.6 * steps[-1]  # 3. far fewer steps than two whole runs (2.0)
    result = Image.open(data / "jobs" / job_id / "result-a2.png")  # written by the second attempt
    result.load()
    assert result.size == (128, 102)
    ref = distances(reference, tmp_path / "photo.jpg", painting("the_scream"))
    got = distances(result, tmp_path / "photo.jpg", painting("the_scream"))
    assert got.content == pytest.approx(ref.content, rel=0.15)  # 4. close to an uninterrupted run's
    assert got.style == pytest.approx(ref.style, rel=0.15)
    assert not list((data / "jobs" / job_id).glob(".impasto-*"))  # no half-written file left
    assert not snapshot.exists()  # a finished job's snapshot is removed


def workers_of(tmp_path) -> list[int]:
    """Pids of live worker processes whose data folder is under tmp_path."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().split(") ")[1][0]
        except (OSError, IndexError):
            continue
        if b"impasto.jobs.worker" in argv and str(tmp_path).encode() in b" ".join(argv) and state != "Z":
            found.append(int(proc.name))
    return found


def test_the_worker_exits_when_its_server_is_killed(tmp_path):
    import os
    import signal

    with Server(tmp_path / "data") as server:
        worker_pids = workers_of(tmp_path)
        assert len(worker_pids) == 1
        os.kill(server.proc.pid, signal.SIGKILL)  # the server alone; its worker must not linger
        server.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and workers_of(tmp_path):
            time.sleep(0.1)
        assert not workers_of(tmp_path), "the orphaned worker is still running"


def test_a_video_job_killed_mid_way_resumes_from_its_saved_frames(tmp_path):
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=12, size=(64, 80)).read_bytes()
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        job_id = post_job(server.url, {"style": "wave_crop", "size": "64"}, {"content": clip})["id"]
        wait_for(server, job_id, lambda j: j["message"].startswith(("frame 4 ", "frame 5 ", "frame 6 ")), 120)
    finally:
        server.kill9()
    kept = sorted((data / "jobs" / job_id / "result-a1.mp4.frames").glob("*.png"))
    assert len(kept) >= 4
    messages = set()
    with Server(data, server.port) as again:
        job = wait_for(again, job_id, lambda j: messages.add(j["message"]) or j["status"] not in ("queued", "running"),
                       240)
    assert job["status"] == "done", job
    assert any(f"{len(kept)} resumed" in m for m in messages), messages  # the kept frames were not redone
    assert job["resumed_from"] == pytest.approx(len(kept) / 12, abs=1e-3)  # the probe saw null here
    from tests.video.clips import streams

    assert streams(data / "jobs" / job_id / "result-a2.mp4")["frames"] == 12


def test_two_workers_survive_a_kill_9_of_one_and_no_job_runs_twice(tmp_path):
    """Two CPU workers; one is killed mid-job: its job is requeued and finished, the other worker's
    job is not run again, and every job finishes exactly once."""
    import os
    import signal
    from pathlib import Path

    import numpy as np

    log = tmp_path / "runs.log"
    env = {"IMPASTO_PLUGINS": "tests.serve.slow_plugin", "IMPASTO_TEST_LOG": str(log),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    photo = jpeg(size=(40, 32))
    with Server(tmp_path / "data", args=("--workers", "2"), env=env) as server:
        jobs = {tag: post_job(server.url, {"method": "test-slow", "steps": "100", "tag": tag},
                              {"content": photo})["id"] for tag in "abcd"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both workers busy, each a job well under way
            running = [server.get(f"/api/jobs/{i}") for i in jobs.values()]
            running = [j for j in running if j["status"] == "running" and j["progress"] > 0.1]
            if len({j["worker"] for j in running}) == 2:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError("two jobs never ran side by side")
        victim, survivor = running
        pids = {w["name"]: w["pid"] for w in server.get("/api/health")["workers"]}
        os.kill(pids[victim["worker"]], signal.SIGKILL)
        ended = {tag: wait_for(server, i, lambda j: j["status"] not in ("queued", "running"), 120)
                 for tag, i in jobs.items()}
        health = server.get("/api/health")
    assert all(j["status"] == "done" for j in ended.values()), ended
    tag_of = {i: tag for tag, i in jobs.items()}
    lines = [line.split() for line in log.read_text().splitlines()]
    starts = {tag: [pid for what, t, *_, pid in lines if what == "start" and t == tag] for tag in jobs}
    ends = {tag: [pid for what, t, *_, pid in lines if what == "end" and t == tag] for tag in jobs}
    assert all(len(ends[tag]) == 1 for tag in jobs), ends  # every job finished exactly once
    killed = tag_of[victim["id"]]
    assert len(starts[killed]) == 2 and ended[killed]["attempts"] == 2  # requeued and run again
    assert starts[killed][0] == str(pids[victim["worker"]]) != ends[killed][0]
    kept = tag_of[survivor["id"]]
    assert len(starts[kept]) == 1 and ended[kept]["attempts"] == 1  # the live worker's job: not run twice
    assert sorted(w["restarts"] for w in health["workers"]) == [0, 1] and all(w["alive"] for w in health["workers"])
    for job_id in jobs.values():  # the result is the photo's negative
        [written] = (tmp_path / "data" / "jobs" / job_id).glob("result*.png")  # one result, its attempt's
        result = np.asarray(Image.open(written).convert("RGB"), float)
        want = 255 - np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), float)
        assert np.abs(result - want).max() <= 1


def test_a_chunked_upload_is_refused_as_it_streams_past_the_limit(tmp_path):
    """No Content-Length: the real server answers 413 once the limit is passed, while the client
    is still sending, instead of spooling the whole body first."""
    import select
    import socket

    with Server(tmp_path / "data", args=("--max-upload-mb", "1")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        sent, answer = 0, b""
        chunk = b"x" * 65536
        while sent < 200 * 2**20:
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                break
        sock.settimeout(10)
        try:
            answer = sock.recv(65536)
        finally:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 20 * 2**20, sent  # refused within a few MB of the 1 MB limit, not after 200 MB
