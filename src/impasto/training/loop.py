"""The loop (:func:`run`), one step of it (:func:`step`), and what a model plugs in (:class:`Task`)."""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import NonFiniteLossError, StylizeInterrupted
from ..progress import CancelToken, TrainProgress
from ..runtime import Ranks, all_finite


class NonFiniteStepWarning(UserWarning):
    """A training step was skipped because its gradient was not finite."""


class Task:
    """A trainable model as the loop sees it. Subclasses set ``kind`` (the checkpoint's), ``what``
    (how a message names the model), ``net`` (the trained module, unwrapped) and ``optimizer``, and
    define :meth:`next_batch` and :meth:`forward_backward`; the rest has defaults."""

    kind: ClassVar[str] = ""
    what: ClassVar[str] = "model"
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def next_batch(self) -> Any:
        """The next batch, on the run's device."""
        raise NotImplementedError

    def batch_size(self, batch: Any) -> int:
        return int(batch.shape[0])

    def forward_backward(self, batch: Any) -> tuple[list[str], Tensor]:
        """The loss on ``batch`` and its gradients (in the parameters' ``.grad``), with no host sync:
        (names, values), values holding each named loss and the total, and last 1.0 if every gradient
        is finite, else 0.0, all on the batch's device."""
        raise NotImplementedError

    def diagnose(self, batch: Any) -> list[str]:
        """Which terms' gradients alone are not finite on ``batch`` (asked only after a skipped step
        whose every loss was finite); none by default."""
        return []

    def before_step(self, step: int) -> None:
        """Called before each step (``step`` steps done): a schedule's switch (a teacher's end)."""

    def after_step(self, step: int, main: bool) -> None:
        """Called after each step and its checkpoint (``main``: this process writes files)."""

    def render(self) -> Tensor | None:
        """A preview for the progress events (asked for only when shown)."""
        return None


@dataclass(frozen=True)
class LoopSettings:
    """The loop's own settings, from any trainer's config."""

    steps: int
    checkpoint_every: int
    max_minutes: float | None = None
    max_skipped: int = 5


@dataclass
class LoopState:
    """Where a run is: steps done, seconds trained, the steps skipped (all, and in a row now)."""

    step: int = 0
    seconds: float = 0.0
    skipped_steps: list[int] = field(default_factory=list)
    in_a_row: int = 0


def seed(value: int | None, ranks: Ranks) -> None:
    """The same initial weights on every rank (torch's generator), and each rank its own crops and
    styles (Python's, offset by the rank). None: leave the generators as they are."""
    if value is not None:
        torch.manual_seed(value)
        random.seed(value + ranks.rank)


def step(task: Task, batch: Any, *, stop: bool = False, world: int = 1) -> dict[str, float]:
    """One optimizer step on ``batch``. The named losses come back as floats, averaged over the ranks
    of a distributed run, with ``stop`` > 0 if any rank asked to stop and ``skipped`` > 0 if the
    gradient was not finite on any rank, in which case no rank updates its weights (all in one small
    all-reduce, so that the ranks agree on both)."""
    names, values = task.forward_backward(batch)
    values = torch.cat([values[:-1], (values[-1:] == 0).float()])  # the last: 1 where the gradient is not finite
    names = [*names, "skipped"]
    if world > 1:
        import torch.distributed as dist

        values = torch.cat([values[:-1] / world, values[-1:], values.new_tensor([float(stop)])])
        dist.all_reduce(values)
        names.append("stop")
    elif stop:
        values, names = torch.cat([values, values.new_ones(1)]), [*names, "stop"]
    out = dict(zip(names, values.tolist()))  # one sync, before the weights change
    if out["skipped"] > 0:
        task.optimizer.zero_grad(set_to_none=True)
    else:
        task.optimizer.step()
    return out


