"""The service's worker processes: started with the server, each started again if it dies.

Each worker is ``python -m impasto.jobs.worker --name wN`` on its own device (``--device``, in
turn) with its share of the CPU threads. A worker that exits with an error or is killed is
started again under the same name, so it takes back its lock and requeues the job it was running;
the others go on with theirs. The pause before a restart doubles from :data:`RESTART_FIRST` to
:data:`RESTART_MAX` seconds while the worker keeps dying young (a broken GPU, a bad install), and
is back to the first once a worker has run :data:`RESTART_SETTLED` seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from .settings import QUEUE_ENV, Settings

log = logging.getLogger("impasto.serve")
RESTART_FIRST = 1.0
RESTART_MAX = 60.0
RESTART_SETTLED = 60.0


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
               "--lease", str(self.settings.lease),
               "--snapshot-every", str(self.settings.snapshot_every), "--log-level", self.settings.log_level]
        if self.device:
            cmd += ["--device", self.device]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd

    def _supervise(self) -> None:
        pause = RESTART_FIRST
        while not self.stopping.is_set():
            started = time.monotonic()
            env = dict(os.environ)
            env.pop(QUEUE_ENV, None)
            if self.settings.queue:  # the URL may hold a password: never on the command line
                env[QUEUE_ENV] = self.settings.queue
            self.proc = subprocess.Popen(self.command(), env=env)
            log.info("worker %s started (pid %d, device %s)", self.name, self.proc.pid, self.device or "cpu")
            while not self.stopping.is_set():
                try:
                    self.proc.wait(0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.returncode == 0:  # asked to stop (SIGTERM, as on shutdown): not a crash
                return
            if not self.stopping.is_set():
                ran = time.monotonic() - started
                if ran >= RESTART_SETTLED:
                    pause = RESTART_FIRST
                log.warning("worker %s exited (%s) after %.0f s; starting it again in %g s",
                            self.name, self.proc.returncode, ran, pause)
                self.restarts += 1
                self.stopping.wait(pause)
                pause = min(RESTART_MAX, pause * 2)

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
        # workers of a shared queue are named after their machine: every name is unique across machines
        prefix = f"{socket.gethostname()}-" if settings.queue else ""
        cpu_workers = sum(1 for d in devices if d in (None, "cpu"))
        threads = max(1, (os.cpu_count() or 1) // cpu_workers) if cpu_workers > 1 else None
        self.all = [WorkerProcess(settings, f"{prefix}w{i}", device, threads if device in (None, "cpu") else None)
                    for i, device in enumerate(devices)]

    def start(self) -> None:
        for worker in self.all:
            worker.start()

    def stop(self) -> None:
        for worker in self.all:
            worker.stopping.set()
        for worker in self.all:
            worker.stop()

def health(workers: Workers | None, beats: list[dict[str, Any]], lease: float) -> list[dict[str, Any]]:
    """Every worker: those this process started (name, device, pid, whether it runs, restarts) and
    every other that beats a heartbeat into the queue, on any machine (alive while its heartbeat is
    younger than the lease), each with its host, job and heartbeat age."""
    by_name = {b["name"]: b for b in beats}
    out = []
    for w in workers.all if workers is not None else []:
        beat = by_name.pop(w.name, {})
        out.append({"name": w.name, "host": beat.get("host"), "device": w.device or "cpu",
                    "pid": w.proc.pid if w.proc else None, "alive": w.alive, "restarts": w.restarts,
                    "job": beat.get("job"), "heartbeat_age": beat.get("heartbeat_age")})
    for beat in by_name.values():
        age = beat.get("heartbeat_age")
        out.append({"name": beat["name"], "host": beat.get("host"), "device": beat.get("device") or "cpu",
                    "pid": beat.get("pid"), "alive": age is not None and age < lease, "restarts": None,
                    "job": beat.get("job"), "heartbeat_age": age})
    return out
