"""The job store, on both queues (SQLite in the data folder, and a real PostgreSQL server): the same
tests, the same behaviour."""

from __future__ import annotations

import pytest

from impasto.jobs.store import MAX_ATTEMPTS, JobStore, LeaseLost, QueueFull


def add(store: JobStore, max_active: int = 10) -> str:
    return store.submit('{"method": "optimize", "options": {}}', (".png", b"png"), ["gallery:wave_crop"], max_active)


@pytest.fixture
def store(tmp_path, queue_url):
    s = JobStore(tmp_path, queue_url)
    yield s
    s.close()


def test_jobs_are_claimed_oldest_first_and_only_once(store):
    first, second = add(store), add(store)
    assert store.claim().id == first
    assert store.claim().id == second
    assert store.claim() is None
    assert store.get(first).attempts == 1


def test_a_dead_workers_job_goes_back_to_the_queue_until_it_has_killed_too_many(store):
    job_id = add(store)
    for _ in range(1, MAX_ATTEMPTS):
        assert store.claim().id == job_id  # ... and the worker dies here
        assert store.requeue_interrupted() == [job_id]
        assert store.get(job_id).status == "queued"
    store.claim()
    store.requeue_interrupted()
    job = store.get(job_id)
    assert job.status == "failed" and "stopped 3 times" in job.error


def test_a_cancel_asked_of_a_dead_workers_job_is_kept(store):
    job_id = add(store)
    store.claim()
    store.cancel(job_id)
    store.requeue_interrupted()
    assert store.get(job_id).status == "cancelled"


def test_the_queue_is_bounded_and_a_refused_job_leaves_nothing(store, tmp_path):
    add(store, 1)
    with pytest.raises(QueueFull):
        add(store, 1)
    assert len(list((tmp_path / "jobs").iterdir())) == 1


def test_finish_writes_the_result_before_the_status(store):
    job_id = add(store)
    job = store.claim()
    assert store.update(job.lease, 0.5, "half", preview=b"jpeg") is False
    assert store.get(job_id).preview == 1
    store.finish(job.lease, b"thumb", b"result")
    done = store.get(job_id)
    assert done.result_name == "result-a1.png" and (store.folder(job_id) / "result-a1.png").read_bytes() == b"result"
    assert (store.folder(job_id) / "thumb.jpg").read_bytes() == b"thumb"
    assert done.status == "done" and done.progress == 1.0


def test_prune_deletes_only_old_finished_jobs(store):
    done, queued = add(store), add(store)
    store.finish(store.claim().lease, b"thumb", b"result")
    assert store.prune(older_than=3600) == 0  # finished just now
    assert store.prune(older_than=-1) == 1  # everything finished before "now + 1 s"
    assert store.get(done) is None and not store.folder(done).exists()
    assert store.get(queued).status == "queued" and store.folder(queued).exists()


def test_only_jobs_of_dead_workers_are_requeued(store):
    import fcntl

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


