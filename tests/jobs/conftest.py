from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import EXAMPLES

QUICK = ["--size", "32", "--iterations", "1", "--initial-iterations", "2", "--scales", "1", "--quiet"]
"""Batch flags for a run that takes well under a second per image."""


def make_photos(folder: Path, n: int, *, bad: bool = True, size: int = 48) -> Path:
    """``n`` small photos (one in a sub-folder) and, if ``bad``, a file that is not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir(exist_ok=True)
    base = Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB")
    for i in range(n):
        where = folder / "sub" if i == 0 else folder
        base.rotate(15 * i).resize((size + 4 * i, size)).save(where / f"p{i}.jpg")
    if bad:
        (folder / "broken.png").write_bytes(b"this is not a png")
    return folder


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "in", 3)
