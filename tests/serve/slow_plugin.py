"""A plug-in method for the tests of several workers (``IMPASTO_PLUGINS=tests.serve.slow_plugin``).

``test-slow`` takes ``steps`` tenths of a second, reporting each step and stopping when cancelled,
and paints the photo's negative; it is resumable, its snapshot the next step's number. Each run
appends ``start TAG FIRST_STEP PID`` and ``end TAG PID`` to the file named by ``$IMPASTO_TEST_LOG``,
so a test can count how often each job ran, where, and from which step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from impasto.errors import Interrupted
from impasto.io.image import as_output, load_image
from impasto.methods import Method, Painter, register
from impasto.progress import Event


def log(line: str) -> None:
    path = os.environ.get("IMPASTO_TEST_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{line} {os.getpid()}\n")


class SlowMethod(Method):
    name = "test-slow"
    summary = "the photo's negative, slowly (a test method)"
    web_options = ("steps", "tag")

    def option_types(self) -> dict[str, Any]:
        return {"steps": int, "tag": str}

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> Painter:
        return SlowPainter(int(options.get("steps", 10)), str(options.get("tag", "")))


class SlowPainter(Painter):
    resumable = True  # its snapshot is the next step's number, so a requeued job goes on from there

    def __init__(self, steps: int, tag: str) -> None:
        self.steps, self.tag = steps, tag

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil",
              snapshots: Any = None) -> Any:
        out = 1 - load_image(content).rgb
        first = 0
        if snapshots is not None:
            for path in (snapshots.path, snapshots.start_from):
                if path is not None and os.path.exists(path):
                    with open(path) as fh:
                        first = int(fh.read() or 0)
                    break
        log(f"start {self.tag} {first}")
        for step in range(first, self.steps):
            if cancel is not None and cancel.cancelled:
                raise Interrupted(None, step, cancelled=True)
            time.sleep(0.1)
            if snapshots is not None:
                from impasto.io.atomic import atomic_write

                with atomic_write(snapshots.path) as fh:
                    fh.write(str(step + 1).encode())
            if callback is not None:
                callback(Event(work=(step + 1) / self.steps, elapsed=0.1 * (step + 1), _render=lambda: out))
        log(f"end {self.tag}")
        return as_output(out, None, output)


register(SlowMethod(), replace=True)