def test_a_worker_whose_heartbeat_is_stale_is_dead_even_holding_its_lock(store, monkeypatch):
    import fcntl

    from impasto.jobs import store as store_module

    with open(store.lock_path("w0"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store.beat("w0", 1, None, None, 0.0)
        assert store.worker_alive("w0")
        monkeypatch.setattr(store_module, "STALE_AFTER", -1.0)
        assert not store.worker_alive("w0")


# --- leases and fencing ---------------------------------------------------------------------------

def _expire(store: JobStore, job_id: str) -> None:
    """The job's lease runs out now (as after a worker's pause or death past --lease)."""
    with store.db.transaction() as tx:
        tx.execute(f"UPDATE jobs SET lease_until = {store.db.now} - 1 WHERE id = ?", (job_id,))


def test_a_claim_is_a_lease_on_the_databases_clock_that_heartbeats_renew(store):
    job_id = add(store)
    job = store.claim("w0", "machine-a")
    assert job.worker == "w0" and job.host == "machine-a" and job.attempts == 1
    with store.db.transaction() as tx:
        left = tx.execute(f"SELECT lease_until - {store.db.now} AS left FROM jobs WHERE id = ?", (job_id,)).one()
    assert store.lease - 2 < left["left"] <= store.lease
    # a live worker elsewhere (no lock file here) keeps its job while it beats
    assert store.requeue_interrupted(lambda w: True) == []
    _expire(store, job_id)
    assert store.beat("w0", 1, None, job_id, 0.0, job.lease) is True  # renewed before anyone took it
    assert store.requeue_interrupted(lambda w: False) == []
    _expire(store, job_id)
    assert store.requeue_interrupted(lambda w: False) == [job_id]  # ran out: back to the queue
    assert store.get(job_id).status == "queued"


def test_a_job_on_another_machine_is_requeued_by_its_lease_not_by_lock_files_here(store):
    job_id = add(store)
    store.claim("w9", "another-machine")
    assert store.requeue_interrupted(lambda w: True) == []  # this machine cannot see its lock
    _expire(store, job_id)
    assert store.requeue_interrupted(lambda w: False) == [job_id]


@pytest.mark.parametrize("write", ["update", "resumed", "finish", "fail", "cancelled", "beat"])
def test_every_write_of_a_stale_attempt_is_refused(store, write):
    """Fencing: a worker paused past its lease, whose job another worker claimed, has each of its
    writes refused, and the new owner's work stands."""
    job_id = add(store)
    old = store.claim("w0").lease
    _expire(store, job_id)
    store.requeue_interrupted(lambda w: False)
    new = store.claim("w1").lease
    assert new.attempt == old.attempt + 1
    store.update(new, 0.4, "new owner's")
    stale = {"update": lambda: store.update(old, 0.9, "stale", preview=b"stale"),
             "resumed": lambda: store.resumed(old, 0.9),
             "finish": lambda: store.finish(old, b"stale thumb", b"stale result"),
             "fail": lambda: store.fail(old, "stale failure"),
             "cancelled": lambda: store.cancelled(old)}
    if write == "beat":
        assert store.beat("w0", 1, None, job_id, 0.0, old) is False
    else:
        with pytest.raises(LeaseLost):
            stale[write]()
    job = store.get(job_id)
    assert job.status == "running" and job.attempts == new.attempt and job.message == "new owner's"
    assert job.progress == pytest.approx(0.4) and job.resumed_from is None
    assert not (store.folder(job_id) / "preview.jpg").exists() and store.folder(job_id).exists()
    store.finish(new, b"thumb", b"new result")
    assert store.get(job_id).status == "done"
    assert (store.folder(job_id) / store.get(job_id).result_name).read_bytes() == b"new result"
    with pytest.raises(LeaseLost):  # and after the end, a late finish still cannot touch it
        store.finish(old, b"stale thumb", b"stale result")
    assert (store.folder(job_id) / store.get(job_id).result_name).read_bytes() == b"new result"


def test_each_attempt_snapshots_to_its_own_file_and_resumes_from_the_newest(store):
    job_id = add(store)
    first = store.claim("w0")
    assert store.snapshot_path(job_id, first.attempts).name == "snapshot-a1.pt"
    store.snapshot_path(job_id, 1).write_bytes(b"1")
    _expire(store, job_id)
    store.requeue_interrupted(lambda w: False)
    second = store.claim("w1")
    assert store.snapshot_path(job_id) == store.snapshot_path(job_id, 1)  # what attempt 2 resumes from
    store.snapshot_path(job_id, second.attempts).write_bytes(b"2")
    store.snapshot_path(job_id, 1).write_bytes(b"late")  # the paused worker's late snapshot
    assert store.snapshot_path(job_id).name == "snapshot-a2.pt"
    store.finish(second.lease, b"t", b"r")
    assert not list(store.folder(job_id).glob("snapshot*"))


def test_claims_at_once_never_share_a_job(store):
    """Four threads claim from 40 jobs at once: each job is claimed exactly once."""
    import threading

    ids = {add(store, 100) for _ in range(40)}
    got: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (job := store.claim(name)) is not None:
            with lock:
                got.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_the_schema_is_versioned_and_migrations_run_once(tmp_path, queue_url):
    from impasto.jobs.database import SCHEMA_VERSION, open_database

    db = open_database(tmp_path, queue_url)
    assert db.migrate() == SCHEMA_VERSION  # found current: nothing to do
    db.close()
    store = JobStore(tmp_path, queue_url)
    assert store.claim() is None
    store.close()


def test_a_store_newer_than_this_impasto_is_refused_in_one_line(tmp_path):
    import sqlite3

    from impasto.errors import InputError
    from impasto.jobs.database import SCHEMA_VERSION

    JobStore(tmp_path)
    with sqlite3.connect(tmp_path / "jobs.sqlite") as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="newer than this impasto's"):
        JobStore(tmp_path)


def test_a_store_made_before_workers_had_names_is_upgraded(tmp_path):
    import sqlite3

    from impasto.jobs.database import MIGRATIONS

    old = MIGRATIONS[0].split("CREATE INDEX")[0].replace(",\n        worker TEXT,\n        resumed_from DOUBLE "
                                                         "PRECISION,\n        steps INTEGER NOT NULL DEFAULT 0\n",
                                                         "\n")
    assert "worker" not in old
    with sqlite3.connect(tmp_path / "jobs.sqlite") as con:
        con.executescript(old)
        con.execute("INSERT INTO jobs (id, status, recipe, content, styles, created) VALUES "
                    "('x', 'running', '{}', 'content.png', '[]', 0)")
    store = JobStore(tmp_path)
    assert store.get("x").worker is None and store.get("x").steps == 0
    assert store.requeue_interrupted(lambda w: not store.worker_alive(w)) == ["x"]  # no one's: requeued


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


def test_jobs_migrate_moves_a_sqlite_queue_into_postgresql_once_leaving_the_files(tmp_path, postgres_server, capsys):
    from impasto.cli import main

    url = postgres_server.new_database()
    old = JobStore(tmp_path)
    done, running, queued = add(old), add(old), add(old)
    old.finish(old.claim("w0").lease, b"thumb", b"result")
    old.claim("w0")
    old.close()
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "jobs").rglob("*"))
    assert main(["jobs", "migrate", "--from", str(tmp_path), "--to", url]) == 0
    assert "copied 3 job(s)" in capsys.readouterr().err
    new = JobStore(tmp_path, url)
    assert new.get(done).status == "done" and new.get(done).result_name == "result-a1.png"
    assert (new.folder(done) / new.get(done).result_name).read_bytes() == b"result"
    assert new.get(running).status == "queued" and new.get(running).attempts == 1  # resumes from its snapshot
    assert new.get(queued).status == "queued"
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "jobs").rglob("*")) == files  # nothing copied
    new.finish(new.claim("w1").lease, b"t", b"r")  # the queue goes on; a rerun changes nothing
    assert main(["jobs", "migrate", "--from", str(tmp_path), "--to", url]) == 0
    assert "copied 0 job(s)" in capsys.readouterr().err and new.counts()["done"] == 2
    new.close()


def test_jobs_migrate_refuses_a_folder_a_server_is_using_or_without_a_queue(tmp_path, capsys):
    import fcntl

    from impasto.cli import main

    assert main(["jobs", "migrate", "--from", str(tmp_path), "--to", "postgresql://x@127.0.0.1/y"]) == 2
    assert "no SQLite queue" in capsys.readouterr().err
    JobStore(tmp_path).close()
    with open(tmp_path / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert main(["jobs", "migrate", "--from", str(tmp_path), "--to", "postgresql://x@127.0.0.1/y"]) == 2
    err = capsys.readouterr().err
    assert "an impasto serve is using" in err and err.count("\n") == 1
