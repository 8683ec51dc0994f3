"""A method registered from this file runs through batch, the service and video, with no edit there.

The method paints a photo's edges: the absolute forward differences of its luminance, times
``gain``, as a grey image. It is real (every driver's result is checked against a NumPy
reference), cheap and deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import InputError
from impasto.io.image import as_output, load_image, to_pil
from impasto.jobs.batch import run_batch
from impasto.jobs.recipe import Recipe
from impasto.methods import Method, Painter, available, get_method, register, unregister
from impasto.ops.color import luminance
from impasto.ops.geometry import fit_long_edge, resize
from impasto.progress import Event

from ..jobs.conftest import make_photos

NAME = "test-edges"


class EdgesMethod(Method):
    name = NAME
    summary = "the photo's edges (a test method)"
    web_options = ("size", "gain")

    def option_types(self) -> dict[str, Any]:
        return {"size": int | None, "gain": float}

    def check(self, options: Mapping[str, Any], n_styles: int) -> None:
        super().check(options, n_styles)
        gain = options.get("gain", 1.0)
        if not isinstance(gain, (int, float)) or gain <= 0:
            raise InputError(f"gain must be a positive number; got {gain!r}", fields=("gain",))

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> Painter:
        return EdgesPainter(options.get("size"), float(options.get("gain", 1.0)))


class EdgesPainter(Painter):
    def __init__(self, size: int | None, gain: float) -> None:
        self.size, self.gain = size, gain

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil") -> Any:
        x = load_image(content).rgb
        if self.size is not None:
            x = resize(x, fit_long_edge(tuple(x.shape[-2:]), self.size))
        lum = luminance(x)
        edges = torch.zeros_like(lum)
        edges[..., :, :-1] += (lum[..., :, 1:] - lum[..., :, :-1]).abs()
        edges[..., :-1, :] += (lum[..., 1:, :] - lum[..., :-1, :]).abs()
        out = (edges * self.gain).clamp(0, 1).expand(-1, 3, -1, -1)
        if callback is not None:
            callback(Event(work=1.0, elapsed=0.0, _render=lambda: out))
        return as_output(out, None, output)


def reference(rgb: np.ndarray, gain: float) -> np.ndarray:
    """The same edges in NumPy, from 8-bit RGB: (H, W) in [0, 255]."""
    x = rgb.astype(np.float64) / 255
    lum = x @ np.array([0.299, 0.587, 0.114])
    edges = np.zeros_like(lum)
    edges[:, :-1] += np.abs(np.diff(lum, axis=1))
    edges[:-1, :] += np.abs(np.diff(lum, axis=0))
    return np.clip(edges * gain, 0, 1) * 255


def assert_edges_of(result: Image.Image, photo: Image.Image, gain: float) -> None:
    got = np.asarray(result.convert("RGB")).astype(np.float64)
    want = reference(np.asarray(photo.convert("RGB")), gain)
    assert got.shape[:2] == want.shape
    assert np.abs(got[..., 0] - want).max() <= 2.0  # 8-bit rounding and float32 arithmetic
    assert got.std() > 5  # not a blank image: the photo's edges are there


@pytest.fixture(autouse=True)
def edges_method():
    register(EdgesMethod(), replace=True)
    yield
    unregister(NAME)


def test_the_method_is_found_by_name_and_checks_its_options():
    assert NAME in available() and get_method(NAME).name == NAME
    with pytest.raises(InputError, match="gain must be"):
        Recipe(NAME, {"gain": -1.0}).check(0)
    with pytest.raises(InputError, match="takes only size, gain"):
        Recipe(NAME, {"iterations": 3}).check(0)
    with pytest.raises(InputError, match="paints only its own styles"):
        Recipe(NAME, {}).check(1)


def test_batch_runs_a_registered_method(tmp_path):
    photos = make_photos(tmp_path / "in", 2, bad=False)
    report = run_batch(photos, [], tmp_path / "out", Recipe(NAME, {"gain": 3.0}))
    assert report.done == 2 and not report.failed
    for name in ("sub/p0", "p1"):
        assert_edges_of(Image.open(tmp_path / "out" / f"{name}.png"), Image.open(photos / f"{name}.jpg"), 3.0)


def test_the_batch_command_takes_the_method_by_name(tmp_path):
    from impasto.cli import main

    photos = make_photos(tmp_path / "in", 1, bad=False)
    assert main(["batch", str(photos), "-o", str(tmp_path / "out"), "--method", NAME, "--size", "48", "--quiet"]) == 0
    assert_edges_of(Image.open(tmp_path / "out" / "sub" / "p0.png"), Image.open(photos / "sub" / "p0.jpg"), 1.0)


def test_the_service_lists_and_runs_a_registered_method(tmp_path):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import jpeg, make_client, run_queued

    data = jpeg(size=(64, 48))
    with make_client(tmp_path) as client:
        listed = {m["name"]: m for m in client.get("/api/methods").json()}
        assert listed[NAME]["options"] == ["size", "gain"] and listed[NAME]["takes_styles"] is False
        refused = client.post("/api/jobs", data={"method": NAME, "style": "wave_crop"}, files={"content": data})
        assert refused.status_code == 422 and "takes no style" in refused.json()["detail"]
        job = client.post("/api/jobs", data={"method": NAME, "gain": "2", "size": "64"},
                          files={"content": data}).json()
        run_queued(client)
        assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "done"
        result = client.get(f"/api/jobs/{job['id']}/result")
    assert_edges_of(Image.open(io.BytesIO(result.content)), Image.open(io.BytesIO(data)), 2.0)


def test_video_runs_a_registered_method_frame_by_frame(tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from impasto.video import stylize_video
    from impasto.video.io import read_frames
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    out = tmp_path / "frames"
    stylize_video(clip, [], out, method=NAME, size=64, gain=4.0)
    frames = sorted(out.glob("frame_*.png"))
    inputs = list(read_frames(str(clip)))
    assert len(frames) == len(inputs) == 4
    for path, frame in zip(frames, inputs):
        assert_edges_of(Image.open(path), to_pil(frame.image), 4.0)


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as before its first lookup, so plug-ins load again (restored afterwards)."""
    from impasto.methods import registry

    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "_builtin", set())
    monkeypatch.setattr(registry, "_resolvers", [])
    monkeypatch.setattr(registry, "_loaded", False)
    return registry


