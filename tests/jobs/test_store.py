from __future__ import annotations

import pytest

from impasto.jobs.store import MAX_ATTEMPTS, JobStore, QueueFull


def add(store: JobStore, max_active: int = 10) -> str:
    return store.submit('{"method": "optimize", "options": {}}', (".png", b"png"), ["gallery:wave_crop"], max_active)


def test_jobs_are_claimed_oldest_first_and_only_once(tmp_path):
    store = JobStore(tmp_path)
    first, second = add(store), add(store)
    assert store.claim().id == first
    assert store.claim().id == second
    assert store.claim() is None
    assert store.get(first).attempts == 1


def test_a_dead_workers_job_goes_back_to_the_queue_until_it_has_killed_too_many(tmp_path):
    store = JobStore(tmp_path)
    job_id = add(store)
    for _ in range(1, MAX_ATTEMPTS):
        assert store.claim().id == job_id  # ... and the worker dies here
        assert store.requeue_interrupted() == [job_id]
        assert store.get(job_id).status == "queued"
    store.claim()
    store.requeue_interrupted()
    job = store.get(job_id)
    assert job.status == "failed" and "stopped 3 times" in job.error


def test_a_cancel_asked_of_a_dead_workers_job_is_kept(tmp_path):
    store = JobStore(tmp_path)
    job_id = add(store)
    store.claim()
    store.cancel(job_id)
    store.requeue_interrupted()
    assert store.get(job_id).status == "cancelled"


def test_the_queue_is_bounded_and_a_refused_job_leaves_nothing(tmp_path):
    store = JobStore(tmp_path)
    add(store, 1)
    with pytest.raises(QueueFull):
        add(store, 1)
    assert len(list((tmp_path / "jobs").iterdir())) == 1


def test_finish_writes_the_result_before_the_status(tmp_path):
    store = JobStore(tmp_path)
    job_id = add(store)
    store.claim()
    assert store.update(job_id, 0.5, "half", preview=b"jpeg") is False
    assert store.get(job_id).preview == 1
    store.finish(job_id, b"thumb", b"result")
    assert (store.folder(job_id) / "result.png").read_bytes() == b"result"
    assert store.get(job_id).status == "done" and store.get(job_id).progress == 1.0


def test_prune_deletes_only_old_finished_jobs(tmp_path):
    store = JobStore(tmp_path)
    done, queued = add(store), add(store)
    store.claim()
    store.finish(done, b"thumb", b"result")
    assert store.prune(older_than=3600) == 0  # finished just now
    assert store.prune(older_than=-1) == 1  # everything finished before "now + 1 s"
    assert store.get(done) is None and not store.folder(done).exists()
    assert store.get(queued).status == "queued" and store.folder(queued).exists()


def test_only_jobs_of_dead_workers_are_requeued(tmp_path):
    import fcntl

    store = JobStore(tmp_path)
    mine, theirs = add(store), add(store)
    assert store.claim("w0").id == mine and store.claim("w1").id == theirs
    with open(store.lock_path("w1"), "a") as lock:  # w1 is alive: it holds its lock and beats
        fcntl.flock(lock, fcntl.LOCK_EX)
        store.beat("w1", 1234, None, theirs, 0.0)
        assert store.worker_alive("w1") and not store.worker_alive("w0")
        assert store.requeue_interrupted(lambda w: not store.worker_alive(w)) == [mine]
    assert store.get(mine).status == "queued" and store.get(theirs).status == "running"
    assert store.get(theirs).worker == "w1"
    assert not store.worker_alive("w1")  # its lock let go: dead


def test_a_worker_whose_heartbeat_is_stale_is_dead_even_holding_its_lock(tmp_path, monkeypatch):
    import fcntl

    from impasto.jobs import store as store_module

    store = JobStore(tmp_path)
    with open(store.lock_path("w0"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store.beat("w0", 1, None, None, 0.0)
        assert store.worker_alive("w0")
        monkeypatch.setattr(store_module, "STALE_AFTER", -1.0)
        assert not store.worker_alive("w0")


def test_a_store_made_before_workers_had_names_is_upgraded(tmp_path):
    import sqlite3

    old = store_module_schema_without_worker()
    with sqlite3.connect(tmp_path / "jobs.sqlite") as con:
        con.executescript(old)
        con.execute("INSERT INTO jobs (id, status, recipe, content, styles, created) VALUES "
                    "('x', 'running', '{}', 'content.png', '[]', 0)")
    store = JobStore(tmp_path)
    assert store.get("x").worker is None
    assert store.requeue_interrupted(lambda w: not store.worker_alive(w)) == ["x"]  # no one's: requeued


def store_module_schema_without_worker() -> str:
    from impasto.jobs.store import SCHEMA

    jobs = SCHEMA.split("CREATE INDEX")[0]
    return jobs.replace(",\n    worker TEXT\n", "\n")


def test_what_a_killed_submit_left_is_removed_at_the_web_process_start(tmp_path):
    """kill -9 during a submit left `.incoming-*` folders (the probe found them) or a job folder with
    no row; the web process removes both when it starts, and nothing else."""
    from tests.serve.conftest import make_client

    store = JobStore(tmp_path / "data")
    kept = store.submit("{}", (".jpg", b"x"), [], max_active=8)
    (tmp_path / "data" / "jobs" / ".incoming-0123").mkdir()
    (tmp_path / "data" / "jobs" / ".incoming-0123" / "content.jpg").write_bytes(b"x")
    (tmp_path / "data" / "jobs" / ("f" * 32)).mkdir()  # renamed into place, never recorded
    with make_client(tmp_path):
        pass
    assert sorted(p.name for p in (tmp_path / "data" / "jobs").iterdir()) == [kept]
