"""A folder of photos -> a folder of paintings, resumable, on one process, a pool, or a Ray cluster.

Every image is one *task*: bytes in (the photo and the styles), bytes out (the encoded result),
so the same function runs in this process, in a local process pool, or as a Ray task on another
machine with no shared disk. The driver alone reads inputs and writes outputs, each atomically,
so OUTPUT_DIR never holds a half-written file; a rerun skips every output that exists.

OUTPUT_DIR also holds ``.impasto.json``, the recipe and the styles' digests: a rerun with
other settings is refused instead of silently mixing two looks in one folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ImpastoError, InputError
from ..io.atomic import atomic_write
from ..io.image import output_format
from ..video.io import INPUT_EXTENSIONS as VIDEO_EXTENSIONS
from ..video.io import is_video, video_output_extension
from .recipe import Recipe, Runner

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
INPUT_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
"""Videos are stylized with the video method (temporal consistency, sound kept)."""
MANIFEST = ".impasto.json"


@dataclass(frozen=True)
class Task:
    source: Path
    output: Path

    @property
    def is_video(self) -> bool:
        return is_video(self.source)

    @property
    def work(self) -> Path:
        """Where a video task keeps its frames while it runs (hidden, beside its output), so an
        interrupted batch resumes the video from them; removed once the output is written."""
        return self.output.with_name(f".{self.output.name}.work")




Result = tuple[bytes | None, str | None]
"""What a task returns: (the encoded output, None) or (None, a one-line reason it failed)."""


@dataclass
class BatchReport:
    total: int = 0
    skipped: int = 0
    """Outputs already there (from an earlier run)."""
    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def plan(input_dir: str | os.PathLike, output_dir: str | os.PathLike, fmt: str = ".png") -> list[Task]:
    """Every image under ``input_dir`` (sub-folders kept) and its output under ``output_dir``."""
    src, dst = Path(input_dir), Path(output_dir)
    if not src.is_dir():
        raise InputError(f"input folder does not exist: {str(src)!r}")
    ext = fmt if fmt.startswith(".") else "." + fmt
    output_format("x" + ext)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise InputError(f"the output folder {str(dst)!r} must not be inside the input folder {str(src)!r}")
    tasks: list[Task] = []
    seen: dict[Path, Path] = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_EXTENSIONS):
        rel = path.relative_to(src)
        if any(part.startswith(".") for part in rel.parts):
            continue
        out = dst / rel.with_suffix(video_output_extension(path) if is_video(path) else ext)
        if out in seen:
            raise InputError(f"{str(seen[out])!r} and {str(path)!r} would both be written to {str(out)!r}; "
                             "rename one")
        seen[out] = path
        tasks.append(Task(path, out))
    if not tasks:
        raise InputError(f"no images in {str(src)!r} (looked for {', '.join(INPUT_EXTENSIONS)})")
    return tasks


def _digest(paths: Sequence[str | os.PathLike]) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for p in paths]


def prepare_output(output_dir: str | os.PathLike, recipe: Recipe, styles: Sequence[str | os.PathLike],
                   fmt: str) -> None:
    """Create OUTPUT_DIR, check it was made with the same settings, clear temporaries of a killed run."""
    dst = Path(output_dir)
    dst.mkdir(parents=True, exist_ok=True)
    manifest = {"recipe": json.loads(recipe.to_json()), "styles": _digest(styles), "format": fmt}
    path = dst / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            raise InputError(f"{str(dst)!r} holds results made with other settings ({_changes(old, manifest)} "
                             "differ); choose another output folder, or delete it to start again")
    else:
        with atomic_write(path) as fh:
            fh.write(json.dumps(manifest, indent=1).encode())
    for stale in dst.rglob(".impasto-*"):  # temporaries of a run killed mid-write (never the outputs)
        with contextlib.suppress(OSError):
            stale.unlink()


def _changes(old: Any, new: dict[str, Any]) -> str:
    """What differs between two manifests, in words ('size, style images')."""
    if not isinstance(old, dict) or not isinstance(old.get("recipe"), dict):
        return "an unreadable settings file"
    out = []
    if old["recipe"].get("method") != new["recipe"]["method"]:
        out.append("method")
    a, b = old["recipe"].get("options", {}), new["recipe"]["options"]
    out += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if old.get("styles") != new["styles"]:
        out.append("style images")
    if old.get("format") != new["format"]:
        out.append("format")
    return ", ".join(out) or "settings"


# --- the task: runs wherever the executor puts it --------------------------------------------------

_RUNNER: Runner | None = None


def run_task(recipe_json: str, content: bytes, name: str, styles: Sequence[bytes], out_ext: str,
             threads: int | None = None, work: str | None = None) -> Result:
    """Stylize one photo (or video) given as bytes into the format of ``out_ext``.

    ``work``: a folder on this machine where a video keeps its frames, so a rerun resumes from them
    (None: a temporary folder, for a task that may run on another machine). Returns (encoded
    output, None) or (None, one-line error).
    """
    global _RUNNER
    import torch

    from ..io.image import decode_image

    if threads:
        torch.set_num_threads(threads)
    if _RUNNER is None:
        _RUNNER = Runner()
    recipe = Recipe.from_json(recipe_json)
    try:
        style_images = [decode_image(s, f"style {i + 1}") for i, s in enumerate(styles)]
        if is_video(name):
            return _run_video(recipe, content, name, style_images, out_ext, work), None
        return _RUNNER.encode(recipe, decode_image(content, name), style_images, output_format("x" + out_ext)), None
    except ImpastoError as exc:
        return None, str(exc)
    except (RuntimeError, MemoryError) as exc:  # out of memory on one huge image: report it, go on
        return None, (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _run_video(recipe: Recipe, content: bytes, name: str, styles: Sequence[Any], out_ext: str,
               work: str | None) -> bytes:
    """The video method on a clip given as bytes, in ``work`` (kept between runs: the frames made
    so far are reused) or in a temporary folder."""
    import tempfile

    assert _RUNNER is not None
    with contextlib.ExitStack() as stack:
        folder = Path(work) if work else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="impasto-batch-")))
        folder.mkdir(parents=True, exist_ok=True)
        src, out = folder / f"input{Path(name).suffix.lower()}", folder / f"output{out_ext}"
        if not src.is_file() or src.read_bytes() != content:  # the same input keeps its file (and its frames)
            with atomic_write(src) as fh:
                fh.write(content)
        _RUNNER.run_video(recipe, src, styles, out)
        return out.read_bytes()


# --- executors: submit tasks, yield (task, result) as they finish ------------------------------------

def _inputs(task: Task, styles: Any) -> tuple[bytes, str, Any, str]:
    """run_task's arguments after the recipe: the photo's bytes (read only now), its name, the styles,
    and the output's extension."""
    return task.source.read_bytes(), task.source.name, styles, task.output.suffix


