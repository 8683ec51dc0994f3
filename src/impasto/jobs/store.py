"""The service's persistent job queue: SQLite (one file, no server) plus one folder per job.

``DATA/jobs.sqlite`` holds the queue; ``DATA/jobs/ID/`` holds the job's inputs (``content.EXT``,
``style-N.EXT``, named by the store, never by the uploader), its live ``preview.jpg`` and its
``result.png`` and ``thumb.jpg``. Every file is written atomically, and a job's row is inserted only
once its folder is complete, so a crash at any moment leaves either a whole job or none.

Any number of processes may use the store at once (WAL mode; each call opens its own connection).
Any number of workers run jobs, each under its own name: a job's row records the worker that
claimed it. A live worker holds ``DATA/workers/NAME.lock`` and beats a heartbeat into the
``workers`` table every few seconds. A job left ``running`` by a dead worker (its lock free, or its
heartbeat stale) goes back to the queue (:meth:`JobStore.requeue_interrupted`), so no job is ever
lost, and no job a live worker is running is ever handed to another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
SNAPSHOT = "snapshot.pt"
"""A running optimize job's snapshot in its folder: its next attempt continues from there."""
MAX_ATTEMPTS = 3
"""A job that kills its worker this many times (out of memory, say) is failed, not retried forever."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    recipe TEXT NOT NULL,
    content TEXT NOT NULL,
    styles TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    preview INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    resumed_from REAL,
    steps INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    device TEXT,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    job TEXT
);
"""
COLUMNS_ADDED = {"worker": "TEXT", "resumed_from": "REAL", "steps": "INTEGER NOT NULL DEFAULT 0"}
"""Columns later versions added to ``jobs``: a store made by an older impasto gets them on open."""
STALE_AFTER = 300.0
"""A worker whose heartbeat is older than this many seconds is dead (hung, or on a machine whose
lock files this one cannot see), even if its lock seems held."""


class QueueFull(Exception):
    """The queue holds as many jobs as it may."""


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

    @property
    def kind(self) -> str:
        """'video' for a video content (the video method), else 'image'."""
        from ..video.io import is_video

        return "video" if is_video(self.content) else "image"

    @property
    def result_name(self) -> str:
        """The result's file name in the job's folder."""
        from ..video.io import video_output_extension

        return f"result{video_output_extension(self.content)}" if self.kind == "video" else "result.png"

    def public(self) -> dict[str, Any]:
        """What the API shows."""
        recipe = json.loads(self.recipe)
        out = {"id": self.id, "status": self.status, "kind": self.kind, "progress": round(self.progress, 4),
               "message": self.message, "method": recipe["method"], "options": recipe["options"],
               "bit_depth": recipe.get("bit_depth"),
               "created": self.created, "started": self.started, "finished": self.finished,
               "preview": self.preview, "worker": self.worker, "attempts": self.attempts,
               "resumed_from": None if self.resumed_from is None else round(self.resumed_from, 4),
               "steps": self.steps}
        if self.error is not None:
            out["error"] = self.error
        return out


