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
