"""The job queue's speed on both stores: SQLite in a data folder, and a real PostgreSQL server.

    python benchmarks/job_queue.py [--jobs 400] [--deep 10000]

(Not ``queue.py``: every script here runs with this folder first on its path, and a ``queue.py``
in it would stand in for the standard library's, which torch and multiprocessing import.)

Starts a PostgreSQL server in a temporary folder (Debian's postgresql, as the tests do) and prints,
for each store, with the machine's CPU:

* throughput: tiny jobs (claim, one progress write, finish: the store's whole part of a job, no
  painting) run by 1, 2 and 4 worker processes at once, in jobs per second, and the median time of
  one claim;
* the time of one claim with 100 and with ``--deep`` jobs queued (an index finds the oldest: it
  must not grow with the queue);
* the time from a worker's ``kill -9`` to its job running again on another worker (real
  ``impasto worker`` processes, ``--lease 3``, each with a ``--host`` of its own, as on two
  machines): the lease must run out, then an idle worker puts the job back (it looks every half
  lease).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cpu_name

sys.path.insert(0, str(ROOT))
from tests.pg import PostgresServer

RECIPE = '{"method": "optimize", "options": {}}'


def _store(data: str, url: str | None):  # type: ignore[no-untyped-def]
    from impasto.jobs.store import JobStore

    return JobStore(data, url)


def _fill(store, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` queued jobs, inserted directly (the claim is measured, not the uploads)."""
    import uuid

    with store.db.transaction() as tx:
        for i in range(n):
            tx.execute(f"INSERT INTO jobs (id, status, recipe, content, styles, created) "
                       f"VALUES (?, 'queued', ?, 'content.png', '[]', {store.db.now} + ?)",
                       (uuid.uuid4().hex, RECIPE, i * 1e-6))


def _work(data: str, url: str | None, name: str, out: multiprocessing.Queue) -> None:
    store = _store(data, url)
    claims = []
    done = 0
    while True:
        start = time.perf_counter()
        job = store.claim(name)
        claims.append(time.perf_counter() - start)
        if job is None:
            break
        store.folder(job.id).mkdir(exist_ok=True)
        store.update(job.lease, 0.5, "half")
        store.finish(job.lease, b"thumb", b"result")
        done += 1
    store.close()
    out.put((done, claims))


def throughput(data: str, url: str | None, jobs: int, workers: int) -> tuple[float, float]:
    store = _store(data, url)
    _fill(store, jobs)
    store.close()
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_work, args=(data, url, f"w{i}", out)) for i in range(workers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    assert sum(d for d, _ in results) == jobs, "a job was claimed twice or never"
    return jobs / wall, statistics.median(c for _, cs in results for c in cs)


def claim_time(data: str, url: str | None, queued: int, repeats: int = 50) -> float:
    store = _store(data, url)
    _fill(store, queued)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job = store.claim("probe")
        times.append(time.perf_counter() - start)
        assert job is not None
        _fill(store, 1)  # keep the depth
    store.close()
    return statistics.median(times)


def kill_to_rerun(data: Path, url: str | None) -> float:
    """Two real workers; the one that takes the slow job is killed; seconds until it runs again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "IMPASTO_PLUGINS": "tests.serve.slow_plugin",
           "PYTHONPATH": str(ROOT), **({"IMPASTO_QUEUE": url} if url else {})}
    store = _store(str(data), url)
    job_id = store.submit('{"method": "test-slow", "options": {"steps": 300}}', (".png", _png()), [], 10)
    workers = {}
    for name in ("a", "b"):
        workers[name] = subprocess.Popen([sys.executable, "-m", "impasto", "worker", "--data", str(data),
                                          "--name", name, "--host", f"machine-{name}", "--lease", "3",
                                          "--log-level", "warning"],
                                         env=env, start_new_session=True)
    try:
        while (job := store.get(job_id)).status != "running" or job.progress <= 0:
            time.sleep(0.02)
        victim = workers[job.worker]
        killed = time.perf_counter()
        victim.kill()
        while (job := store.get(job_id)).attempts < 2 or job.status != "running":
            time.sleep(0.02)
        return time.perf_counter() - killed
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        store.close()


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 60, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400, help="tiny jobs per throughput run")
    parser.add_argument("--deep", type=int, default=10_000, help="the deep queue's length")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores (`python benchmarks/job_queue.py`)\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tempfile.mkdtemp(prefix="impasto-pg-"))
        server = PostgresServer(root)
        try:
            stores = {"SQLite": lambda: None, "PostgreSQL": server.new_database}
            print("| store | workers | jobs/s | median claim (ms) |\n|---|---:|---:|---:|")
            for name, url_of in stores.items():
                for workers in (1, 2, 4):
                    data = tempfile.mkdtemp(dir=tmp)
                    rate, claim = throughput(data, url_of(), args.jobs, workers)
                    print(f"| {name} | {workers} | {rate:.0f} | {claim * 1e3:.2f} |", flush=True)
            print(f"\n| store | claim with 100 queued (ms) | claim with {args.deep:,} queued (ms) |\n|---|---:|---:|")
            for name, url_of in stores.items():
                shallow = claim_time(tempfile.mkdtemp(dir=tmp), url_of(), 100)
                deep = claim_time(tempfile.mkdtemp(dir=tmp), url_of(), args.deep)
                print(f"| {name} | {shallow * 1e3:.2f} | {deep * 1e3:.2f} |", flush=True)
            print("\n| store | kill -9 to running again (s) |\n|---|---:|")
            for name, url_of in stores.items():
                print(f"| {name} | {kill_to_rerun(Path(tempfile.mkdtemp(dir=tmp)), url_of()):.1f} |", flush=True)
        finally:
            server.stop("immediate")
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
