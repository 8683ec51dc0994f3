"""The service on several machines: web processes and workers sharing one PostgreSQL queue and one
data folder (issue 43). A real PostgreSQL server (tests/conftest.py), real processes, no mocks."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import TINY_JOB, jpeg, make_client
from tests.serve.server import Server

pytest.importorskip("psycopg")
ROOT = Path(__file__).resolve().parents[2]


def submit(client, **fields):
    return client.post("/api/jobs", data={"style": "wave_crop", **TINY_JOB, **fields},
                       files=[("content", ("photo.jpg", jpeg(), "image/jpeg"))])


def test_a_job_submitted_to_one_web_process_is_followed_cancelled_and_downloaded_through_another(
        tmp_path, postgres_server):
    from impasto.jobs.worker import Worker

    url = postgres_server.new_database()
    with make_client(tmp_path, queue=url) as a, make_client(tmp_path, queue=url) as b:
        done_id = submit(a).json()["id"]
        cancel_id = submit(a).json()["id"]
        assert {j["id"] for j in b.get("/api/jobs").json()} == {done_id, cancel_id}
        assert b.delete(f"/api/jobs/{cancel_id}").json()["status"] == "cancelled"
        store = a.app.state.store
        Worker(store, name="elsewhere").run(store.claim("elsewhere", "machine-b"))
        for client in (a, b):
            job = client.get(f"/api/jobs/{done_id}").json()
            assert job["status"] == "done" and job["host"] == "machine-b" and job["worker"] == "elsewhere"
            assert Image.open(io.BytesIO(client.get(f"/api/jobs/{done_id}/result").content)).size == (32, 27)
            stream = client.get(f"/api/jobs/{done_id}/events").text
            assert json.loads(stream.split("event: end\ndata: ")[1])["status"] == "done"
        assert a.get(f"/api/jobs/{cancel_id}").json()["status"] == "cancelled"


def test_a_cancel_reaches_a_running_job_on_another_machine_before_its_next_step(tmp_path, postgres_server):
    from impasto.jobs.worker import Worker

    url = postgres_server.new_database()
    with make_client(tmp_path, queue=url) as web:
        job_id = submit(web, iterations="40", initial_iterations="40").json()["id"]
        store = web.app.state.store
        worker = Worker(store, name="w-b")
        real_update = store.update
        steps = []

        def update(lease, progress, *args, **kwargs):
            steps.append(progress)
            if len(steps) == 3:  # a client cancels through the web process while the job runs
                assert web.delete(f"/api/jobs/{job_id}").json()["status"] == "running"
            return real_update(lease, progress, *args, **kwargs)

        store.update = update  # type: ignore[method-assign]
        worker.run(store.claim("w-b", "machine-b"))
        assert web.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
        assert len(steps) <= 5  # stopped at the next progress write after the cancel


def test_a_database_that_is_down_is_a_503_with_retry_after_and_the_web_process_recovers(tmp_path, postgres_server):
    url = postgres_server.new_database().replace("impasto@", "impasto:s3cret-pass@")  # trust: any password
    with make_client(tmp_path, queue=url) as web:
        health = web.get("/api/health")
        assert health.json()["queue"] == f"PostgreSQL ({url.replace('s3cret-pass', '***')})"
        assert "s3cret" not in health.text
        postgres_server.stop()
        try:
            for path in ("/api/jobs", "/api/health"):
                down = web.get(path)
                assert down.status_code == 503 and down.headers["retry-after"] == "30", down.text
                assert "s3cret" not in down.text and down.json()["detail"].startswith("the job store cannot be used")
            refused = submit(web)
            assert refused.status_code == 503
        finally:
            postgres_server.start()
        deadline = time.monotonic() + 20
        while web.get("/api/jobs").status_code != 200:  # the pool replaces its broken connections
            assert time.monotonic() < deadline, "the web process did not recover"
            time.sleep(0.2)
        assert submit(web).status_code == 202


def test_serve_and_worker_refuse_a_bad_queue_or_lease_in_one_line(tmp_path, capsys, monkeypatch):
    """Before anything is made or any port taken (the CI machine's port 8000 was busy)."""
    from impasto.cli import main

    monkeypatch.delenv("IMPASTO_QUEUE", raising=False)
    for argv, words in ((["serve", "--data", str(tmp_path), "--queue", "mysql://x/y"], "--queue takes a postgresql://"),
                        (["worker", "--data", str(tmp_path), "--lease", "0.5"], "--lease must be from 2 to 3600"),
                        (["serve", "--data", str(tmp_path), "--lease", "99999"], "--lease must be from 2 to 3600")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
        assert not list(tmp_path.iterdir())


class Worker:
    """A real `impasto worker` process, in a working folder of its own (standing in for its machine)."""

    def __init__(self, root: Path, data: Path, url: str, name: str, env: dict[str, str]) -> None:
        folder = root / name
        folder.mkdir()
        self.name, self.stderr = name, folder / "stderr.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "impasto", "worker", "--data", str(data), "--name", name, "--lease", "3",
             "--host", f"machine-{name}"],  # a machine of its own: only its lease tells it died
            cwd=folder, env={**os.environ, "OMP_NUM_THREADS": "1", "IMPASTO_QUEUE": url, **env},
            stderr=open(self.stderr, "w"), start_new_session=True)  # noqa: SIM115 - the child's

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_chaos_three_workers_two_web_processes_kill_pause_and_a_database_restart(tmp_path, postgres_server):
    """Three workers and two web processes on one queue. One worker is killed with kill -9 mid-job:
    its job goes back to the queue after its lease and resumes from its snapshot on another. One is
    paused (SIGSTOP) past its lease while another takes its job, then continued: its late writes
    are refused and the new owner's result stands. The database restarts mid-run. Every job ends
    exactly once, and its result downloads through both web processes."""
    url = postgres_server.new_database()
    data, log = tmp_path / "data", tmp_path / "runs.log"
    env = {"IMPASTO_PLUGINS": "tests.serve.slow_plugin", "IMPASTO_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)}
    webs = [Server(data, args=("--queue", url, "--workers", "0"), env=env) for _ in range(2)]
    workers: list[Worker] = []
    try:
        for web in webs:
            web.start(ready=lambda health: True)
        workers = [Worker(tmp_path, data, url, f"w{i}", env) for i in range(3)]
        photo = jpeg(size=(40, 32))
        jobs = {tag: _post(webs[i % 2].url, {"method": "test-slow", "steps": "60", "tag": tag}, photo)
                for i, tag in enumerate("abcdef")}
        running = _until(lambda: _running_on(webs[0], jobs, 3), 60, "three jobs never ran side by side")
        killed, paused = running[0], running[1]
        by_name = {w.name: w for w in workers}
        by_name[killed["worker"]].signal(signal.SIGKILL)
        by_name[paused["worker"]].signal(signal.SIGSTOP)
        _until(lambda: webs[1].get(f"/api/jobs/{paused['id']}")["attempts"] == 2, 60,
               "the paused worker's job was never handed on")
        postgres_server.restart()  # mid-run: every process must come back by itself
        by_name[paused["worker"]].signal(signal.SIGCONT)
        ended = {tag: _until(lambda i=i: _ended(webs[0], i), 120, f"job {tag} never ended") for tag, i in jobs.items()}
        results = {(job_id, web.url): _fetch(web.url + f"/api/jobs/{job_id}/result")
                   for job_id in jobs.values() for web in webs}
    finally:
        for w in workers:
            w.stop()
        for web in webs:
            web.stop()
    assert all(j["status"] == "done" for j in ended.values()), ended
    lines = [line.split() for line in log.read_text().splitlines()]
    tag_of = {i: tag for tag, i in jobs.items()}
    starts = {tag: [(int(first), pid) for what, t, first, pid in (x for x in lines if x[0] == "start") if t == tag]
              for tag in jobs}
    # the killed worker's job: run again elsewhere, from its snapshot, not from step 0
    again = starts[tag_of[killed["id"]]]
    assert len(again) == 2 and again[1][0] > 0 and ended[tag_of[killed["id"]]]["attempts"] == 2, again
    # the paused worker's job: the new owner's result stands; the paused one's late writes were refused
    assert ended[tag_of[paused["id"]]]["attempts"] == 2
    stderr = (tmp_path / paused["worker"] / "stderr.log").read_text()
    assert "no longer holds it" in stderr or "lost its lease" in stderr, stderr[-2000:]
    # every other job ran once; every result is the photo's negative through both web processes
    for tag, job_id in jobs.items():
        if job_id not in (killed["id"], paused["id"]):
            assert len(starts[tag]) == 1 and ended[tag]["attempts"] == 1, (tag, starts[tag])
    want = 255 - np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), float)
    for result in results.values():
        assert np.abs(np.asarray(Image.open(io.BytesIO(result)).convert("RGB"), float) - want).max() <= 1


def _post(url: str, fields: dict[str, str], photo: bytes) -> str:
    import httpx

    response = httpx.post(url + "/api/jobs", data=fields, files={"content": ("p.jpg", photo, "image/jpeg")},
                          timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _fetch(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _until(check, timeout: float, why: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError:  # a web process answering 503 while the database restarts
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError(why)


def _running_on(web: Server, jobs: dict[str, str], n: int) -> list[dict] | None:
    running = [web.get(f"/api/jobs/{i}") for i in jobs.values()]
    running = [j for j in running if j["status"] == "running" and j["progress"] > 0.1]
    return running if len({j["worker"] for j in running}) >= n else None


def _ended(web: Server, job_id: str) -> dict | None:
    job = web.get(f"/api/jobs/{job_id}")
    return job if job["status"] not in ("queued", "running") else None
