"""``init=METHOD``: the optimization started from a one-pass method's painting (issue 36)."""

from __future__ import annotations

import pytest
import torch

import impasto
from impasto.cli import main
from impasto.errors import InputError
from impasto.io.image import load_image
from impasto.methods import register, unregister
from impasto.progress import Preview, Progress
from tests.cli.test_method_flag import TintMethod, TintPainter
from tests.conftest import files_in

TINY = dict(size=40, scales=1, initial_iterations=2, iterations=2, seed=0)


class OnePassTint(TintMethod):
    name = "test-tint-1pass"
    one_pass = True


@pytest.fixture
def tint():
    register(OnePassTint())
    yield
    unregister("test-tint-1pass")


def test_the_optimization_starts_from_the_one_pass_painting_shown_first(small_images, tint):
    c, s = small_images
    events = []
    got = impasto.stylize(c, s, init="test-tint-1pass", callback=events.append, output="tensor", **TINY)
    first = events[0]
    assert isinstance(first, Preview) and first.method == "test-tint-1pass" and "refining" in first.message
    assert torch.allclose(first.tensor(), TintPainter(40, 1.0, [s]).image(c, output="tensor"))
    assert all(isinstance(e, Progress) for e in events[1:]) and len(events) == 3
    # the iterations start there: the result is nearer the tint than a run from the photo is
    tint = first.tensor()
    plain = impasto.stylize(c, s, output="tensor", **TINY)
    assert (got - tint).abs().mean() < 0.5 * (plain - tint).abs().mean()


def test_init_wct_runs_from_the_command_line_and_the_python_api(small_images, tmp_path, capsys):
    c, s = small_images
    out = tmp_path / "out.png"
    code = main(["stylize", str(c), str(s), "-o", str(out), "--init", "wct", "--size", "48", "--scales", "1",
                 "--initial-iterations", "2", "--iterations", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert load_image(out).size == (32, 48)  # (height, width)
    events = []
    impasto.stylize(c, s, init="wct", callback=events.append, size=48, scales=1, initial_iterations=1, iterations=1)
    from impasto.universal.stylize import stylize_universal
    assert torch.allclose(events[0].tensor(), stylize_universal(c, s, size=48, output="tensor"), atol=1e-5)


@pytest.mark.parametrize(("init", "words"), [
    ("multistyle6", "'multistyle6' paints only its own styles; --init takes content, noise, an image's path or a "
                    "method that paints from style images in one pass: wct"),
    ("optimize", "'optimize' is the optimization itself"),
    ("test-tint", "'test-tint' does not paint in one pass"),
])
def test_a_method_that_cannot_start_the_optimization_is_refused_before_any_work(small_images, tmp_path, capsys,
                                                                                 monkeypatch, init, words):
    from impasto.nets import vgg
    from tests.cli.test_method_flag import TintMethod as Plain

    register(Plain())
    monkeypatch.setattr(vgg, "build_extractor", lambda *a, **k: pytest.fail("a network was loaded"))
    c, s = small_images
    before = files_in(tmp_path)
    try:
        code = main(["stylize", str(c), str(s), "-o", str(tmp_path / "out.png"), "--init", init])
        err = capsys.readouterr().err
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert files_in(tmp_path) == before
        with pytest.raises(InputError, match="init"):
            impasto.stylize(c, s, init=init)
    finally:
        unregister("test-tint")


def test_a_method_name_wins_over_a_file_of_that_name_and_a_path_still_works(small_images, tmp_path, monkeypatch):
    from impasto.methods import available
    from impasto.methods.optimization import init_method as lookup

    def init_method(name):
        return lookup(name, available())

    c, _ = small_images
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wct").write_bytes(c.read_bytes())
    assert init_method("wct").name == "wct"
    assert init_method("./wct") is None and init_method(str(c)) is None
    assert init_method("content") is None and init_method("noise") is None


def test_the_quick_preset_sits_under_the_options_given(small_images, monkeypatch):
    from impasto.cli import main as cli_main
    from impasto.methods import optimization
    from impasto.optimize.config import PRESETS, with_preset

    assert PRESETS["quick"]["init"] == "wct"
    assert with_preset("quick", {"iterations": 3}) == {**PRESETS["quick"], "iterations": 3}
    with pytest.raises(InputError, match="unknown preset 'slow'; valid: quick"):
        with_preset("slow", {})
    seen = []
    monkeypatch.setattr(optimization, "split_init",
                        lambda cfg, *a, **k: (seen.append(cfg), (cfg.replace(init="content"), None))[1])
    c, s = small_images
    for argv, iterations in ((["--preset", "quick"], 8), (["--iterations", "1", "--preset", "quick"], 1),
                             (["--preset", "quick", "--iterations", "1"], 1)):
        seen.clear()
        assert cli_main(["stylize", str(c), str(s), "-o", str(s.parent / "o.png"), "--size", "40", "--quiet",
                         *argv]) == 0
        assert (seen[0].optimize.init, seen[0].optimize.scales, seen[0].optimize.iterations) == ("wct", 1, iterations)
    seen.clear()
    impasto.stylize(c, s, preset="quick", size=40, iterations=1)
    assert (seen[0].optimize.init, seen[0].optimize.iterations) == ("wct", 1)


def test_the_service_paints_from_a_one_pass_start_and_shows_it_first(tmp_path):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import jpeg, make_client, run_queued

    with make_client(tmp_path) as client:
        photo = ("content", ("photo.jpg", jpeg(size=(64, 48)), "image/jpeg"))
        response = client.post("/api/jobs", data={"preset": "quick", "size": "48", "iterations": "1",
                                                  "style": "starry_night"}, files=[photo])
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert client.get(f"/api/jobs/{job_id}").json()["options"]["preset"] == "quick"
        run_queued(client)
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done", job
        assert client.get(f"/api/jobs/{job_id}/preview").status_code == 200
        fields = {m["name"]: m for m in client.get("/api/methods").json()}["optimize"]["fields"]
        assert "wct" in fields["init"]["choices"] and "quick" in fields["preset"]["choices"]
        bad = client.post("/api/jobs", data={"preset": "slow", "style": "starry_night"}, files=[photo])
        assert bad.status_code == 422 and "unknown preset 'slow'" in bad.json()["detail"]
