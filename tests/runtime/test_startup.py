"""What a `stylize` run imports: nothing optional and nothing heavy it does not use (start-up time)."""

from __future__ import annotations

import json
import subprocess
import sys

# Each of these costs a user start-up time (or is an optional extra) and a stylize run needs none.
HEAVY = ("fastapi", "uvicorn", "starlette", "ray", "av", "cv2", "onnx", "onnxruntime", "selenium", "multipart",
         "httpx", "matplotlib", "scipy", "torch._dynamo", "torch.onnx", "torchvision", "sympy")

PROBE = """
import json, sys
from impasto.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_a_stylize_run_imports_nothing_heavy(tmp_path, small_images):
    c, s = small_images
    done = subprocess.run([sys.executable, "-c", PROBE, "stylize", str(c), str(s), "-o", str(tmp_path / "o.png"),
                           "--size", "32", "--iterations", "1", "--scales", "1", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    loaded = [m for m in result["modules"] if m in HEAVY or m.split(".")[0] in HEAVY]
    assert not loaded, f"a stylize run imported {', '.join(loaded)}"


def test_building_the_parser_imports_no_extra():
    probe = "import sys; from impasto.cli import build_parser; build_parser(); print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.split())
    assert not {m.split(".")[0] for m in modules} & {"fastapi", "uvicorn", "starlette", "ray", "av", "cv2", "onnx"}
