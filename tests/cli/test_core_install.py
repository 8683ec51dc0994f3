"""The core install on its own: every command without the optional extras, in a subprocess where
importing any of them fails (a meta-path hook, as if they were not installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

OPTIONAL = ("fastapi", "uvicorn", "starlette", "multipart", "python_multipart", "ray", "av", "cv2", "onnx",
            "onnxruntime", "selenium")

BLOCK = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ImportError(f"No module named {{name!r}} (blocked: a core-only install)")
sys.meta_path.insert(0, Block())
from impasto.cli import main
sys.exit(main(sys.argv[1:]))
"""

COMMANDS = ("stylize", "video", "batch", "train", "apply", "methods", "models", "export", "layers", "serve")


def core(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, *map(str, argv)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_parses_and_helps_without_extras(command):
    done = core(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and not done.stderr


def test_stylize_runs_without_extras(tmp_path, small_images):
    c, s = small_images
    out = tmp_path / "out.png"
    done = core("stylize", c, s, "-o", out, "--size", "32", "--iterations", "2", "--initial-iterations", "2",
                "--quiet")
    assert done.returncode == 0, done.stderr
    assert out.exists()


def test_apply_and_models_run_without_extras(tmp_path, small_images):
    out = tmp_path / "fast.png"
    done = core("apply", "multistyle6", small_images[0], "-o", out, "--quiet")
    assert done.returncode == 0, done.stderr
    assert out.exists()
    assert core("models").returncode == 0


@pytest.mark.parametrize(("argv", "extra"), [
    (("serve", "--port", "8799", "--data", "{tmp}/data"), "serve"),
    (("video", "{clip}", "{style}", "-o", "{tmp}/v.mp4"), "video"),
    (("export", "multistyle6", "-o", "{tmp}/m.onnx"), "fast"),
    (("apply", "multistyle6", "{content}", "-o", "{tmp}/a.png", "--runtime", "onnx"), "fast"),
    (("batch", "{folder}", "{style}", "-o", "{tmp}/out", "--ray", "local"), "ray"),
])
def test_optional_command_without_its_extra_says_what_to_install(tmp_path, small_images, argv, extra):
    c, s = small_images
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(c.read_bytes())
    clip = Path(__file__).resolve().parents[2] / "examples" / "bunny.mp4"
    args = [a.format(tmp=tmp_path, clip=clip, style=s, content=c, folder=folder) for a in argv]
    done = core(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'impasto[{extra}]'" in lines[0], done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_methods_lists_the_methods_without_extras():
    done = core("methods")
    assert done.returncode == 0, done.stderr
    assert "optimize:" in done.stdout and "wct:" in done.stdout and "multistyle6:" in done.stdout
