"""The service's worker processes: started with the server, each started again if it dies.

Each worker is ``python -m impasto.jobs.worker --name wN`` on its own device (``--device``, in
turn) with its share of the CPU threads. A worker that exits with an error or is killed is
started again after a second, under the same name, so it takes back its lock and requeues the job
it was running; the others go on with theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

from .settings import Settings


class WorkerProcess:
    """One worker subprocess, started again if it exits while the service runs."""

    def __init__(self, settings: Settings, name: str, device: str | None, threads: int | None) -> None:
        self.settings, self.name, self.device, self.threads = settings, name, device, threads
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True, name=f"impasto-supervisor-{name}")

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "impasto.jobs.worker", "--data", str(self.settings.data), "--name", self.name,
               "--parent", str(os.getpid()), "--keep-days", str(self.settings.keep_days),
               "--snapshot-every", str(self.settings.snapshot_every)]
        if self.device:
            cmd += ["--device", self.device]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            self.proc = subprocess.Popen(self.command())
            while self.proc.poll() is None and not self.stopping.wait(0.5):
                pass
            if self.proc.returncode == 0:  # asked to stop (SIGTERM, as on shutdown): not a crash
                return
            if not self.stopping.is_set():
                print(f"impasto: worker {self.name} exited ({self.proc.returncode}); starting it again",
                      file=sys.stderr)
                self.restarts += 1
                self.stopping.wait(1.0)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Workers:
    """Every worker of the service."""

    def __init__(self, settings: Settings) -> None:
        devices = settings.devices()
        cpu_workers = sum(1 for d in devices if d in (None, "cpu"))
        threads = max(1, (os.cpu_count() or 1) // cpu_workers) if cpu_workers > 1 else None
        self.all = [WorkerProcess(settings, f"w{i}", device, threads if device in (None, "cpu") else None)
                    for i, device in enumerate(devices)]

    def start(self) -> None:
        for worker in self.all:
            worker.start()

    def stop(self) -> None:
        for worker in self.all:
            worker.stopping.set()
        for worker in self.all:
            worker.stop()

    def health(self, beats: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each worker: name, device, pid, whether it runs, restarts, its job and heartbeat age."""
        by_name = {b["name"]: b for b in beats}
        out = []
        for w in self.all:
            beat = by_name.get(w.name, {})
            out.append({"name": w.name, "device": w.device or "cpu", "pid": w.proc.pid if w.proc else None,
                        "alive": w.alive, "restarts": w.restarts, "job": beat.get("job"),
                        "heartbeat_age": beat.get("heartbeat_age")})
        return out
