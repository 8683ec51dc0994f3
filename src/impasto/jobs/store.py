"""The service's persistent job queue: a database (:mod:`.database`: SQLite in the data folder, or
PostgreSQL for several machines) plus one folder per job.

``DATA/jobs/ID/`` holds the job's inputs (``content.EXT``, ``style-N.EXT``, named by the store,
never by the uploader), its live ``preview.jpg``, its snapshots and its result and ``thumb.jpg``.
With several machines, ``DATA`` is a folder every machine mounts. Every file is written atomically,
and a job's row is inserted only once its folder is complete, so a crash at any moment leaves
either a whole job or none.

Any number of processes, on any number of machines with PostgreSQL, use the store at once. A worker
claims the oldest queued job atomically (``FOR UPDATE SKIP LOCKED`` on PostgreSQL); the claim is a
lease: the job is the worker's until ``lease_until``, on the database's clock, and the worker's
heartbeat renews it every few seconds. Each claim raises the job's ``attempts``, and every write a
worker makes about the job names the attempt it holds (:class:`Lease`): a worker that was paused
past its lease, whose job went to another, has its late writes refused (:class:`LeaseLost`), and
its result is written under its attempt's own name, so it can never overwrite the new owner's.
A job whose lease ran out goes back to the queue (:meth:`JobStore.requeue_interrupted`) and resumes
from its latest snapshot; on one machine a worker's lock file (``DATA/workers/NAME.lock``) tells
sooner that it died.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.atomic import atomic_write
from .database import LEASE, Database, open_database

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
SNAPSHOT = "snapshot.pt"
"""A running optimize job's snapshot in its folder: its next attempt continues from there."""
MAX_ATTEMPTS = 3
"""A job that kills its worker this many times (out of memory, say) is failed, not retried forever."""

STALE_AFTER = 300.0
"""A worker whose heartbeat is older than this many seconds is dead (hung, or on a machine whose
lock files this one cannot see), even if its lock seems held."""


class QueueFull(Exception):
    """The queue holds as many jobs as it may."""


class LeaseLost(Exception):
    """A worker's write about a job was refused: the job is no longer its own (its lease ran out
    and another worker claimed it, or it ended). The worker drops the job."""


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a job: the job and the attempt its claim made (the fencing token)."""

    job: str
    attempt: int


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    recipe: str
    content: str
    styles: list[str]
    """File names in the job's folder, or 'gallery:NAME' for a gallery painting (by name)."""
    created: float
    started: float | None
    finished: float | None
    progress: float
    message: str
    error: str | None
    preview: int
    """Version of preview.jpg (0 = none yet); bumps each time the worker writes a newer one."""
    cancel: int
    attempts: int
    worker: str | None = None
    """The worker that claimed it last (None: never claimed)."""
    resumed_from: float | None = None
    """The work fraction its last attempt continued from (a snapshot of an earlier one), or None."""
    steps: int = 0
    """Optimizer steps run for it, every attempt together (as last recorded)."""
    lease_until: float | None = None
    """While running: when its claim runs out, unless a heartbeat renews it (the database's clock)."""
    host: str | None = None
    """The machine of the worker that claimed it last."""
    result: str | None = None
    """The result's file name in the job's folder, once done (its attempt's own)."""

    @property
    def lease(self) -> Lease:
        return Lease(self.id, self.attempts)

    @property
    def kind(self) -> str:
        """'video' for a video content (the video method), else 'image'."""
        from ..video.io import is_video

        return "video" if is_video(self.content) else "image"

    @property
    def result_name(self) -> str:
        """The result's file name in the job's folder: the one its finish recorded, else the one
        its current attempt writes (``result-aN.EXT``: a late writer never overwrites another's)."""
        from ..video.io import video_output_extension

        if self.result:
            return self.result
        ext = video_output_extension(self.content) if self.kind == "video" else ".png"
        if self.status == "done":  # finished before results were named by attempt
            return f"result{ext}"
        return f"result-a{self.attempts}{ext}"

    def public(self) -> dict[str, Any]:
        """What the API shows."""
        recipe = json.loads(self.recipe)
        out = {"id": self.id, "status": self.status, "kind": self.kind, "progress": round(self.progress, 4),
               "message": self.message, "method": recipe["method"], "options": recipe["options"],
               "bit_depth": recipe.get("bit_depth"),
               "created": self.created, "started": self.started, "finished": self.finished,
               "preview": self.preview, "worker": self.worker, "host": self.host, "attempts": self.attempts,
               "resumed_from": None if self.resumed_from is None else round(self.resumed_from, 4),
               "steps": self.steps}
        if self.error is not None:
            out["error"] = self.error
        return out