@pytest.mark.parametrize(("plugin", "why"), [
    ("tests.methods.plugins.no_such_module",
     "ModuleNotFoundError: No module named 'tests.methods.plugins.no_such_module'"),
    ("tests.methods.plugins.buggy", "RuntimeError: the plug-in's own bug"),
    ("tests.methods.plugins.takes_optimize",
     "ValueError: 'optimize' is a built-in method; a plug-in's method needs a name of its own"),
])
def test_a_plug_in_that_cannot_load_is_one_line_naming_it(plugin, why, fresh_registry, monkeypatch):
    """A plug-in's import error was a traceback (anything but ImportError) or carried the error's
    every line; a plug-in could replace a built-in method without a word."""
    monkeypatch.setenv("IMPASTO_PLUGINS", f" {plugin} ")
    with pytest.raises(InputError) as err:
        available()
    assert str(err.value) == f"cannot load the plug-in {plugin!r} named in $IMPASTO_PLUGINS: {why}"


def test_a_plug_in_never_replaces_a_built_in_method(fresh_registry, monkeypatch):
    """Neither by registering the name itself nor through an entry point's Method instance; a
    method of its own name registers as before."""
    from importlib.metadata import EntryPoint

    from impasto.methods.optimization import OptimizeMethod

    monkeypatch.delenv("IMPASTO_PLUGINS", raising=False)
    assert isinstance(get_method("optimize"), OptimizeMethod)
    with pytest.raises(ValueError, match="'optimize' is a built-in method"):
        register(type("Impostor", (EdgesMethod,), {"name": "optimize"})(), replace=True)
    assert isinstance(get_method("optimize"), OptimizeMethod)

    fresh_registry._loaded = False
    fresh_registry._registry.clear()
    fresh_registry._builtin.clear()
    point = EntryPoint(name="impostor", value="tests.methods.plugins.takes_optimize:Impostor",
                       group="impasto.methods")
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [point] if group == "impasto.methods" else [])
    with pytest.raises(InputError, match=r"^cannot load the plug-in 'tests.methods.plugins.takes_optimize:Impostor' "
                                         r"\(entry point 'impostor' of an installed package\): ValueError: 'optimize' "
                                         r"is a built-in method"):
        available()


def test_the_command_line_says_a_broken_plug_in_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import EXAMPLES, ROOT

    env = {**__import__("os").environ, "IMPASTO_PLUGINS": "tests.methods.plugins.buggy", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "impasto", "batch", str(EXAMPLES), str(EXAMPLES / "starry_night.jpg"),
                          "-o", str(tmp_path / "out"), "--method", "wct"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == ("impasto: error: cannot load the plug-in 'tests.methods.plugins.buggy' named in "
                                  "$IMPASTO_PLUGINS: RuntimeError: the plug-in's own bug")