def _work(task: Task) -> str | None:
    """A video task's work folder, for executors on this machine."""
    return str(task.work) if task.is_video else None


def _bounded(tasks: Sequence[Task], slots: int, submit: Callable[[Task], Any],
             wait_any: Callable[[list[Any]], list[tuple[Any, Result]]]) -> Iterator[tuple[Task, Result]]:
    """Keep at most twice ``slots`` tasks in flight, so a folder of 100,000 photos is never read into
    memory at once; yield each (task, result) as it finishes. ``submit(task)`` returns a handle
    (a future, a Ray reference); ``wait_any(handles)`` blocks until some finish: [(handle, result)]."""
    pending: dict[Any, Task] = {}
    queue = iter(tasks)
    while True:
        while len(pending) < 2 * max(1, slots):
            task = next(queue, None)
            if task is None:
                break
            pending[submit(task)] = task
        if not pending:
            return
        for handle, result in wait_any(list(pending)):
            yield pending.pop(handle), result


class _Serial:
    def __init__(self, recipe_json: str, styles: list[bytes]) -> None:
        self.args = (recipe_json, styles)

    def map(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Result]]:
        recipe_json, styles = self.args
        for task in tasks:
            yield task, run_task(recipe_json, *_inputs(task, styles), None, _work(task))

    def close(self) -> None:
        pass


