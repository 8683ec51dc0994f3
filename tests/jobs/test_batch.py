from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from impasto.cli import main
from tests.conftest import EXAMPLES, sigint_default
from tests.jobs.conftest import QUICK, make_photos

STYLE = str(EXAMPLES / "wave.jpg")


def outputs(folder: Path) -> dict[str, float]:
    """Relative path -> modification time of every finished output in ``folder``: neither the settings file
    nor the ``.impasto-*`` temporary an output is written to before it is renamed into place."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".impasto")}


def test_batch_stylizes_a_folder_and_reports_the_bad_image(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK]) == 1  # one image is broken
    err = capsys.readouterr().err
    assert "broken.png" in err and "not an image" in err
    assert "3 done, 0 already there, 1 failed" in err
    assert set(outputs(out)) == {"sub/p0.png", "p1.png", "p2.png"}  # the folder layout is kept
    assert Image.open(out / "p2.png").size == (32, 27)


def test_a_rerun_skips_finished_outputs_and_redoes_only_missing_ones(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK])
    before = outputs(out)
    (out / "p1.png").unlink()
    (out / ".impasto-leftover.png").write_bytes(b"half")  # what a kill -9 mid-write leaves
    capsys.readouterr()
    main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK])
    after = outputs(out)
    assert after.keys() == before.keys()
    assert not (out / ".impasto-leftover.png").exists()
    assert after["sub/p0.png"] == before["sub/p0.png"] and after["p2.png"] == before["p2.png"]
    assert "1 done, 2 already there" in capsys.readouterr().err


def test_other_settings_into_the_same_folder_are_refused(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK])
    before = outputs(out)
    quick = list(QUICK)
    quick[1] = "40"
    assert main(["batch", str(photo_dir), STYLE, "-o", str(out), *quick]) == 2
    assert "other settings (size differ)" in capsys.readouterr().err
    assert outputs(out) == before


@pytest.mark.parametrize(("args", "words"), [
    (["{missing}", STYLE], "input folder does not exist"),
    (["{photos}", "{photos}/broken.png"], "not an image"),
    (["{photos}"], "needs at least one style image"),
    (["{photos}", STYLE, "--workers", "0"], "positive integer"),
    (["{photos}", "--model", "multistyle6", "--style", "nope"], "valid: starry_night"),
    (["{photos}", STYLE, "--model", "multistyle6"], "paints only its own styles"),
    (["{photos}", STYLE, "--format", ".gifx"], "unsupported output extension"),
    (["{photos}", "--model", "multistyle6", "--iterations", "5"], "the method 'multistyle6' takes only size, style, "
     "style_blend_weights, preserve_color, tile, device, precision; not --iterations"),
])
def test_bad_batches_fail_before_any_work(photo_dir, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    argv = [a.format(missing=tmp_path / "nope", photos=photo_dir) for a in args]
    assert main(["batch", *argv, "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not out.exists() or not outputs(out)


def test_output_inside_input_is_refused(photo_dir, capsys):
    assert main(["batch", str(photo_dir), STYLE, "-o", str(photo_dir / "out"), "--quiet"]) == 2
    assert "must not be inside the input folder" in capsys.readouterr().err


def test_workers_and_a_fast_model(photo_dir, tmp_path, tiny_model):
    out = tmp_path / "out"
    assert main(["batch", str(photo_dir), "-o", str(out), "--model", str(tiny_model), "--style", "wave",
                 "--size", "40", "--workers", "2", "--format", ".jpg", "--quiet"]) == 1
    assert set(outputs(out)) == {"sub/p0.jpg", "p1.jpg", "p2.jpg"}
    assert Image.open(out / "p1.jpg").size == (40, 37)


def test_ray_local_runs_the_same_tasks_and_resumes(photo_dir, tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    assert main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK, "--ray", "local"]) == 1
    assert set(outputs(out)) == {"sub/p0.png", "p1.png", "p2.png"}
    assert "broken.png" in capsys.readouterr().err
    (out / "p2.png").unlink()
    assert main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK, "--ray", "local"]) == 1
    assert "1 done, 2 already there, 1 failed" in capsys.readouterr().err


def test_an_interrupted_batch_keeps_whole_outputs_and_resumes(tmp_path):
    photos = make_photos(tmp_path / "in", 6, bad=False, size=96)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "impasto", "batch", str(photos), STYLE, "-o", str(out), "--size", "96",
           "--iterations", "10", "--initial-iterations", "30", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.monotonic() + 120
    while not (out.exists() and outputs(out)) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    first = outputs(out)
    assert 1 <= len(first) < 6
    assert not [p for p in os.listdir(out) if p.startswith(".impasto-")]
    for name in first:
        Image.open(out / name).load()  # every file there is whole
    rerun = subprocess.run([*cmd[:-1]], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(first)} of 6 already done; resuming" in rerun.stderr
    final = outputs(out)
    assert len(final) == 6
    assert all(final[name] == mtime for name, mtime in first.items())  # nothing redone


def test_videos_in_the_folder_get_the_video_method_with_their_sound(photo_dir, tmp_path, capsys):
    pytest.importorskip("av")
    from tests.video.clips import make_clip, streams

    make_clip(photo_dir / "clip.mp4", frames=4, size=(32, 40))
    out = tmp_path / "out"
    assert main(["batch", str(photo_dir), STYLE, "-o", str(out), *QUICK]) == 1  # broken.png
    assert {"clip.mp4", "p1.png"} <= set(outputs(out))
    got = streams(out / "clip.mp4")
    assert got["frames"] == 4 and got["audio"] is not None
    assert not list(out.rglob("*.frames")) and not list(out.rglob("*.work"))  # work folders go once written


def test_a_method_that_takes_style_images_gets_its_own_options_and_the_size(photo_dir, tmp_path, capsys):
    """--method wct: its options from the registry (the flags it takes, --set for the rest); --size is
    never dropped, other methods' flags are refused."""
    import argparse

    from impasto.cli import batch as batch_cli
    from impasto.errors import InputError

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    p = batch_cli.add_parser(sub)
    args = p.parse_args([str(photo_dir), STYLE, "-o", str(tmp_path / "o"), "--method", "wct", "--size", "512",
                         "--strength", "0.6", "--set", "levels=relu4_1,relu2_1"])
    recipe = batch_cli.recipe_from_args(args, p)
    assert recipe.method == "wct" and dict(recipe.options) == {"size": 512, "strength": 0.6,
                                                               "levels": ("relu4_1", "relu2_1")}
    args = p.parse_args([str(photo_dir), STYLE, "-o", str(tmp_path / "o"), "--method", "wct", "--iterations", "3"])
    with pytest.raises(InputError, match=r"the method 'wct' takes only .*; not --iterations"):
        batch_cli.recipe_from_args(args, p)


def test_a_batch_starts_each_photo_from_a_one_pass_painting(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((48 + 8 * i, 40)).save(photos / f"p{i}.png")
    out = tmp_path / "out"
    assert main(["batch", str(photos), STYLE, "-o", str(out), "--init", "wct", *QUICK]) == 0, capsys.readouterr().err
    assert set(outputs(out)) == {"p0.png", "p1.png"}
    assert main(["batch", str(photos), STYLE, "-o", str(tmp_path / "bad"), "--init", "multistyle6", *QUICK]) == 2
    assert "paints only its own styles" in capsys.readouterr().err and not (tmp_path / "bad").exists()