def run(task: Task, state: LoopState, settings: LoopSettings, *, ranks: Ranks, checkpoint: Callable[[], None],
        callback: Callable[[TrainProgress], Any] | None = None, cancel: CancelToken | None = None,
        started: float | None = None) -> None:
    """Steps until ``settings.steps`` are done, the time is up (on any rank: all stop at the same step)
    or ``cancel`` is set (:class:`StylizeInterrupted`); ``checkpoint()`` every ``checkpoint_every``
    steps on rank 0. A step whose gradient is not finite is skipped (:func:`skipped`)."""
    started = time.perf_counter() if started is None else started
    deadline = math.inf if settings.max_minutes is None else time.perf_counter() + 60 * settings.max_minutes
    while state.step < settings.steps:
        if cancel is not None and cancel.cancelled:
            raise StylizeInterrupted(None, state.step, cancelled=True)
        task.before_step(state.step)
        t0 = time.perf_counter()
        batch = task.next_batch()
        losses = step(task, batch, stop=time.perf_counter() >= deadline, world=ranks.world)
        state.step += 1
        if losses.pop("skipped", 0.0) > 0:
            skipped(task, state, settings, losses, batch)
        else:
            state.in_a_row = 0
        stop = losses.pop("stop", 0.0) > 0
        state.seconds += time.perf_counter() - t0
        if callback is not None:
            callback(TrainProgress(
                step=state.step, steps=settings.steps, losses=losses, elapsed=time.perf_counter() - started,
                work=state.step / settings.steps, _render=task.render,
                images_per_second=task.batch_size(batch) * ranks.world / max(time.perf_counter() - t0, 1e-9)))
        if ranks.main and state.step % settings.checkpoint_every == 0:
            checkpoint()
        task.after_step(state.step, ranks.main)
        if stop:
            break


def skipped(task: Task, state: LoopState, settings: LoopSettings, losses: dict[str, float], batch: Any) -> None:
    """A step whose gradient was not finite was skipped: say so (which terms), count it, and stop
    after ``max_skipped`` in a row, or at once if the weights themselves are lost (the last good
    checkpoint is kept either way)."""
    if not bool(all_finite(task.net.parameters())):  # lost weights never come back: stop now
        raise NonFiniteLossError(f"training diverged at step {state.step}: the {task.what}'s weights are not finite; "
                                 "try a lower lr; the last checkpoint is kept")
    bad = [k for k, v in losses.items() if k != "total" and not math.isfinite(v)] or task.diagnose(batch)
    what = ", ".join(bad) or "the sum of the terms (no single term's)"
    state.in_a_row += 1
    state.skipped_steps.append(state.step)
    warnings.warn(f"step {state.step} skipped: the gradient of {what} is not finite "
                  f"({len(state.skipped_steps)} skipped so far)", NonFiniteStepWarning, stacklevel=3)
    if state.in_a_row >= settings.max_skipped:
        raise NonFiniteLossError(f"training diverged at step {state.step} ({settings.max_skipped} steps in a row "
                                 f"with a non-finite gradient, last in {what}); try a lower lr; the last checkpoint "
                                 "is kept")


NO_TERMS = "not stated (give data_terms: the licence or terms the photos were used under)"


def data_card(folders: Sequence[str | os.PathLike], files: Sequence[Path], terms: str | None) -> dict[str, Any]:
    """What a model card says of the photos that trained it: the folders' names, how many photos,
    a hash of their list (each file's name and size, sorted: the same photos give the same hash
    wherever they lie), and the terms they were used under (as the trainer was told: a card
    never guesses a licence)."""
    digest = hashlib.sha256()
    for name, size in sorted((f.name, f.stat().st_size) for f in files):
        digest.update(f"{name}\0{size}\n".encode())
    return {"folders": [Path(f).name or str(f) for f in folders], "images": len(files),
            "list_sha256": digest.hexdigest()[:16], "terms": terms.strip() if terms and terms.strip() else NO_TERMS}


def card(state: LoopState, *, device: torch.device, ranks: Ranks, data: dict[str, Any]) -> dict[str, Any]:
    """What every model card says of the run that trained it (beside its settings): its data
    (:func:`data_card`), the steps done and skipped, the seconds, the device and the processes."""
    return {"data": data, "data_images": data["images"], "steps_done": state.step,
            "train_seconds": round(state.seconds, 1), "skipped_steps": list(state.skipped_steps),
            "device": str(device), "processes": ranks.world}


def trained_steps(record: dict[str, Any]) -> int:
    """The steps of every leg a model card records (a model trained on from another, ``init``,
    keeps the earlier legs: nested as ``init_training`` or listed as ``legs``). A record with legs
    and no settings of its own (no ``lr``) is a summary of them: its legs are every leg."""
    legs = [leg for leg in record.get("legs", []) if isinstance(leg, dict)]
    earlier = record.get("init_training")
    if legs and "lr" not in record:
        return sum(trained_steps(leg) for leg in legs)
    own = int(record.get("steps_done", 0) or 0)
    return own + (trained_steps(earlier) if isinstance(earlier, dict) else 0) + sum(trained_steps(leg) for leg in legs)


def last_leg(record: dict[str, Any]) -> dict[str, Any]:
    """The record of the last leg a model card records (itself, unless it is a summary of legs)."""
    legs = [leg for leg in record.get("legs", []) if isinstance(leg, dict)]
    return legs[-1] if legs and "lr" not in record else record
