"""What the package tells tools: it is typed, and its checkers target the oldest Python it supports."""

from __future__ import annotations

import re
import sys
from importlib.resources import files

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (the test extra installs tomli there)
    import tomli as tomllib

from tests.conftest import ROOT


def test_the_package_says_it_is_typed():
    """PEP 561: a py.typed marker in the package, listed in its package data so wheels carry it."""
    assert files("impasto").joinpath("py.typed").is_file()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["impasto"]


def test_mypy_and_ruff_check_the_oldest_python_the_package_supports():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    oldest = re.fullmatch(r">=\s*3\.(\d+)", meta["project"]["requires-python"])
    assert oldest, meta["project"]["requires-python"]
    assert meta["tool"]["mypy"]["python_version"] == f"3.{oldest[1]}"
    assert meta["tool"]["ruff"]["target-version"] == f"py3{oldest[1]}"
