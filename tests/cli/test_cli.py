import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from impasto.cli import main

from ..conftest import files_in, sigint_default

SMALL = ["--size", "32", "--iterations", "3", "--quiet"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_success_writes_output_and_log(tmp_path, small_images, capsys):
    c, s = small_images
    out, log = tmp_path / "out.jpg", tmp_path / "run.jsonl"
    code, err = run(["stylize", c, s, "-o", out, "--log", log, "--save-every", "2", *SMALL], capsys)
    assert code == 0, err
    assert Image.open(out).format == "JPEG" and Image.open(out).size == (32, 21)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"elapsed", "content", "style", "tv", "total"} <= set(records[0])
    assert (tmp_path / "out.0002.jpg").exists()


def test_progress_bar_shows_work_and_losses(tmp_path, small_images, capsys):
    c, s = small_images
    code = main(["stylize", str(c), str(s), "-o", str(tmp_path / "o.png"), "--size", "32", "--iterations", "3"])
    err = capsys.readouterr().err
    assert code == 0
    assert "100%" in err and "step 3 of 3" in err and "style" in err and "saved" in err


def test_help_shows_every_default(capsys):
    assert main(["stylize", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--size", "--iterations", "--content-weight", "--style-weight", "--tv-weight",
                 "--content-layers", "--style-layers", "--style-layer-weights", "--style-blend-weights",
                 "--optimizer", "--init", "--seed", "--preserve-color", "--style-scale", "--pooling",
                 "--weights", "--device", "--save-every", "--quiet", "--log"):
        assert flag in text
    assert "(default: 512)" in text and "(default: lbfgs)" in text and "alpha" in text


def test_cli_as_a_subprocess(tmp_path, small_images):
    c, s = small_images
    out = tmp_path / "sub.png"
    proc = subprocess.run([sys.executable, "-m", "impasto", "stylize", c, s, "-o", out, *SMALL],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    bad = subprocess.run([sys.executable, "-m", "impasto", "stylize", c, tmp_path / "nope.png", "-o",
                          tmp_path / "x.png"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"impasto: error: no such file: '{tmp_path / 'nope.png'}'"]


def _bad_images(tmp_path, small_images):
    _, _s = small_images
    text = tmp_path / "text.png"
    text.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    Image.effect_noise((64, 64), 40).convert("RGB").save(tmp_path / "full.png")
    trunc.write_bytes((tmp_path / "full.png").read_bytes()[:300])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (11_000, 11_000)).save(bomb)  # 121 Mpx, a few KB on disk
    return {"missing": tmp_path / "missing.png", "text": text, "trunc": trunc, "bomb": bomb}


@pytest.mark.parametrize("which,message", [
    ("missing", "no such file"),
    ("text", "not an image"),
    ("trunc", "not a readable image"),
    ("bomb", "too large to decode safely"),
])
def test_bad_input_images(tmp_path, small_images, capsys, which, message):
    c, s = small_images
    bad = _bad_images(tmp_path, small_images)[which]
    before = files_in(tmp_path)
    out = tmp_path / "out.png"
    for argv in (["stylize", bad, s, "-o", out], ["stylize", c, bad, "-o", out]):
        code, err = run([*argv, *SMALL], capsys)
        assert code == 2
        assert message in err and len(err.strip().splitlines()) == 1
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("extra,message", [
    (["--size", "0"], "must be a positive integer"),
    (["--size", "-5"], "must be a positive integer"),
    (["--iterations", "0"], "must be a positive integer"),
    (["--style-layers", "relu1_1,relu9_1"], "unknown layer 'relu9_1' for vgg19; valid: conv1_1"),
    (["--content-layers", "fc7"], "unknown layer 'fc7'"),
    (["--style-blend-weights", "1,2"], "2 style blend weights for 1 style images"),
    (["--optimizer", "sgd"], "invalid choice"),
    (["--style-weight", "abc"], "expected a finite number"),
    (["--weights", "nosuch"], "unknown weights 'nosuch'"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path, small_images, capsys, extra, message):
    c, s = small_images
    before = files_in(tmp_path)
    code, err = run(["stylize", c, s, "-o", tmp_path / "out.png", "--size", "32", "--quiet", *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert files_in(tmp_path) == before


def test_output_paths(tmp_path, small_images, capsys):
    c, s = small_images
    before = files_in(tmp_path)
    stamp = (c.read_bytes(), s.read_bytes())
    for out, message in ((s, "is one of the inputs"), (c, "is one of the inputs"),
                         (tmp_path / "missing" / "o.png", "output folder does not exist"),
                         (tmp_path / "o.gif", "unsupported output extension")):
        code, err = run(["stylize", c, s, "-o", out, *SMALL], capsys)
        assert code == 2 and message in err
    assert files_in(tmp_path) == before
    assert (c.read_bytes(), s.read_bytes()) == stamp


def test_nan_exits_1_and_writes_nothing(tmp_path, small_images, capsys, monkeypatch):
    c, s = small_images
    from impasto.losses import objective

    monkeypatch.setattr(objective, "tv_loss", lambda image: image.sum() * float("inf"))
    before = files_in(tmp_path)
    code, err = run(["stylize", c, s, "-o", tmp_path / "out.png", *SMALL], capsys)
    assert code == 1 and "diverged" in err
    assert files_in(tmp_path) == before


def test_ctrl_c_saves_the_image_so_far(tmp_path, small_images, capsys, monkeypatch):
    c, s = small_images
    from impasto.optimize import pipeline as module

    real_optimize = module.optimize

    def interrupting_optimize(*args, callback=None, **kwargs):
        def cb(step, losses, x):
            callback(step, losses, x)
            if step == 2:
                raise KeyboardInterrupt

        return real_optimize(*args, callback=cb, **kwargs)

    monkeypatch.setattr(module, "optimize", interrupting_optimize)
    out = tmp_path / "partial.png"
    code, err = run(["stylize", c, s, "-o", out, "--size", "32", "--iterations", "50", "--quiet"], capsys)
    assert code == 130 and "interrupted at step 2" in err
    assert Image.open(out).size == (32, 21)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".impasto-")]


def test_layers_command(capsys):
    assert main(["layers"]) == 0
    assert "vgg16: conv1_1" in capsys.readouterr().out


def test_real_sigint_saves_partial_result(tmp_path, small_images):
    import signal
    import time

    c, s = small_images
    out, log = tmp_path / "partial.png", tmp_path / "run.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "stylize", c, s, "-o", out, "--size", "48",
                             "--iterations", "100000", "--quiet", "--log", log],
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "saved the image so far" in err
    assert Image.open(out).size == (48, 32)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".impasto-")]


def test_library_errors_are_worded_with_flags(capsys, small_images, tmp_path):
    c, s = small_images
    code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", "--size", "64", "--start-size", "100"], capsys)
    assert code == 2 and "--start-size 100 is above the output size 64" in err
    code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", "--strength", "0.5", "--style-weight", "3"], capsys)
    assert code == 2 and "give either --strength or --style-weight, not both" in err
    assert err.count("\n") == 1  # one line
