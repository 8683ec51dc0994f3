"""Devices from the command line: refused in one line before any work, and out of GPU memory in
one line that names the size and what to try (issue 29's bad input)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.errors import InputError
from impasto.runtime import resolve_device, resolve_devices

from ..conftest import EXAMPLES, files_in

SMALL = ["--size", "32", "--iterations", "2", "--initial-iterations", "2", "--quiet"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("device", "words"), [
    ("cuda", "'cuda' requested but CUDA is not available"),
    ("cuda:7", "'cuda:7' requested but CUDA is not available"),
    ("cpu,tpu", "unknown --device 'tpu'"),
    ("cpu,", "unknown --device ''"),
])
def test_an_unusable_device_is_one_line_and_exit_2_before_any_work(tmp_path, small_images, capsys, device, words,
                                                                   monkeypatch):
    c, s = small_images
    from impasto.optimize import pipeline

    monkeypatch.setattr(pipeline, "load_inputs", lambda *a, **k: pytest.fail("work started"))
    before = files_in(tmp_path)
    code, err = run(["stylize", c, s, "-o", tmp_path / "out.png", "--device", device, *SMALL], capsys)
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert files_in(tmp_path) == before


def test_a_gpu_index_past_the_machine_names_its_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(InputError, match=r"'cuda:7': this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:7")
    assert resolve_devices("cuda:0,cuda:1") == [torch.device("cuda:0"), torch.device("cuda:1")]
    with pytest.raises(InputError, match="unknown device 'cuda:x'"):
        resolve_device("cuda:x")


@pytest.mark.parametrize("argv", [
    ["apply", "multistyle6", "{c}", "-o", "{out}", "--size", "32", "--device", "cpu,cpu"],
    ["train", "{s}", "--data", "{tmp}", "-o", "{tmp}/m.pt", "--steps", "1", "--device", "cpu,cpu"],
])
def test_a_device_list_where_one_device_is_taken_names_the_commands_that_take_a_list(tmp_path, small_images,
                                                                                      capsys, argv):
    c, s = small_images
    before = files_in(tmp_path)
    code, err = run([a.format(c=c, s=s, out=tmp_path / "out.png", tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and "a --device list (cpu,cpu) is taken by impasto stylize" in err and "impasto serve" in err, err
    assert err.count("\n") == 1 and files_in(tmp_path) == before


def test_out_of_gpu_memory_names_the_size_and_what_to_try_and_writes_nothing(tmp_path, small_images, capsys,
                                                                            monkeypatch):
    c, s = small_images
    from impasto.optimize import pipeline

    def no_room(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 139 GiB total)")

    monkeypatch.setattr(pipeline, "optimize", no_room)
    before = files_in(tmp_path)
    code, err = run(["stylize", c, s, "-o", tmp_path / "out.png", *SMALL], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert "out of memory optimizing a 32x21 px scale on cpu; try --tile 128" in err and "smaller --size" in err
    assert files_in(tmp_path) == before


def test_every_command_reads_a_device_the_same_way():
    """' cpu ' was taken by the optimization (a list's entries are stripped) and refused by wct."""
    from impasto.methods import get_method

    assert resolve_device(" cpu ") == resolve_devices(" cpu ")[0] == torch.device("cpu")
    painter = get_method("wct").load({"device": "cpu ", "size": 64}, ["painting.jpg"])
    assert painter.model.device == torch.device("cpu")
    with pytest.raises(InputError, match="taken by impasto stylize with the optimization"):
        resolve_device("cpu,cpu")


TILED = ["--size", "96", "--scales", "1", "--iterations", "2", "--initial-iterations", "2", "--tile", "64",
         "--tile-overlap", "16", "--seed", "0", "--precision", "fp32", "--quiet"]


def test_stylize_takes_a_device_list_through_main_as_the_docs_promise(tmp_path, small_images, capsys):
    """Issue 42's regression: the registry path resolved the loss network's device with the one-device
    parser, so `impasto stylize --device cpu,cpu` was refused. Through main([...]) the tiles of a
    tiled scale are spread over the list, and the image is the one device's, pixel for pixel."""
    from impasto.optimize import pipeline

    c, _ = small_images
    s = EXAMPLES / "starry_night.jpg"
    Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((96, 72)).save(c)
    seen: list[int] = []
    real = pipeline._Run.tiled_on_devices

    def spy(self, *args, **kwargs):
        seen.append(len(self.devices))
        return real(self, *args, **kwargs)

    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # two runs sharing threads split reductions differently (see test_tiling)
    try:
        assert run(["stylize", c, s, "-o", tmp_path / "one.png", "--device", "cpu", *TILED], capsys)[0] == 0
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pipeline._Run, "tiled_on_devices", spy)
            code, err = run(["stylize", c, s, "-o", tmp_path / "two.png", "--device", "cpu,cpu", *TILED], capsys)
    finally:
        torch.set_num_threads(saved)
    assert code == 0, err
    assert seen and set(seen) == {2}
    one, two = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("one", "two"))
    assert np.array_equal(one, two)


def test_stylize_takes_a_device_list_as_a_subprocess(tmp_path, small_images):
    c, s = small_images
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "impasto", "stylize", c, s, "-o", out, "--device", " cpu, cpu ",
                           *SMALL], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (32, 21)  # SMALL paints at 32 px
    bad = subprocess.run([sys.executable, "-m", "impasto", "stylize", c, s, "-o", tmp_path / "b.png", "--method",
                          "wct", "--device", "cpu,cpu", "--size", "64"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "a --device list (cpu,cpu) is taken by impasto stylize" in bad.stderr
    assert not (tmp_path / "b.png").exists()
