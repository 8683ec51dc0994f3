"""The examples in the README and on the documentation's pages run, so that a renamed flag or
function breaks CI, not a reader.

* Every ``impasto ...`` command in a ``bash`` block is parsed by impasto's own parser: its
  sub-command, every flag and every choice must exist (nothing runs; the files it names need not).
  The README's commands also run, at 32 px (see :func:`_tiny`), and must exit 0: a method's own
  option check happens only when a command runs.
* Every ``python`` block runs on its own in a fresh interpreter (a new process, as a reader pastes
  it), in a folder holding tiny stand-ins for the files they name (``photo.jpg``, ``painting.jpg``,
  ``photos/``...), with every ``size=N`` (and ``"size": N``) cut to 48 and every ``workers=N`` to
  ``workers=1`` in the text: tiny sizes and no process pool, said here rather than hidden. A
  block a CPU test cannot run (a server, a GPU, a cluster) is preceded by
  ``<!-- not run: the reason -->``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ..conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]*) -->\s*\n)?```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


def blocks(page: Path, lang: str) -> list[tuple[str, str | None]]:
    """(code, why it is not run) of each ``lang`` block; the code is padded with blank lines to its
    line on the page, so a failure's traceback names the page's own line."""
    text = page.read_text()
    return [("\n" * text.count("\n", 0, m.start("code")) + m["code"], m["why"])
            for m in BLOCK.finditer(text) if m["lang"] == lang]


def commands(code: str) -> list[tuple[int, list[str]]]:
    """(line on the page, argv) of each ``impasto`` command of a shell block, continuation lines
    joined, comments dropped."""
    found = []
    lines = code.split("\n")
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        while line.endswith("\\") and number + 1 < len(lines):
            number += 1
            line = line[:-1] + " " + lines[number]
        number += 1
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("impasto "):
            found.append((start, shlex.split(line)[1:]))
    return found


CASES = [(p, line, argv) for p in PAGES for code, _ in blocks(p, "bash") for line, argv in commands(code)]


def test_the_pages_hold_examples_to_check():
    assert len(CASES) > 50 and sum(len(blocks(p, "python")) for p in PAGES) >= 8


@pytest.mark.parametrize("page,line,argv", CASES, ids=[f"{p.name}:{n}:{' '.join(a)[:50]}" for p, n, a in CASES])
def test_every_command_on_the_pages_parses(page, line, argv, capsys):
    from impasto.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:  # --help exits 0
            pytest.fail(f"{page.name}, line {line}: `impasto {' '.join(argv)}` does not parse: "
                        f"{capsys.readouterr().err.strip()}")


def _stand_ins(folder: Path) -> dict:
    """Tiny files under the names the examples use, and the variables they assume."""
    photo = Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((48, 40))
    painting = Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((48, 40))
    for name, image in {"photo.jpg": photo, "painting.jpg": painting, "a.jpg": painting, "b.jpg": painting}.items():
        image.save(folder / name)
    (folder / "photos").mkdir()
    for i in range(2):
        photo.rotate(90 * i).save(folder / "photos" / f"p{i}.jpg")
    import tifffile

    tifffile.imwrite(folder / "photo16.tif", (np.asarray(photo).astype(np.uint16) * 257))
    return {"pil_image": photo, "style_a": painting, "style_tensor": torch.rand(3, 40, 48)}


PYTHON = [p for p in PAGES if blocks(p, "python")]


PRELUDE = """from PIL import Image as _Image
import torch as _torch
pil_image = _Image.open("photo.jpg").convert("RGB")
style_a = _Image.open("painting.jpg").convert("RGB")
style_tensor = _torch.rand(3, 40, 48)
del _Image, _torch
"""
"""The stand-in variables the examples assume (``_stand_ins`` writes the files), and nothing else: no
name an example uses is defined here but these three."""

BLOCKS = [(page, n, code) for page in PYTHON for n, (code, why) in enumerate(blocks(page, "python")) if why is None]


@pytest.mark.parametrize(("page", "n", "code"), BLOCKS, ids=[f"{p.name}:{n + 1}" for p, n, _ in BLOCKS])
def test_every_python_example_runs_in_a_fresh_interpreter(page, n, code, tmp_path):
    """Each block alone, in a new Python process, as a reader pastes it into a fresh interpreter: the
    README's ``impasto.fast.load_model(...)`` once passed only because an earlier block had imported
    ``impasto.fast``. Sizes are cut to 48 and workers to 1 in the text (said here, not hidden)."""
    import subprocess
    import sys

    _stand_ins(tmp_path)
    tiny = re.sub(r"\bworkers=\d+", "workers=1", re.sub(r"""(\bsize=|"size": )\d+""", r"\g<1>48", code))
    script = PRELUDE + f"exec(compile({tiny!r}, {str(page.relative_to(ROOT))!r}, 'exec'))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{page.name}, block {n + 1}:\n{done.stderr[-3000:]}"


def test_every_marked_block_says_why_it_is_not_run():
    for page in PYTHON:
        for _, why in blocks(page, "python"):
            assert why is None or why.strip(), f"{page.name}: a block marked not run must say why"


README_SERVES = {"serve"}  # runs until stopped: tests/serve starts real servers instead
TINY_COMMANDS = {"stylize", "apply", "video", "batch"}


def _tiny(argv: list[str]) -> list[str]:
    """The command at 32 px (``--size N`` cut to 32, or ``--size 32`` added), and a video's first
    0.2 s (``--duration 0.2``): said here, not hidden."""
    if argv[0] not in TINY_COMMANDS:
        return argv
    if argv[0] == "video" and "--duration" not in argv:
        argv = [*argv, "--duration", "0.2"]
    if "--size" in argv:
        at = argv.index("--size") + 1
        return [*argv[:at], "32", *argv[at + 1:]]
    return [*argv, "--size", "32"]


README_CASES = [(line, argv) for p, line, argv in CASES if p.name == "README.md" and argv[0] not in README_SERVES]


@pytest.mark.parametrize("line,argv", README_CASES, ids=[f"README.md:{n}:{' '.join(a)[:40]}" for n, a in README_CASES])
def test_every_command_in_the_readme_runs_at_a_tiny_size(line, argv, tmp_path, monkeypatch, capsys):
    """Parsing is not enough: the README's `impasto video ... --model multistyle6` once parsed and
    always exited 2 at its method's option check. Each README command runs, at 32 px, in a folder
    of stand-in files, and must exit 0."""
    if argv[0] == "video":
        pytest.importorskip("av")
    from impasto.cli import main

    _stand_ins(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    code = main(_tiny(argv) + (["--quiet"] if argv[0] in TINY_COMMANDS else []))
    assert code == 0, f"README.md, line {line}: `impasto {' '.join(argv)}` exited {code}: {capsys.readouterr().err}"
