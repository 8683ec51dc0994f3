"""The README's figures are the results files' (``benchmarks/readme_figures.py``), not typed by hand."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readmes_figures_are_the_results_files():
    """A results file re-run with new figures, or a figure edited by hand in the README, fails here:
    run ``python benchmarks/readme_figures.py --write``."""
    figures = _script()
    assert figures.readme_table((ROOT / "README.md").read_text()) == figures.table()


def test_each_figure_is_read_from_its_file():
    """The reader follows the files, so a changed file changes the figure (spot checks)."""
    figures = _script()
    assert figures.span([12.7, 15.0]) == "12.7-15.0" and figures.span([3.0, 3.0]) == "3.0"
    assert figures.short_cpu("Intel(R) Xeon(R) Processor") == "Intel Xeon"
    row = next(line for line in figures.table().splitlines() if line.startswith("| the fast model"))
    fast_ms = float(next(r for r in figures._table_rows((ROOT / "benchmarks/results/fast.md").read_text())
                         if r[0] == "512")[3])
    assert f"| {fast_ms:.0f} ms |" in row
