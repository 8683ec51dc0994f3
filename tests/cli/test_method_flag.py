"""`impasto stylize --method NAME`: a method that takes style images, from the registry, with the
options its flags and --set give; a plug-in runs with no edit to the command."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch

from impasto.cli import main
from impasto.io.image import as_output, load_image
from impasto.methods import Method, Painter, register, unregister
from impasto.ops.color import luminance
from impasto.ops.geometry import fit_long_edge, resize

from ..conftest import files_in


class TintMethod(Method):
    """The photo's luminance in the mean colour of the style images (a test method)."""

    name, summary, takes_styles = "test-tint", "the photo in the paintings' mean colour", True
    web_options = ("size", "mix")

    def option_types(self) -> dict[str, Any]:
        return {"size": int | None, "mix": float, "device": str}

    def load(self, options: Mapping[str, Any], styles: Sequence[Any], *, cache: dict | None = None,
             **inputs: Any) -> Painter:
        return TintPainter(options.get("size"), float(options.get("mix", 1.0)), styles)


class TintPainter(Painter):
    def __init__(self, size: int | None, mix: float, styles: Sequence[Any]) -> None:
        self.size, self.mix = size, mix
        self.colour = torch.stack([load_image(s).rgb.mean((-2, -1)) for s in styles]).mean(0)

    def image(self, content: Any, *, callback: Any = None, cancel: Any = None, output: str = "pil") -> Any:
        loaded = load_image(content)
        x = loaded.flat_rgb()
        if self.size is not None:
            x = resize(x, fit_long_edge(tuple(x.shape[-2:]), self.size))
        tinted = luminance(x) * self.colour.view(1, 3, 1, 1)
        return as_output(self.mix * tinted + (1 - self.mix) * x, None, output)


@pytest.fixture
def tint():
    register(TintMethod())
    yield
    unregister("test-tint")


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_a_plugin_that_takes_style_images_runs_through_stylize(tmp_path, small_images, capsys, tint):
    c, s = small_images
    out = tmp_path / "out.png"
    code, err = run(["stylize", c, s, "-o", out, "--method", "test-tint", "--size", "40", "--set", "mix=0.5",
                     "--quiet"], capsys)
    assert code == 0, err
    expected = TintPainter(40, 0.5, [s]).image(c, output="tensor")
    got = load_image(out).rgb
    assert got.shape == expected.shape and (got - expected).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize(("extra", "words"), [
    (["--iterations", "5"], "the method 'test-tint' takes only size, mix, device; not --iterations"),
    (["--set", "gain=2"], "--set takes NAME=VALUE with NAME one of size, mix, device"),
    (["--set", "mix=lots"], "mix must be a number"),
    (["--save-every", "2"], "--save-every is the optimize method's"),
])
def test_what_the_method_does_not_take_is_refused_in_one_line(tmp_path, small_images, capsys, tint, extra, words):
    c, s = small_images
    before = files_in(tmp_path)
    code, err = run(["stylize", c, s, "-o", tmp_path / "out.png", "--method", "test-tint", *extra], capsys)
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert files_in(tmp_path) == before


def test_wct_from_the_command_line(tmp_path, small_images, capsys, photos):
    from impasto.universal.train import DecoderTrainingConfig, train_decoders

    decoders = tmp_path / "d.pt"
    train_decoders([photos], decoders, config=DecoderTrainingConfig(size=32, batch_size=2, steps=1, workers=0,
                                                                     device="cpu"))
    c, s = small_images
    out = tmp_path / "out.png"
    code, err = run(["stylize", c, s, "-o", out, "--method", "wct", "--size", "64", "--strength", "0.7",
                     "--set", f"decoders={decoders}", "--set", "levels=relu4_1,relu2_1", "--quiet"], capsys)
    assert code == 0, err
    assert load_image(out).size == (43, 64)
    code, err = run(["stylize", c, s, "-o", out, "--method", "multistyle6"], capsys)
    assert code == 2 and "paints styles of its own: use impasto apply multistyle6" in err


def test_methods_lists_every_method_with_its_options(capsys, tint):
    import json

    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    assert "wct: universal" in text and "levels (list of str)" in text and "test-tint:" in text
    assert "multistyle6: fast model" in text and "takes its own styles (starry_night" in text
    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["test-tint"]["all_options"] == {"size": "int or none", "mix": "float", "device": "str"}
    assert rows["wct"]["takes_styles"] and "decoders" not in rows["wct"]["web_options"]
