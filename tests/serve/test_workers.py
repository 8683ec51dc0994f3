"""The service's worker processes: restarted with a growing pause, and what they log."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from impasto.serve import Settings, workers


def _pauses(caplog) -> list[float]:
    return [float(r.getMessage().rsplit(" in ", 1)[1].removesuffix(" s")) for r in caplog.records
            if r.name == "impasto.serve" and "starting it again" in r.getMessage()]


def _crash_for(seconds: float, tmp_path, monkeypatch) -> workers.WorkerProcess:
    worker = workers.WorkerProcess(Settings(data=tmp_path / "data"), "w0", None, None)
    monkeypatch.setattr(worker, "command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])
    worker.start()
    time.sleep(seconds)
    worker.stop()
    worker.thread.join(5)
    return worker


def test_a_worker_that_keeps_dying_is_restarted_with_a_doubling_pause(tmp_path, monkeypatch, caplog):
    """The supervisor restarted a crashing worker every second, for ever; the pause now doubles up
    to RESTART_MAX while the worker dies young, and each restart is one warning naming it."""
    monkeypatch.setattr(workers, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(workers, "RESTART_MAX", 0.2)
    monkeypatch.setattr(workers, "RESTART_SETTLED", 100.0)
    caplog.set_level(logging.INFO, logger="impasto")
    worker = _crash_for(2.0, tmp_path, monkeypatch)
    pauses = _pauses(caplog)
    assert len(pauses) >= 4 and worker.restarts == len(pauses)
    assert pauses == [min(0.2, 0.05 * 2 ** i) for i in range(len(pauses))]
    warning = next(r for r in caplog.records if "starting it again" in r.getMessage())
    assert warning.levelname == "WARNING" and warning.getMessage().startswith("worker w0 exited (3) after 0 s")


def test_a_worker_that_ran_a_while_is_restarted_after_the_first_pause(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(workers, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(workers, "RESTART_SETTLED", 0.0)  # every run counts as settled
    caplog.set_level(logging.INFO, logger="impasto")
    _crash_for(1.0, tmp_path, monkeypatch)
    pauses = _pauses(caplog)
    assert len(pauses) >= 3 and set(pauses) == {0.05}


def test_the_workers_log_at_the_servers_level(tmp_path):
    worker = workers.WorkerProcess(Settings(data=tmp_path / "data", log_level="warning"), "w0", None, None)
    command = worker.command()
    assert command[command.index("--log-level") + 1] == "warning"


def test_a_worker_logs_each_job_start_and_end(tmp_path, caplog):
    from impasto.jobs.recipe import Recipe
    from impasto.jobs.store import JobStore
    from impasto.jobs.worker import Worker
    from tests.conftest import EXAMPLES

    store = JobStore(tmp_path / "data")
    recipe = Recipe("optimize", {"size": 32, "iterations": 1, "initial_iterations": 1, "scales": 1})
    content = (EXAMPLES / "lighthouse.jpg").read_bytes()
    good = store.submit(recipe.to_json(), (".jpg", content), ["gallery:wave_crop"], 10)
    bad = store.submit(recipe.to_json(), (".jpg", b"not a jpeg"), ["gallery:wave_crop"], 10)
    caplog.set_level(logging.INFO, logger="impasto")
    worker = Worker(store)
    while (job := store.claim()) is not None:
        worker.run(job)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "impasto.worker"]
    assert ("INFO", f"job {good}: image started (optimize, attempt 1)") in lines
    assert any(level == "INFO" and m.startswith(f"job {good}: done in ") for level, m in lines)
    assert any(level == "WARNING" and m.startswith(f"job {bad}: failed: not ") for level, m in lines), lines


@pytest.mark.parametrize("level", ["verbose", "INFO"])
def test_serve_refuses_a_log_level_it_does_not_know(level, tmp_path, capsys):
    from impasto.cli import main

    assert main(["serve", "--data", str(tmp_path / "data"), "--log-level", level]) == 2
    assert "--log-level: invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
