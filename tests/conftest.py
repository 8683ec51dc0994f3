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


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture(autouse=True)
def _fixed_memory(monkeypatch):
    """Pin the memory the planner sees to 16 GiB, so no test depends on the machine's free RAM."""
    from impasto.optimize import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 2**30)