class _Pool:
    """N processes on this machine (spawned, each with its share of the CPU threads)."""

    def __init__(self, recipe_json: str, styles: list[bytes], workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.args = (recipe_json, styles, max(1, (os.cpu_count() or 1) // workers))
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Result]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        recipe_json, styles, threads = self.args
        return _bounded(tasks, self.workers,
                        lambda task: self.pool.submit(run_task, recipe_json, *_inputs(task, styles), threads,
                                                      _work(task)),
                        lambda futures: [(f, f.result()) for f in wait(futures, return_when=FIRST_COMPLETED)[0]])

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Ray:
    """Ray tasks: one GPU each on a cluster with GPUs, else one CPU each."""

    def __init__(self, recipe_json: str, styles: list[bytes], address: str) -> None:
        from ..runtime import require

        ray = require("ray", "ray")
        self.ray = ray
        if address == "local":
            ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, configure_logging=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cannot connect to the Ray cluster at {address!r}: "
                                 f"{(str(exc).strip().splitlines() or ['?'])[0]}", fields=("ray",)) from None
        resources = ray.cluster_resources()
        gpu = resources.get("GPU", 0) > 0
        if gpu:  # Ray gives each task its own GPU as cuda:0
            recipe_json = Recipe.from_json(recipe_json).with_device("cuda").to_json()
        self.remote = ray.remote(num_gpus=1 if gpu else 0, num_cpus=1, max_retries=2)(run_task)
        self.slots = int(resources.get("GPU", 0) if gpu else resources.get("CPU", 1))
        self.recipe_json, self.styles = recipe_json, ray.put(styles)

    def map(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Result]]:
        ray = self.ray
        return _bounded(tasks, self.slots,
                        lambda task: self.remote.remote(self.recipe_json, *_inputs(task, self.styles), 1),
                        lambda refs: [(r, ray.get(r)) for r in ray.wait(refs, num_returns=1)[0]])

    def close(self) -> None:
        self.ray.shutdown()


def run_batch(input_dir: str | os.PathLike, styles: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
              recipe: Recipe, *, fmt: str = ".png", workers: int = 1, ray: str | None = None,
              progress: Callable[[BatchReport, Task | None], Any] | None = None) -> BatchReport:
    """Stylize every image under ``input_dir`` into ``output_dir``; returns what was done.

    ``workers`` > 1 runs that many processes; ``ray`` is a Ray address (or 'local'). Outputs that
    exist are skipped, so a rerun after an interruption redoes nothing. ``progress(report, task)``
    is called after each image. A bad image is recorded in ``report.failed`` and the run goes on.
    """
    recipe.check(len(styles))  # an unknown method, option or style is refused before any work
    recipe.output_bit_depth(None, output_format("x" + (fmt if fmt.startswith(".") else "." + fmt)))
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer; got {workers!r}", fields=("workers",))
    from ..io.image import open_pil

    style_bytes = []
    for path in styles:
        open_pil(path)  # a bad style fails the whole batch, at once
        style_bytes.append(Path(path).read_bytes())
    tasks = plan(input_dir, output_dir, fmt)
    from ..runtime import require

    if ray:  # refuse a missing extra before any output folder is made
        require("ray", "ray")
    if any(t.is_video for t in tasks):
        require("av", "video")
        require("cv2", "video")
    prepare_output(output_dir, recipe, styles, fmt)
    report = BatchReport(total=len(tasks))
    todo = [t for t in tasks if not t.output.exists()]
    report.skipped = len(tasks) - len(todo)
    if progress is not None:
        progress(report, None)
    if not todo:
        return report
    executor: Any
    if ray:
        executor = _Ray(recipe.to_json(), style_bytes, ray)
    elif workers > 1:
        executor = _Pool(recipe.to_json(), style_bytes, min(workers, len(todo)))
    else:
        executor = _Serial(recipe.to_json(), style_bytes)
    try:
        for task, (data, error) in executor.map(todo):
            if data is None:
                report.failed.append((task.source, error or "failed"))
            else:
                task.output.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(task.output) as fh:
                    fh.write(data)
                if task.is_video:
                    shutil.rmtree(task.work, ignore_errors=True)
                report.done += 1
            if progress is not None:
                progress(report, task)
    finally:
        executor.close()
    return report