class JobStore:
    """The queue and the jobs' folders. ``queue``: a ``postgresql://`` URL, or None for SQLite in
    ``data``; ``lease``: seconds a claim holds its job between heartbeats."""

    def __init__(self, data: str | os.PathLike, queue: str | None = None, *, lease: float = LEASE,
                 database: Database | None = None, host: str | None = None) -> None:
        self.root = Path(data)
        self.host = host or socket.gethostname()
        """This machine's name in the queue: its claims and heartbeats carry it, and only its own
        workers' lock files are looked at (another machine's are not visible here)."""
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        (self.root / "workers").mkdir(exist_ok=True)
        self.lease = float(lease)
        self.db = database if database is not None else open_database(self.root, queue)
        self.errors: tuple[type[BaseException], ...] = self.db.errors
        """What the database raises when it is down or full (a 503 at the web, a wait in a worker)."""

    def describe(self) -> str:
        return self.db.describe()

    def close(self) -> None:
        self.db.close()

    def folder(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    @staticmethod
    def _job(row: dict[str, Any] | None) -> Job | None:
        if row is None:
            return None
        data = dict(row)
        data["styles"] = json.loads(data["styles"])
        return Job(**data)

    def remove_orphans(self, min_age: float = 0.0) -> list[str]:
        """Remove what a web process killed mid-submit left behind: ``.incoming-*`` folders (written
        before the job's folder is renamed into place) and job folders with no row (renamed, but not
        yet recorded), at least ``min_age`` seconds old. For a web process at its start: alone on
        its folder (SQLite), no submit is in flight; with several web processes sharing a queue,
        give a minute, so that another's submit in flight is left alone."""
        with self.db.transaction(write=False) as tx:
            known = {row["id"] for row in tx.execute("SELECT id FROM jobs").rows}
        gone = []
        young = time.time() - min_age
        for path in sorted((self.root / "jobs").iterdir()):
            if path.is_dir() and (path.name.startswith(".incoming-") or
                                  (not path.name.startswith(".") and path.name not in known)):
                with contextlib.suppress(OSError):
                    if min_age > 0 and path.stat().st_mtime > young:
                        continue  # another web process's submit in flight
                shutil.rmtree(path, ignore_errors=True)
                gone.append(path.name)
        return gone

    # --- the web side ----------------------------------------------------------------------------

    def submit(self, recipe_json: str, content: tuple[str, bytes], styles: Sequence[tuple[str, bytes] | str],
               max_active: int) -> str:
        """Store the inputs (``(extension, bytes)``, or ``'gallery:NAME'`` for a style) and queue the job."""
        job_id = uuid.uuid4().hex
        tmp = self.root / "jobs" / f".incoming-{job_id}"
        tmp.mkdir()
        try:
            names = []
            ext, data = content
            content_name = f"content{ext}"
            (tmp / content_name).write_bytes(data)
            for i, style in enumerate(styles):
                if isinstance(style, str):
                    names.append(style)
                else:
                    names.append(f"style-{i}{style[0]}")
                    (tmp / names[-1]).write_bytes(style[1])
            os.replace(tmp, self.folder(job_id))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            with self.db.transaction() as tx:
                if self.db.dialect == "postgresql":  # web processes count and insert one at a time
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (0x1A7A5701,))
                active = tx.execute("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')").rows[0]["n"]
                if active >= max_active:
                    raise QueueFull(f"the queue is full ({active} jobs waiting or running); try again later")
                tx.execute(f"INSERT INTO jobs (id, status, recipe, content, styles, created) "
                           f"VALUES (?, 'queued', ?, ?, ?, {self.db.now})",
                           (job_id, recipe_json, content_name, json.dumps(names)))
        except BaseException:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
            raise
        return job_id

    def get(self, job_id: str) -> Job | None:
        with self.db.transaction(write=False) as tx:
            return self._job(tx.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).one())

    def recent(self, limit: int = 50) -> list[Job]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).rows
        return [j for j in map(self._job, rows) if j is not None]

    def counts(self) -> dict[str, int]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").rows
        return {status: 0 for status in STATUSES} | {r["status"]: int(r["n"]) for r in rows}

    def cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one is flagged and its worker stops it (the
        flag is read with every progress write, so on another machine too). A cancelled job keeps no
        files (its uploads included): only its row, until it is pruned, so cancelled submissions
        cannot fill the disk."""
        with self.db.transaction() as tx:
            now_cancelled = tx.execute(f"UPDATE jobs SET status = 'cancelled', finished = {self.db.now}, "
                                       "message = 'cancelled' WHERE id = ? AND status = 'queued'", (job_id,)).rowcount
            tx.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND status = 'running'", (job_id,))
        if now_cancelled:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return self.get(job_id)

    def prune(self, older_than: float) -> int:
        """Delete finished jobs (done, failed, cancelled) that ended more than ``older_than`` seconds
        ago, files first and then rows; returns how many. Queued and running jobs are never touched."""
        with self.db.transaction(write=False) as tx:
            ids = [r["id"] for r in tx.execute("SELECT id FROM jobs WHERE status IN ('done', 'failed', 'cancelled') "
                                               f"AND finished < {self.db.now} - ?", (older_than,)).rows]
        for job_id in ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
            with self.db.transaction() as tx:
                tx.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return len(ids)

    # --- the worker side -------------------------------------------------------------------------

    def lock_path(self, worker: str) -> Path:
        """The lock file a live worker called ``worker`` holds (seen on its own machine only)."""
        return self.root / "workers" / f"{worker}.lock"

    def worker_alive(self, worker: str | None) -> bool:
        """Whether the worker ``worker`` of this machine holds its lock and beats its heartbeat."""
        if worker is None:
            return False
        with open(self.lock_path(worker), "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                held = True
            else:
                fcntl.flock(fh, fcntl.LOCK_UN)
                held = False
        if not held:
            return False
        with self.db.transaction(write=False) as tx:
            row = tx.execute(f"SELECT {self.db.now} - heartbeat AS age FROM workers WHERE name = ?", (worker,)).one()
        return row is None or row["age"] < STALE_AFTER

    def requeue_interrupted(self, dead: Callable[[str | None], bool] | None = None) -> list[str]:
        """Jobs whose worker is gone go back to the queue (or fail after MAX_ATTEMPTS, or end
        cancelled if that was asked): every running job whose lease ran out, on any machine, and a
        job claimed on this machine whose worker ``dead(worker)`` says is gone (its lock file;
        None: every running job's worker is, the caller knows that none runs). The check and the
        update are one transaction, so a worker cannot claim a job between them."""
        here = self.host
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT id, attempts, cancel, worker, host, lease_until < {self.db.now} AS expired "
                              f"FROM jobs WHERE status = 'running' {self.db.skip_locked}").rows
            rows = [r for r in rows if r["expired"] or dead is None
                    or (r["host"] in (None, here) and dead(r["worker"]))]
            for row in rows:
                if row["cancel"]:
                    tx.execute(f"UPDATE jobs SET status = 'cancelled', finished = {self.db.now}, "
                               "message = 'cancelled', lease_until = NULL WHERE id = ?", (row["id"],))
                elif row["attempts"] >= MAX_ATTEMPTS:
                    tx.execute(f"UPDATE jobs SET status = 'failed', finished = {self.db.now}, error = ?, "
                               "lease_until = NULL WHERE id = ?",
                               (f"the worker stopped {row['attempts']} times while running this job (out of memory?)",
                                row["id"]))
                else:
                    tx.execute("UPDATE jobs SET status = 'queued', progress = 0, message = 'restarted', "
                               "lease_until = NULL WHERE id = ?", (row["id"],))
        for row in rows:
            if row["cancel"]:
                shutil.rmtree(self.folder(row["id"]), ignore_errors=True)
            elif row["attempts"] >= MAX_ATTEMPTS:
                self._drop_snapshots(row["id"])
        return [r["id"] for r in rows]

    def claim(self, worker: str = "worker", host: str | None = None) -> Job | None:
        """The oldest queued job, now running under a lease for ``worker`` (atomically: no two
        workers get the same job; on PostgreSQL, claims at once skip each other's rows)."""
        with self.db.transaction() as tx:
            row = tx.execute(
                f"UPDATE jobs SET status = 'running', started = {self.db.now}, attempts = attempts + 1, "
                f"message = 'starting', worker = ?, host = ?, lease_until = {self.db.now} + ? "
                f"WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1 "
                f"{self.db.skip_locked}) RETURNING *",
                (worker, host or self.host, self.lease)).one()
        return self._job(row)

    def beat(self, worker: str, pid: int, device: str | None, job: str | None, started: float,
             lease: Lease | None = None) -> bool:
        """A worker's heartbeat, on the database's clock: it is alive, and runs ``job`` (or none);
        its ``lease`` is renewed. False when that lease is lost (the worker must drop the job)."""
        with self.db.transaction() as tx:
            tx.execute(f"INSERT INTO workers (name, pid, device, host, started, heartbeat, job) "
                       f"VALUES (?, ?, ?, ?, ?, {self.db.now}, ?) "
                       "ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, device = excluded.device, "
                       "host = excluded.host, started = excluded.started, heartbeat = excluded.heartbeat, "
                       "job = excluded.job", (worker, pid, device, self.host, started, job))
            if lease is None:
                return True
            return tx.execute(f"UPDATE jobs SET lease_until = {self.db.now} + ? WHERE id = ? AND attempts = ? "
                              "AND status = 'running'", (self.lease, lease.job, lease.attempt)).rowcount == 1

    def workers(self) -> list[dict[str, Any]]:
        """Every worker that has beaten a heartbeat, on every machine: name, host, pid, device, job,
        seconds since its beat (on the database's clock)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(f"SELECT *, {self.db.now} - heartbeat AS age FROM workers ORDER BY name").rows
        return [{"name": r["name"], "host": r["host"], "pid": r["pid"], "device": r["device"], "job": r["job"],
                 "started": r["started"], "heartbeat_age": round(max(0.0, r["age"]), 1)} for r in rows]

    def snapshot_path(self, job_id: str, attempt: int | None = None) -> Path:
        """Where a running job's attempt keeps its snapshot (``snapshot-aN.pt``; removed when the
        job ends); without ``attempt``, the newest one any attempt left (what a new attempt resumes
        from), or the unnumbered name of stores before attempts named them."""
        folder = self.folder(job_id)
        if attempt is not None:
            return folder / f"snapshot-a{attempt}.pt"
        found = sorted(folder.glob("snapshot-a*.pt"), key=lambda p: _attempt_of(p.name))
        return found[-1] if found else folder / SNAPSHOT

    def _drop_snapshots(self, job_id: str) -> None:
        for path in [*self.folder(job_id).glob("snapshot-a*.pt"), self.folder(job_id) / SNAPSHOT]:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _fenced(self, tx: Any, lease: Lease | None, sql: str, params: Sequence[Any]) -> None:
        """Run the UPDATE ``sql ... WHERE id = ?`` for the lease's attempt only; LeaseLost otherwise."""
        if lease is None:
            return
        done = tx.execute(sql + " AND attempts = ? AND status = 'running'", (*params, lease.attempt)).rowcount
        if done != 1:
            raise LeaseLost(f"job {lease.job}: attempt {lease.attempt} no longer holds it")

    def resumed(self, lease: Lease, work: float) -> None:
        """The job's attempt continues from a snapshot at this work fraction."""
        with self.db.transaction() as tx:
            self._fenced(tx, lease, "UPDATE jobs SET resumed_from = ?, progress = ? WHERE id = ?",
                         (work, work, lease.job))

    def update(self, lease: Lease, progress: float, message: str, preview: bytes | None = None,
               steps: int | None = None) -> bool:
        """Record progress (and a newer preview image, and the steps run so far in all attempts);
        returns True if a cancel was asked for. LeaseLost when the attempt no longer holds the job."""
        with self.db.transaction() as tx:
            self._fenced(tx, lease, "UPDATE jobs SET progress = ?, message = ?, preview = preview + ?, "
                         "steps = COALESCE(?, steps) WHERE id = ?",
                         (progress, message, int(preview is not None), steps, lease.job))
            row = tx.execute("SELECT cancel FROM jobs WHERE id = ?", (lease.job,)).one()
        if preview is not None:  # after the fenced write: a late worker never gets this far
            with atomic_write(self.folder(lease.job) / "preview.jpg") as fh:
                fh.write(preview)
        return bool(row and row["cancel"])

    def finish(self, lease: Lease, thumbnail: bytes, result: bytes | None = None) -> None:
        """Write the result under the attempt's own name (unless a writer already put it in place
        atomically, as the video encoder does) and the thumbnail, then mark the job done, fenced:
        'done' always has its whole file, and a late attempt's finish is refused (LeaseLost)."""
        job = self.get(lease.job)
        if job is None or job.attempts != lease.attempt or job.status != "running":
            raise LeaseLost(f"job {lease.job}: attempt {lease.attempt} no longer holds it")
        folder = self.folder(lease.job)
        name = job.result_name
        if result is not None:
            with atomic_write(folder / name) as fh:
                fh.write(result)
        with atomic_write(folder / f"thumb-a{lease.attempt}.jpg") as fh:
            fh.write(thumbnail)
        self._end(lease, "done", None, "done", progress=1.0, result=name)
        with contextlib.suppress(OSError):
            os.replace(folder / f"thumb-a{lease.attempt}.jpg", folder / "thumb.jpg")

    def fail(self, lease: Lease, error: str) -> None:
        """Mark the job failed; ``error`` is shown to clients, so server paths are taken out of it."""
        self._end(lease, "failed", self.public_message(error), "failed")

    def public_message(self, text: str) -> str:
        """``text`` without this server's paths: files under the data folder by their own name, any
        other absolute path by its last part; one line."""
        line = (text.strip().splitlines() or [""])[0]
        for root in {str(self.root.resolve()), str(self.root)}:
            line = re.sub(re.escape(root) + r"/(?:[^\s'\"]*/)?([^/\s'\"]+)", r"\1", line)
        return re.sub(r"(?<![\w.])/(?:[^\s'\"/]+/)+([^\s'\"/]+)", r"\1", line)

    def cancelled(self, lease: Lease) -> None:
        """The worker stopped the job as asked: it ends, and its files go (see :meth:`cancel`)."""
        self._end(lease, "cancelled", None, "cancelled")
        shutil.rmtree(self.folder(lease.job), ignore_errors=True)

    def _end(self, lease: Lease, status: str, error: str | None, message: str, progress: float | None = None,
             result: str | None = None) -> None:
        with self.db.transaction() as tx:
            self._fenced(tx, lease, f"UPDATE jobs SET status = ?, error = ?, message = ?, finished = {self.db.now}, "
                         "progress = COALESCE(?, progress), result = COALESCE(?, result), lease_until = NULL "
                         "WHERE id = ?", (status, error, message, progress, result, lease.job))
        # an ended job resumes nothing: its snapshots go, only once the end is recorded (a store that
        # cannot record it, a full disk, leaves the job running, to be requeued and resumed from them)
        self._drop_snapshots(lease.job)


def _attempt_of(name: str) -> int:
    match = re.match(r"snapshot-a(\d+)\.pt$", name)
    return int(match.group(1)) if match else 0


COLUMNS = ("id", "status", "recipe", "content", "styles", "created", "started", "finished", "progress", "message",
           "error", "preview", "cancel", "attempts", "worker", "resumed_from", "steps", "result")
"""The job columns a migration carries (leases and hosts are the source's machines' own: not carried)."""


def migrate_jobs(source: JobStore, target: JobStore) -> tuple[int, int]:
    """Copy every job row of ``source`` (a SQLite store) into ``target`` (a PostgreSQL queue on the
    same data folder): (copied, already there). The files stay where they are: the data folder is
    the same, so nothing is copied twice. A job that was running goes in queued, to resume from its
    snapshot. Run it again and it changes nothing (a job already in ``target`` is left as it is)."""
    if source.root.resolve() != target.root.resolve():
        raise InputError("the jobs' files stay in their folder: give the PostgreSQL queue the same --data")
    with source.db.transaction(write=False) as tx:
        rows = tx.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs ORDER BY created").rows
    copied = 0
    with target.db.transaction() as tx:
        for row in rows:
            if row["status"] == "running":
                row = {**row, "status": "queued", "message": "restarted"}
            marks = ", ".join("?" for _ in COLUMNS)
            copied += tx.execute(f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks}) "
                                 "ON CONFLICT (id) DO NOTHING", [row[c] for c in COLUMNS]).rowcount
    return copied, len(rows) - copied
