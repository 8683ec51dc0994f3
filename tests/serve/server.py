"""A real `impasto serve` in a child process (its own session, so kill -9 takes its worker too)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path, port: int | None = None, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.data, self.port = data, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.args, self.env = args, env or {}

    def start(self, timeout: float = 60, ready=None) -> Server:
        """Start it and wait until ``ready(health)`` (default: every worker alive and beating)."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", **self.env}
        self.proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(self.port),
                                      "--data", str(self.data), *self.args], start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                health = self.get("/api/health")
                workers = health["workers"]
                if ready is not None and ready(health):
                    return self
                if ready is None and workers and all(w["alive"] and w["heartbeat_age"] is not None for w in workers):
                    return self
            except OSError:
                pass
            assert self.proc.poll() is None, "the server exited at start"
            time.sleep(0.2)
        raise TimeoutError("the server did not start")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)

    def kill9(self) -> None:
        """SIGKILL the server and its worker, as a crash or the OOM killer would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
