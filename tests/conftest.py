from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def content_path() -> Path:
    return EXAMPLES / "lighthouse.jpg"


@pytest.fixture(scope="session")
def style_path() -> Path:
    return EXAMPLES / "starry_night.jpg"


@pytest.fixture
def small_images(tmp_path: Path) -> tuple[Path, Path]:
    """A 48x32 content and a 40x40 style image written to a temp folder."""
    c = tmp_path / "content.png"
    s = tmp_path / "style.png"
    Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((48, 32)).save(c)
    Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((40, 40)).save(s)
    return c, s


def sigint_default() -> None:
    """``preexec_fn`` for a child the test will Ctrl-C: a shell that starts jobs in the background
    (nohup, ``cmd &``) makes them ignore SIGINT, and Python then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture(autouse=True)
def _fixed_memory(monkeypatch):
    """Pin the memory the planner sees to 16 GiB, so no test depends on the machine's free RAM."""
    from impasto.optimize import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 2**30)


# Fast (feed-forward) models: tiny settings, photos and styles for training in tests.
TINY = dict(size=32, batch_size=2, steps=3, width=0.125, blocks=1, style_size=64, workers=0,
            checkpoint_every=2, sample_every=2)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """A folder of six small photos."""
    folder = tmp_path_factory.mktemp("photos")
    base = Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB")
    for i in range(6):
        base.rotate(10 * i).resize((60 + 4 * i, 48)).save(folder / f"p{i}.jpg")
    return folder


@pytest.fixture(scope="session")
def styles(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("styles")
    out = []
    for name in ("starry_night", "wave"):
        path = folder / f"{name}.png"
        Image.open(EXAMPLES / f"{name}.jpg").convert("RGB").resize((64, 64)).save(path)
        out.append(path)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, photos, styles) -> Path:
    """A two-style model trained for a few steps at 32 px."""
    from impasto.fast import TrainConfig, train

    out = tmp_path_factory.mktemp("model") / "tiny.pt"
    train(styles, [photos], out, config=TrainConfig.from_options(**TINY))
    return out


# A real PostgreSQL server for the job queue's tests (tests/pg.py); each test gets a database of its own.
@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server; skipped where none is installed, except in CI (CI=true),
    where a missing server fails: its tests must run there."""
    import os

    from tests.pg import PostgresServer, pg_bin

    if pg_bin("initdb") is None or pg_bin("pg_ctl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql")
        pytest.skip("needs PostgreSQL (Debian's postgresql package)")
    pytest.importorskip("psycopg")
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="impasto-pg-"))  # not under pytest's folder: root-only (0700)
    server = PostgresServer(root)
    yield server
    server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_url(request) -> str | None:
    """Each queue the service runs on: None (SQLite in the data folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_server").new_database()
