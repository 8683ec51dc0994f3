"""Findings of the hostile probe of the CLI (issue 31), one test each: one line, exit 2, nothing written."""

from __future__ import annotations

import os
import re
import shutil
import threading

import numpy as np
import pytest
import tifffile

from impasto.cli import main
from impasto.errors import InputError

from ..conftest import EXAMPLES, files_in

SMALL = ["--size", "32", "--iterations", "1", "--initial-iterations", "1", "--quiet"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_every_integer_option_has_a_range(tmp_path, small_images, capsys):
    c, s = small_images
    for extra, words in ((["--style-loss", "mrf", "--mrf-stride", str(2**63)], "--mrf-stride must be from 1 to 64"),
                         (["--iterations", str(2**40)], "--iterations must be from 1 to 2147483647")):
        code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", *extra, "--quiet"], capsys)
        assert code == 2 and words in err and err.count("\n") == 1, err
    assert "o.png" not in files_in(tmp_path)


@pytest.mark.parametrize("text", ["٠.٥", "nan", "inf", "1_0", "0x1p-2", "0.5\xa0"])
def test_numbers_are_plain_ascii_and_finite(tmp_path, small_images, capsys, text):
    c, s = small_images
    code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", "--strength", text, "--quiet"], capsys)
    assert code == 2 and "expected a finite number in ASCII digits" in err, err


def test_serve_refuses_a_port_past_65535_and_a_nan_upload_limit(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "must be a port from 1 to 65535" in capsys.readouterr().err
    assert main(["serve", "--max-upload-mb", "nan"]) == 2
    assert "expected a finite number" in capsys.readouterr().err


def test_save_every_never_writes_over_an_input(tmp_path, small_images, capsys):
    c, s = small_images
    photo = tmp_path / "out.0005.png"
    shutil.copy(c, photo)
    before = photo.read_bytes()
    code, err = run(["stylize", photo, s, "-o", tmp_path / "out.png", "--save-every", "5", *SMALL], capsys)
    assert code == 2 and "--save-every would write its images (out.NNNN.png) over the input" in err, err
    assert photo.read_bytes() == before and not (tmp_path / "out.png").exists()


def test_a_fifo_as_input_is_refused_not_waited_on(tmp_path, small_images, capsys):
    _, s = small_images
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    result = {}

    def go():
        result["stylize"] = run(["stylize", fifo, s, "-o", tmp_path / "a.png", *SMALL], capsys)
        result["apply"] = run(["apply", "multistyle6", fifo, "-o", tmp_path / "b.png", "--quiet"], capsys)

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "wb"):
            pass
        pytest.fail("a command waited on a FIFO")
    for code, err in result.values():
        assert code == 2 and "is not a regular file" in err, err


def test_a_corrupt_zlib_16_bit_tiff_is_one_line(tmp_path, small_images, capsys):
    _, s = small_images
    arr = (np.random.default_rng(0).random((64, 64, 3)) * 65535).astype(np.uint16)
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, arr, compression="zlib")
    data = bytearray(good.read_bytes())
    for i in range(300, 1200):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(data))
    code, err = run(["stylize", bad, s, "-o", tmp_path / "o.png", *SMALL], capsys)
    assert code == 2 and "not a readable image" in err and err.count("\n") == 1, err


def test_a_fast_model_refuses_a_size_too_small_in_one_line(tmp_path, capsys):
    code, err = run(["apply", "multistyle6", EXAMPLES / "lighthouse.jpg", "-o", tmp_path / "o.png", "--size", "4"],
                    capsys)
    assert code == 2 and "image too small" in err and "needs at least 16 px" in err, err
    from impasto.methods import get_method

    with pytest.raises(InputError, match="image too small"):
        get_method("multistyle6").check_content({"size": 4}, (300, 400))


def test_training_refuses_the_settings_it_would_ignore():
    from impasto.fast import TrainConfig

    for options in ({"style_rotations": (10.0,)}, {"style_scales": (0.8,)}, {"style_scale": 2.0}):
        with pytest.raises(InputError, match="training does not use"):
            TrainConfig.from_options(**options)


# issue 35, item 10

def no_networks(monkeypatch):
    """Loading any network fails the test: the optimization's loss network, wct's encoder and decoders."""
    def loaded(*args, **kwargs):
        pytest.fail("a network was loaded")

    monkeypatch.setattr("impasto.nets.vgg.build_extractor", loaded)
    monkeypatch.setattr("impasto.universal.stylize.Universal.__init__", loaded)


def test_blend_weights_are_bounded_so_their_sum_cannot_overflow(small_images):
    """style_blend_weights=1e308 summed to inf and finished "done" with no style left."""
    import impasto
    from impasto.fast.model import load_model
    from impasto.universal.stylize import UniversalConfig

    c, s = small_images
    words = re.escape("style_blend_weights must be numbers from 0 to 1e+06")
    with pytest.raises(InputError, match=words):
        impasto.stylize(c, [s, s], style_blend_weights=(1e308, 1e308), size=32)
    with pytest.raises(InputError, match=words):
        UniversalConfig(style_blend_weights=(1e308, 1.0))
    with pytest.raises(InputError, match=words):
        load_model("multistyle6").style_vector(None, [1e308] * 6)
    assert UniversalConfig(style_blend_weights=(1e6, 0.0)).style_blend_weights == (1e6, 0.0)


def test_a_style_scale_too_small_for_the_network_is_one_line_not_pytorchs(small_images):
    import impasto

    c, s = small_images
    with pytest.raises(InputError, match=r"style image 1 would be 1x1 px at the first scale \(style_scale 0.0001 "):
        impasto.stylize(c, s, style_scale=0.0001, size=32, scales=1, iterations=1)


def test_apply_refuses_a_size_past_the_pixel_limit_before_allocating(tmp_path, small_images, capsys):
    c, _ = small_images
    code, err = run(["apply", "multistyle6", c, "-o", tmp_path / "o.png", "--size", "99999999"], capsys)
    assert code == 2 and "--size 99999999 makes a 99999999x66666666 px image, over the limit of 120 Mpx" in err, err
    assert err.count("\n") == 1 and "o.png" not in files_in(tmp_path)


@pytest.mark.parametrize("method", ["optimize", "wct"])
def test_a_bad_mask_is_refused_before_any_network_loads(tmp_path, small_images, capsys, monkeypatch, method):
    """A mask of the wrong shape was refused only after about 11 s of model loading."""
    from PIL import Image

    no_networks(monkeypatch)
    c, s = small_images
    Image.new("L", (10, 40), 255).save(tmp_path / "tall.png")  # the photo is 48x32
    code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", "--style-mask", tmp_path / "tall.png",
                     "--method", method], capsys)
    assert code == 2 and "style mask 1" in err and err.count("\n") == 1, err
    code, err = run(["stylize", c, s, "-o", tmp_path / "o.png", "--style-mask", tmp_path / "tall.png",
                     tmp_path / "tall.png", "--method", method], capsys)
    assert code == 2 and "2 style masks for 1 style images" in err, err
    assert "o.png" not in files_in(tmp_path)


@pytest.mark.parametrize("extra", [["--method", "wct"], ["--init", "wct"], []])
def test_a_missing_style_is_exit_2_before_any_network_loads(tmp_path, small_images, capsys, monkeypatch, extra):
    """README: every bad input gets exit 2 before any work. --method wct exited 1 after loading."""
    no_networks(monkeypatch)
    c, _ = small_images
    code, err = run(["stylize", c, tmp_path / "missing.jpg", "-o", tmp_path / "o.png", *extra], capsys)
    assert code == 2 and "no such file" in err and err.count("\n") == 1, err
