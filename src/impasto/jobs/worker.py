"""A process that runs the service's queued jobs, one at a time, with the networks kept loaded.

``python -m impasto.jobs.worker --data DIR --name NAME --parent PID`` (``impasto serve`` starts one
per ``--workers``). It takes ``DIR/workers/NAME.lock`` (waiting for a previous worker of that name
to let go), puts back in the queue the jobs of dead workers (its own earlier life among them: the
store says who claimed what), then claims jobs in order. A thread beats its heartbeat into the store
every few seconds. During a job it records progress four times a second and a preview about once
a second, and stops at the next step when the job is cancelled. When the service that started it
is gone, it exits at once; the job goes back to the queue.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import LOG_LEVELS
from ..errors import ImpastoError, Interrupted
from ..methods.base import ResumeFile
from ..progress import CancelToken, Event
from .database import BEAT_EVERY, LEASE, QUEUE_ENV
from .recipe import Recipe, Runner
from .store import Job, JobStore, Lease, LeaseLost

log = logging.getLogger("impasto.worker")
STORE_BACKOFF_MAX = 30.0

PROGRESS_EVERY = 0.25
PREVIEW_EVERY = 1.0
PREVIEW_SIZE = 512
THUMB_SIZE = 160


def _jpeg(image: Any, edge: int) -> bytes:
    """A small JPEG of ``image`` (a PIL image, or a full-precision result)."""
    from PIL import Image

    from ..io.image import encode_image, load_image, to_pil

    if not isinstance(image, Image.Image):
        loaded = load_image(image)
        image = to_pil(loaded.rgb, loaded.alpha)
    small = image.copy()
    small.thumbnail((edge, edge))
    return encode_image(small, "JPEG", quality=85)


PRUNE_EVERY = 3600.0
ORPHANS_EVERY = 10.0
"""How often an idle worker looks for jobs of dead workers (one that is never restarted)."""


class _Reporter:
    """One job's progress to the store: at most every PROGRESS_EVERY seconds (unless ``every_time``),
    with a preview at most every PREVIEW_EVERY seconds (``render()`` is called only then). Sets the
    cancel token when the job was cancelled; exits the process when its service is gone (the next
    start reruns the job)."""

    def __init__(self, worker: Worker, lease: Lease, cancel: CancelToken) -> None:
        self.worker, self.lease, self.cancel = worker, lease, cancel
        self.last_update = self.last_preview = -float("inf")

    def __call__(self, progress: float, message: str, render: Callable[[], Any], every_time: bool = False,
                 steps: int | None = None) -> None:
        if not self.worker.parent_alive():
            os._exit(0)
        if self.worker.lost == self.lease:  # the heartbeat found the lease gone: stop at once
            raise LeaseLost(f"job {self.lease.job}: attempt {self.lease.attempt} lost its lease")
        now = time.monotonic()
        if now - self.last_update < PROGRESS_EVERY and not every_time:
            return
        self.last_update = now
        preview = None
        if now - self.last_preview >= PREVIEW_EVERY:
            image = render()
            if image is not None:
                preview, self.last_preview = _jpeg(image, PREVIEW_SIZE), now
        if self.worker.store.update(self.lease, progress, message, preview, steps):
            self.cancel.cancel()


class _Steps:
    """Optimizer steps run for a job: those of earlier attempts plus this one's (an attempt that
    resumed from a snapshot starts counting there)."""

    def __init__(self, before: int) -> None:
        self.before = before
        self.first: int | None = None  # the step before this attempt's first one

    def __call__(self, event: Event) -> int | None:
        step = getattr(event, "step", None)
        if not isinstance(step, int):
            return None
        if self.first is None:
            self.first = step - 1
        return self.before + step - self.first


class Worker:
    def __init__(self, store: JobStore, parent: int | None = None, device: str | None = None,
                 keep_days: float = 0.0, name: str = "worker", snapshot_every: float = 5.0,
                 host: str | None = None) -> None:
        self.store, self.parent, self.device, self.keep_days, self.name = store, parent, device, keep_days, name
        self.snapshot_every = snapshot_every
        self.job_in_hand: str | None = None  # the job being run, for serve_forever to requeue if the store breaks
        self.runner = Runner(model_files=False)  # a queued job comes from a client: registered methods only
        self.pruned = -PRUNE_EVERY
        self.orphans_checked = -ORPHANS_EVERY
        self.job: Lease | None = None
        self.lost: Lease | None = None
        """A lease the heartbeat found gone (another worker holds the job): the job is dropped."""
        self.host = host
        self.started = time.time()
        self.store_errors: tuple[type[BaseException], ...] = (*store.errors, OSError)
        """What a database that is down or full, or a failing disk, raises: waited out."""

    def parent_alive(self) -> bool:
        return self.parent is None or os.getppid() == self.parent

    def recipe(self, job: Job) -> Recipe:
        return Recipe.from_json(job.recipe).with_device(self.device, model_files=False)

    def beat(self) -> None:
        lease = self.job
        job = None if lease is None else lease.job
        if not self.store.beat(self.name, os.getpid(), self.device, job, self.started, lease):
            self.lost = lease

    def requeue_orphans(self) -> list[str]:
        """Jobs of dead workers (and of this worker's earlier life) back to the queue."""
        ids = self.store.requeue_interrupted(
            lambda worker: worker == self.name or not self.store.worker_alive(worker))
        if ids:
            log.info("worker %s: %d interrupted job(s) back to the queue or ended: %s", self.name, len(ids),
                     ", ".join(ids))
        return ids

    def run(self, job: Job) -> None:
        from ..gallery import painting

        folder = self.store.folder(job.id)
        lease = job.lease
        styles = [painting(s.split(":", 1)[1]) if s.startswith("gallery:") else folder / s for s in job.styles]
        cancel = CancelToken()
        report = _Reporter(self, lease, cancel)
        first: list[Any] = []  # a video's first frame, for its thumbnail
        # a resumable method's snapshot in the job's folder, one file per attempt (a late writer never
        # touches the new owner's), started from the newest an earlier attempt left; the job records
        # where an attempt resumed from
        snapshots = ResumeFile(self.store.snapshot_path(job.id, job.attempts), self.snapshot_every,
                               lambda work: self.store.resumed(lease, work), self.store.snapshot_path(job.id))
        steps = _Steps(job.steps)

        resumed = [0]  # a video's frames taken from its work folder so far

        def callback(event: Event) -> None:
            if job.kind == "video" and not first:
                first.append(event.image())
            taken = getattr(event, "resumed", 0)
            if taken > resumed[0]:  # a restarted video goes on from the frames it kept
                resumed[0] = taken
                frames = getattr(event, "frames", None)
                self.store.resumed(lease, taken / frames if frames else event.work)
            report(event.work, event.message, event.image, every_time=event.final, steps=steps(event))

        self.job = lease
        began = time.monotonic()
        log.info("job %s: %s started (%s, attempt %d)", job.id, job.kind, Recipe.from_json(job.recipe).method,
                 job.attempts)
        try:
            if self.store.update(lease, 0.0, "loading"):
                cancel.cancel()  # cancelled between claim and start: stops before the first step
            recipe = self.recipe(job)
            if job.kind == "video":
                from ..video.io import only_demuxers

                adopt_frames(folder, job)
                with only_demuxers():  # an upload: read with the demuxers the submit check allowed, no others
                    self.runner.run_video(recipe, folder / job.content, styles, folder / job.result_name,
                                          callback=callback, cancel=cancel)
                if not first or first[0] is None:
                    raise ImpastoError(f"the video {job.result_name} has no frames")
                self.store.finish(lease, _jpeg(first[0], THUMB_SIZE))
                log.info("job %s: done in %.1f s", job.id, time.monotonic() - began)
                return
            depth = recipe.output_bit_depth(folder / job.content, "PNG")
            image = self.runner.run(recipe, folder / job.content, styles, callback=callback, cancel=cancel,
                                    output="loaded", snapshots=snapshots)
            from ..io.image import encode_image

            # a result that cannot be written (a full disk) fails the job with that reason, like any error
            self.store.finish(lease, _jpeg(image, THUMB_SIZE), encode_image(image, "PNG", bit_depth=depth))
            log.info("job %s: done in %.1f s", job.id, time.monotonic() - began)
        except LeaseLost as lost:
            self._dropped(lost)
        except Interrupted as stop:
            if not stop.cancelled:
                raise
            self._ended(lambda: self.store.cancelled(lease))  # its files go, frames included
            log.info("job %s: cancelled after %.1f s", job.id, time.monotonic() - began)
        except ImpastoError as exc:  # a bad input, a failed write (WriteError)...
            self._fail(lease, job, str(exc))
        except (RuntimeError, MemoryError, OSError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self._fail(lease, job, f"out of memory; try a smaller size ({first_line})"
                       if "out of memory" in first_line.lower() or isinstance(exc, MemoryError) else first_line)
        finally:
            self.job = None
            if self.lost == lease:
                self.lost = None

    def _dropped(self, lost: LeaseLost) -> None:
        """Another worker holds the job now (this one was paused or cut off past its lease): its
        writes were refused, and the job is left to the new owner."""
        log.warning("worker %s: %s; dropping the job, its new owner's work stands", self.name, lost)

    def _ended(self, end: Callable[[], None]) -> None:
        try:
            end()
        except LeaseLost as lost:
            self._dropped(lost)

    def _fail(self, lease: Lease, job: Job, reason: str) -> None:
        def end() -> None:
            self.store.fail(lease, reason)
            _drop_frames(self.store.folder(job.id), job)  # only once the failure is this attempt's to record
            log.warning("job %s: failed: %s", job.id, reason)

        self._ended(end)

    def serve_forever(self, poll: float = 0.2) -> None:
        """Claim and run jobs until the parent dies. A store that cannot be written (a full disk:
        SQLite's "database or disk is full") is waited out, with one line on stderr and a growing
        pause (up to STORE_BACKOFF_MAX s), never a crash: a crashing worker is restarted by the
        server, and crashed again, in a loop. A job the store broke under goes back to the queue
        once the store takes writes again (its attempts counted) and resumes from its snapshot."""
        pause, said = poll, ""
        while self.parent_alive():
            try:
                self._once(poll)
                pause = poll
            except self.store_errors as exc:
                line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                if line != said:
                    log.warning("worker %s: the job store cannot be used (%s); waiting", self.name, line)
                    said = line
                if self.job_in_hand is not None:  # not the job's fault: it goes back to the queue, with
                    self.orphans_checked = -ORPHANS_EVERY  # its snapshot, as soon as the store takes that
                pause = min(STORE_BACKOFF_MAX, pause * 2)
                time.sleep(pause)
            finally:
                self.job_in_hand = None

    def _once(self, poll: float) -> None:
        now = time.monotonic()
        if self.keep_days > 0 and now - self.pruned >= PRUNE_EVERY:
            self.store.prune(self.keep_days * 86400)  # finished jobs past their days: files and rows
            self.pruned = now
        if now - self.orphans_checked >= min(ORPHANS_EVERY, self.store.lease / 2):
            self.requeue_orphans()
            self.orphans_checked = now
        job = self.store.claim(self.name, self.host)
        if job is None:
            time.sleep(poll)
        else:
            self.job_in_hand = job.id
            self.run(job)


def _drop_frames(folder: Path, job: Job) -> None:
    """A failed video job keeps no frames: its work folder only serves a restart after a crash,
    which then never comes (a cancelled job's whole folder goes: JobStore.cancelled)."""
    if job.kind == "video":
        from ..video.pipeline import work_folder

        shutil.rmtree(work_folder(folder / job.result_name), ignore_errors=True)


def adopt_frames(folder: Path, job: Job) -> None:
    """A video's frames, kept by an earlier attempt (``result-aN.EXT.frames``), become this attempt's,
    by one rename: the attempt goes on from them, and a late writer of the earlier attempt finds its
    folder gone."""
    from ..video.pipeline import work_folder

    mine = work_folder(folder / job.result_name)
    earlier = sorted((p for p in folder.glob("result*.frames") if p != mine and p.is_dir()),
                     key=lambda p: p.stat().st_mtime)
    if earlier and not mine.exists():
        with contextlib.suppress(OSError):
            os.replace(earlier[-1], mine)


def _beating(worker: Worker) -> threading.Event:
    """Beat ``worker``'s heartbeat every BEAT_EVERY seconds (three times a lease at least) from a
    thread, until the event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a busy database: the next beat will do
                worker.beat()
            stop.wait(min(BEAT_EVERY, worker.store.lease / 3))

    threading.Thread(target=loop, daemon=True, name="impasto-heartbeat").start()
    return stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A worker's options, for ``impasto worker`` and the processes ``impasto serve`` starts."""
    parser.add_argument("--data", required=True,
                        help="the service's data folder (the jobs' files; a folder every machine mounts)")
    parser.add_argument("--queue", default=None, metavar="URL",
                        help=f"the job queue, postgresql://user@host/db; None: ${QUEUE_ENV} if set, else SQLite "
                             "in --data")
    parser.add_argument("--lease", type=float, default=LEASE, metavar="SECONDS",
                        help="a claim holds its job this long between heartbeats")
    parser.add_argument("--host", default=None,
                        help="this machine's name in the queue (default: its hostname); give each machine its own")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: each job's own)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--keep-days", type=float, default=0.0, help="delete finished jobs after this many days")
    parser.add_argument("--snapshot-every", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between an optimize job's snapshots")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="what this worker logs to stderr")


def run_worker(args: argparse.Namespace, *, parent: int | None = None) -> int:
    """Run one worker with ``args`` (:func:`add_arguments`, plus ``name``) until its parent dies,
    SIGTERM or Ctrl-C; an unfinished job goes back to the queue (at once on this machine, after its
    lease elsewhere)."""
    import torch

    from ..config import configure_logging

    configure_logging(args.log_level)
    if args.threads:
        torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a clean stop; an unfinished job reruns next start
    store = JobStore(args.data, args.queue or os.environ.get(QUEUE_ENV) or None, lease=args.lease, host=args.host)
    with open(store.lock_path(args.name), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process per worker name; a dying one lets go on exit
        worker = Worker(store, parent, args.device, args.keep_days, args.name, args.snapshot_every)
        worker.beat()
        worker.requeue_orphans()
        log.info("worker %s: taking jobs from %s", args.name, store.describe())
        stop = _beating(worker)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the job reruns
            worker.serve_forever()
        stop.set()
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impasto.jobs.worker")
    add_arguments(parser)
    parser.add_argument("--name", default="worker", help="this worker's name (one process per name)")
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)
    return run_worker(args, parent=args.parent)


if __name__ == "__main__":
    sys.exit(main())