class JobStore:
    def __init__(self, data: str | os.PathLike) -> None:
        self.root = Path(data)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self.db = self.root / "jobs.sqlite"
        (self.root / "workers").mkdir(exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            have = {row["name"] for row in con.execute("PRAGMA table_info(jobs)")}
            for name, kind in COLUMNS_ADDED.items():
                if name not in have:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                        con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            yield con
        finally:
            con.close()

    def folder(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    @staticmethod
    def _job(row: sqlite3.Row | None) -> Job | None:
        if row is None:
            return None
        data = dict(row)
        data["styles"] = json.loads(data["styles"])
        return Job(**data)

    def remove_orphans(self) -> list[str]:
        """Remove what a web process killed mid-submit left behind: ``.incoming-*`` folders (written
        before the job's folder is renamed into place) and job folders with no row (renamed, but not
        yet recorded). Only for the one web process at its start, when no submit is in flight.
        Returns the names removed."""
        with self._connect() as con:
            known = {row["id"] for row in con.execute("SELECT id FROM jobs")}
        gone = []
        for path in sorted((self.root / "jobs").iterdir()):
            if path.is_dir() and (path.name.startswith(".incoming-") or
                                  (not path.name.startswith(".") and path.name not in known)):
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
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            active = con.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
            if active >= max_active:
                con.execute("ROLLBACK")
                shutil.rmtree(self.folder(job_id), ignore_errors=True)
                raise QueueFull(f"the queue is full ({active} jobs waiting or running); try again later")
            con.execute("INSERT INTO jobs (id, status, recipe, content, styles, created) "
                        "VALUES (?, 'queued', ?, ?, ?, ?)",
                        (job_id, recipe_json, content_name, json.dumps(names), time.time()))
            con.execute("COMMIT")
        return job_id

    def get(self, job_id: str) -> Job | None:
        with self._connect() as con:
            return self._job(con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def recent(self, limit: int = 50) -> list[Job]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [j for j in map(self._job, rows) if j is not None]

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | {r[0]: r[1] for r in rows}

    def cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one is flagged and its worker stops it. A
        cancelled job keeps no files (its uploads included): only its row, until it is pruned, so
        cancelled submissions cannot fill the disk."""
        with self._connect() as con:
            now_cancelled = con.execute("UPDATE jobs SET status = 'cancelled', finished = ?, message = 'cancelled' "
                                        "WHERE id = ? AND status = 'queued'", (time.time(), job_id)).rowcount
            con.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND status = 'running'", (job_id,))
        if now_cancelled:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return self.get(job_id)

    def prune(self, older_than: float) -> int:
        """Delete finished jobs (done, failed, cancelled) that ended more than ``older_than`` seconds
        ago, files first and then rows; returns how many. Queued and running jobs are never touched."""
        cutoff = time.time() - older_than
        with self._connect() as con:
            ids = [r[0] for r in con.execute("SELECT id FROM jobs WHERE status IN ('done', 'failed', 'cancelled') "
                                             "AND finished < ?", (cutoff,)).fetchall()]
        for job_id in ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
            with self._connect() as con:
                con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return len(ids)

    # --- the worker side -------------------------------------------------------------------------

    def lock_path(self, worker: str) -> Path:
        """The lock file a live worker called ``worker`` holds."""
        return self.root / "workers" / f"{worker}.lock"

    def worker_alive(self, worker: str | None) -> bool:
        """Whether the worker ``worker`` holds its lock and beats its heartbeat."""
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
        with self._connect() as con:
            row = con.execute("SELECT heartbeat FROM workers WHERE name = ?", (worker,)).fetchone()
        return row is None or time.time() - row["heartbeat"] < STALE_AFTER

    def requeue_interrupted(self, dead: Callable[[str | None], bool] | None = None) -> list[str]:
        """Jobs left 'running' by a dead worker go back to the queue (or fail after MAX_ATTEMPTS).

        ``dead(worker)`` says whether the worker that claimed a job is gone; None: every running job's
        worker is (the caller knows that no worker runs). The check and the update are one
        transaction, so a worker cannot claim a job between them."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            rows = con.execute("SELECT id, attempts, cancel, worker FROM jobs WHERE status = 'running'").fetchall()
            rows = [r for r in rows if dead is None or dead(r["worker"])]
            for row in rows:
                if row["cancel"]:
                    con.execute("UPDATE jobs SET status = 'cancelled', finished = ?, message = 'cancelled' "
                                "WHERE id = ?", (time.time(), row["id"]))
                elif row["attempts"] >= MAX_ATTEMPTS:
                    with contextlib.suppress(OSError):
                        self.snapshot_path(row["id"]).unlink(missing_ok=True)
                    con.execute("UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE id = ?",
                                (time.time(), f"the worker stopped {row['attempts']} times while running this "
                                 "job (out of memory?)", row["id"]))
                else:
                    con.execute("UPDATE jobs SET status = 'queued', progress = 0, message = 'restarted' "
                                "WHERE id = ?", (row["id"],))
            con.execute("COMMIT")
        return [r["id"] for r in rows]

    def claim(self, worker: str = "worker") -> Job | None:
        """The oldest queued job, now marked running by ``worker`` (atomically: no two workers get the
        same job)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                con.execute("COMMIT")
                return None
            con.execute("UPDATE jobs SET status = 'running', started = ?, attempts = attempts + 1, "
                        "message = 'starting', worker = ? WHERE id = ?", (time.time(), worker, row["id"]))
            con.execute("COMMIT")
        return self.get(row["id"])

    def beat(self, worker: str, pid: int, device: str | None, job: str | None, started: float) -> None:
        """A worker's heartbeat: it is alive, and runs ``job`` (or none)."""
        with self._connect() as con:
            con.execute("INSERT INTO workers (name, pid, device, started, heartbeat, job) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, device = excluded.device, "
                        "started = excluded.started, heartbeat = excluded.heartbeat, job = excluded.job",
                        (worker, pid, device, started, time.time(), job))

    def workers(self) -> list[dict[str, Any]]:
        """Every worker that has beaten a heartbeat: name, pid, device, job, seconds since its beat."""
        with self._connect() as con:
            rows = con.execute("SELECT * FROM workers ORDER BY name").fetchall()
        now = time.time()
        return [{"name": r["name"], "pid": r["pid"], "device": r["device"], "job": r["job"],
                 "started": r["started"], "heartbeat_age": round(now - r["heartbeat"], 1)} for r in rows]

    def snapshot_path(self, job_id: str) -> Path:
        """Where a running job keeps its snapshot (removed when the job ends)."""
        return self.folder(job_id) / SNAPSHOT

    def resumed(self, job_id: str, work: float) -> None:
        """The job's attempt continues from a snapshot at this work fraction."""
        with self._connect() as con:
            con.execute("UPDATE jobs SET resumed_from = ?, progress = ? WHERE id = ?", (work, work, job_id))

    def update(self, job_id: str, progress: float, message: str, preview: bytes | None = None,
               steps: int | None = None) -> bool:
        """Record progress (and a newer preview image, and the steps run so far in all attempts);
        returns True if a cancel was asked for."""
        if preview is not None:
            with atomic_write(self.folder(job_id) / "preview.jpg") as fh:
                fh.write(preview)
        with self._connect() as con:
            con.execute("UPDATE jobs SET progress = ?, message = ?, preview = preview + ?, "
                        "steps = COALESCE(?, steps) WHERE id = ?",
                        (progress, message, int(preview is not None), steps, job_id))
            row = con.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel"])

    def finish(self, job_id: str, thumbnail: bytes, result: bytes | None = None) -> None:
        """Write the result (unless a writer already put it in place atomically, as the video encoder
        does) and the thumbnail, then mark the job done: 'done' always has its whole file."""
        job = self.get(job_id)
        assert job is not None
        folder = self.folder(job_id)
        if result is not None:
            with atomic_write(folder / job.result_name) as fh:
                fh.write(result)
        with atomic_write(folder / "thumb.jpg") as fh:
            fh.write(thumbnail)
        self._end(job_id, "done", None, "done", progress=1.0)

    def fail(self, job_id: str, error: str) -> None:
        """Mark the job failed; ``error`` is shown to clients, so server paths are taken out of it."""
        self._end(job_id, "failed", self.public_message(error), "failed")

    def public_message(self, text: str) -> str:
        """``text`` without this server's paths: files under the data folder by their own name, any
        other absolute path by its last part; one line."""
        line = (text.strip().splitlines() or [""])[0]
        for root in {str(self.root.resolve()), str(self.root)}:
            line = re.sub(re.escape(root) + r"/(?:[^\s'\"]*/)?([^/\s'\"]+)", r"\1", line)
        return re.sub(r"(?<![\w.])/(?:[^\s'\"/]+/)+([^\s'\"/]+)", r"\1", line)

    def cancelled(self, job_id: str) -> None:
        """The worker stopped the job as asked: it ends, and its files go (see :meth:`cancel`)."""
        self._end(job_id, "cancelled", None, "cancelled")
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def _end(self, job_id: str, status: str, error: str | None, message: str, progress: float | None = None) -> None:
        with self._connect() as con:
            con.execute("UPDATE jobs SET status = ?, error = ?, message = ?, finished = ?, "
                        "progress = COALESCE(?, progress) WHERE id = ?",
                        (status, error, message, time.time(), progress, job_id))
        # an ended job resumes nothing: its snapshot goes, only once the end is recorded (a store that
        # cannot record it, a full disk, leaves the job running, to be requeued and resumed from it)
        with contextlib.suppress(OSError):
            self.snapshot_path(job_id).unlink(missing_ok=True)
