from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import EXAMPLES

pytest.importorskip("fastapi")

TINY_JOB = {"size": "32", "iterations": "1", "initial_iterations": "2", "scales": "1"}


def jpeg(name: str = "lighthouse.jpg", size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.open(EXAMPLES / name).convert("RGB").resize(size).save(buffer, "JPEG")
    return buffer.getvalue()


def make_client(tmp_path: Path, **settings):
    from fastapi.testclient import TestClient

    from impasto.serve import Limits, Settings, create_app

    limits = settings.pop("limits", Limits())
    app = create_app(Settings(data=tmp_path / "data", limits=limits, worker=False, **settings))
    return TestClient(app)


@pytest.fixture
def client(tmp_path, queue_url):
    """The API on each queue: SQLite in the data folder, and a real PostgreSQL server."""
    with make_client(tmp_path, queue=queue_url) as c:
        yield c


@pytest.fixture
def sqlite_client(tmp_path):
    """The API on SQLite only, for what is SQLite's own (its "database or disk is full")."""
    with make_client(tmp_path) as c:
        yield c


def run_queued(client) -> None:
    """Run every queued job in this process, as the worker process would."""
    from impasto.jobs.worker import Worker

    store = client.app.state.store
    worker = Worker(store)
    while (job := store.claim()) is not None:
        worker.run(job)
