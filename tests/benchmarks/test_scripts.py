"""Every benchmark script that stays still runs: each answers ``--help`` (its arguments parse and
its imports resolve in the test install, which lacks the ``bench`` extra), and none imports another
script (``common.py`` is their one shared module). ``test_gpu_script.py`` runs ``gpu.py`` whole at
toy size."""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in [*BENCH.glob("*.py"), *(BENCH / "experiments").glob("*.py")] if p.name != "common.py")


def test_there_are_scripts_and_experiments():
    assert len(SCRIPTS) > 15 and any(p.parent.name == "experiments" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(p.relative_to(BENCH)) for p in SCRIPTS])
def test_each_script_answers_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(p.relative_to(BENCH)) for p in SCRIPTS])
def test_no_script_imports_another(script):
    others = {p.stem for p in SCRIPTS}
    tree = ast.parse(script.read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
        {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert not names & others, f"{script.name} imports {sorted(names & others)}"
