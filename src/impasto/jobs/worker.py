"""The process that runs the service's queued jobs, one at a time, with the networks kept loaded.

``python -m impasto.jobs.worker --data DIR --parent PID`` (``impasto serve`` starts it). It takes
``DIR/worker.lock`` (waiting for a previous worker to let go), puts back any job a dead worker left
running, then claims jobs in order. During a job it records progress four times a second and a
preview about once a second, and stops at the next iteration when the job is cancelled. When the
service that started it is gone, it exits at once; the next start reruns the unfinished job.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import ImpastoError, StylizeInterrupted
from ..progress import CancelToken
from .recipe import Recipe, Runner
from .store import Job, JobStore

PROGRESS_EVERY = 0.25
PREVIEW_EVERY = 1.0
PREVIEW_SIZE = 512
THUMB_SIZE = 160


def _jpeg(image: Any, edge: int) -> bytes:
    from ..io.image import encode_image

    small = image.copy()
    small.thumbnail((edge, edge))
    return encode_image(small, "JPEG", quality=85)


PRUNE_EVERY = 3600.0


class _Reporter:
    """One job's progress to the store: at most every PROGRESS_EVERY seconds (unless ``every_time``),
    with a preview at most every PREVIEW_EVERY seconds (``render()`` is called only then). Sets the
    cancel token when the job was cancelled; exits the process when its service is gone (the next
    start reruns the job)."""

    def __init__(self, worker: Worker, job_id: str, cancel: CancelToken) -> None:
        self.worker, self.job_id, self.cancel = worker, job_id, cancel
        self.last_update = self.last_preview = -float("inf")

    def __call__(self, progress: float, message: str, render: Callable[[], Any], every_time: bool = False) -> None:
        if not self.worker.parent_alive():
            os._exit(0)
        now = time.monotonic()
        if now - self.last_update < PROGRESS_EVERY and not every_time:
            return
        self.last_update = now
        preview = None
        if now - self.last_preview >= PREVIEW_EVERY:
            image = render()
            if image is not None:
                preview, self.last_preview = _jpeg(image, PREVIEW_SIZE), now
        if self.worker.store.update(self.job_id, progress, message, preview):
            self.cancel.cancel()


class Worker:
    def __init__(self, store: JobStore, parent: int | None = None, device: str | None = None,
                 keep_days: float = 0.0) -> None:
        self.store, self.parent, self.device, self.keep_days = store, parent, device, keep_days
        self.runner = Runner()
        self.pruned = -PRUNE_EVERY

    def parent_alive(self) -> bool:
        return self.parent is None or os.getppid() == self.parent

    def recipe(self, job: Job) -> Recipe:
        recipe = Recipe.from_json(job.recipe)
        if self.device and "device" not in recipe.options:
            recipe = Recipe(recipe.method, {**recipe.options, "device": self.device})
        return recipe

    def run(self, job: Job) -> None:
        from ..gallery import painting

        folder = self.store.folder(job.id)
        styles = [painting(s.split(":", 1)[1]) if s.startswith("gallery:") else folder / s for s in job.styles]
        cancel = CancelToken()
        report = _Reporter(self, job.id, cancel)

        def callback(event: Any) -> None:
            report(event.work, f"step {event.step} of {event.iterations}", event.image,
                   every_time=event.step == event.iterations)

        if self.store.update(job.id, 0.0, "loading"):
            cancel.cancel()  # cancelled between claim and start: stops before the first iteration
        try:
            if job.kind == "video":
                self._video(job, styles, cancel)
                return
            image = self.runner.run(self.recipe(job), folder / job.content, styles, callback=callback, cancel=cancel)
        except StylizeInterrupted as stop:
            if not stop.cancelled:
                raise
            self.store.cancelled(job.id)
        except ImpastoError as exc:
            self.store.fail(job.id, str(exc))
        except (RuntimeError, MemoryError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.store.fail(job.id, f"out of memory; try a smaller size ({first})"
                            if "out of memory" in first.lower() or isinstance(exc, MemoryError) else first)
        else:
            from ..io.image import encode_image

            self.store.finish(job.id, _jpeg(image, THUMB_SIZE), encode_image(image, "PNG"))

    def _video(self, job: Job, styles: list[Any], cancel: CancelToken) -> None:
        """The video method; a rerun after a crash resumes from the frames already in its work folder."""
        from PIL import Image

        from ..io.image import to_pil
        from ..video.io import read_frames
        from ..video.pipeline import work_folder

        output = self.store.folder(job.id) / job.result_name
        frames = work_folder(output)
        report = _Reporter(self, job.id, cancel)

        def newest_frame() -> Any:
            newest = max(frames.glob("*.png"), default=None)
            if newest is None:
                return None
            with Image.open(newest) as frame:
                return frame.convert("RGB")

        def callback(event: Any) -> None:
            total = f" of {event.frames}" if event.frames else ""
            progress = min(event.frame / event.frames, 0.99) if event.frames else 0.0
            resumed = f", {event.resumed} resumed" if event.resumed else ""  # after a crash: kept frames
            report(progress, f"frame {event.frame}{total}{resumed}", newest_frame, every_time=True)

        self.runner.run_video(self.recipe(job), self.store.folder(job.id) / job.content, styles, output,
                              callback=callback, cancel=cancel)
        for first in read_frames(output):  # the first frame makes the thumbnail
            self.store.finish(job.id, _jpeg(to_pil(first.image), THUMB_SIZE))
            break
        else:
            raise ImpastoError(f"the encoded video {output.name} has no frames")

    def serve_forever(self, poll: float = 0.2) -> None:
        while self.parent_alive():
            if self.keep_days > 0 and time.monotonic() - self.pruned >= PRUNE_EVERY:
                self.store.prune(self.keep_days * 86400)  # finished jobs past their days: files and rows
                self.pruned = time.monotonic()
            job = self.store.claim()
            if job is None:
                time.sleep(poll)
            else:
                self.run(job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impasto.jobs.worker")
    parser.add_argument("--data", required=True, help="the service's data folder")
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: each job's own)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--keep-days", type=float, default=0.0, help="delete finished jobs after this many days")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a clean stop; an unfinished job reruns next start
    store = JobStore(args.data)
    with open(store.root / "worker.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker per data folder; a dying one lets go on exit
        store.requeue_interrupted()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C on `impasto serve`: the job reruns next time
            Worker(store, args.parent, args.device, args.keep_days).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
