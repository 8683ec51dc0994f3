import itertools

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from impasto.errors import InputError, NonFiniteLossError, StylizeInterrupted
from impasto.io.image import load_image
from impasto.ops import color
from impasto.ops.stats import mean_cov


def _losses(**kw):
    events = []
    image = impasto.stylize(callback=events.append, **kw)
    return image, events


def test_short_real_run_lowers_style_loss_markedly(content_path, style_path):
    image, events = _losses(content=content_path, styles=style_path, size=96, iterations=30, seed=0)
    assert image.size == (96, 96) and image.mode == "RGB"
    first, last = events[0].losses["style"], events[-1].losses["style"]
    assert last < 0.25 * first, (first, last)
    assert [e.step for e in events] == list(range(1, 31))
    elapsed = [e.elapsed for e in events]
    assert all(b > a for a, b in itertools.pairwise(elapsed))  # every step takes time
    assert 0 < events[0].setup < elapsed[0]  # loading and targets, then the first iteration
    assert {e.setup for e in events} == {events[0].setup}  # set once, before the first iteration
    work = [e.work for e in events]
    assert all(b > a for a, b in itertools.pairwise(work)) and work[-1] == pytest.approx(1.0)
    assert events[-1].final and not events[0].final


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_other_optimizers_lower_the_loss(small_images, optimizer):
    c, s = small_images
    _, events = _losses(content=c, styles=s, size=48, iterations=15, optimizer=optimizer, seed=0)
    assert events[-1].losses["total"] < 0.7 * events[0].losses["total"]


def test_seed_makes_runs_bitwise_reproducible(small_images):
    c, s = small_images
    kw = dict(content=c, styles=s, size=48, iterations=5, init="noise")
    a = impasto.stylize(**kw, seed=7)
    b = impasto.stylize(**kw, seed=7)
    other = impasto.stylize(**kw, seed=8)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(other))


def test_init_from_image(small_images):
    c, s = small_images
    _, events = _losses(content=c, styles=s, size=48, iterations=1, init=str(s), seed=0)
    assert events[0].losses["content"] > 0  # starts away from the content


def test_preserve_color_luminance_keeps_content_chroma(small_images):
    c, s = small_images
    out = impasto.stylize(c, s, size=48, iterations=10, preserve_color="luminance", seed=0)
    ref = load_image(c).rgb
    got = load_image(out).rgb
    iq_ref, iq_got = color.rgb_to_yiq(ref)[:, 1:], color.rgb_to_yiq(got)[:, 1:]
    assert (iq_ref - iq_got).abs().mean() < 0.02
    assert (color.luminance(ref) - color.luminance(got)).abs().mean() > 0.02  # luminance changed


def test_preserve_color_histogram_matches_style_colors_to_the_content(small_images):
    from impasto.optimize.config import StylizeConfig
    from impasto.optimize.pipeline import load_inputs, prepare

    c, s = small_images
    cfg = StylizeConfig.from_options(size=48, preserve_color="histogram")
    prepared = prepare(load_inputs(c, [s], cfg), cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
    style, content = prepared.styles[0][0], prepared.content
    mu_s, cov_s = mean_cov(style.double())
    mu_c, cov_c = mean_cov(content.double())
    assert torch.allclose(mu_s, mu_c, atol=0.02)  # clamping to [0, 1] moves them slightly
    assert torch.allclose(cov_s, cov_c, atol=0.01)
    plain = StylizeConfig.from_options(size=48)
    original = prepare(load_inputs(c, [s], plain), plain, torch.device("cpu"), torch.Generator()).styles[0][0]
    assert (mean_cov(original.double())[0] - mu_c).abs().max() > 0.05  # they did differ before
    out = impasto.stylize(c, s, size=48, iterations=3, preserve_color="histogram", seed=0)
    free = impasto.stylize(c, s, size=48, iterations=3, seed=0)
    photo_colors = load_image(c).rgb.mean((2, 3))
    kept_error = (load_image(out).rgb.mean((2, 3)) - photo_colors).abs().sum()
    free_error = (load_image(free).rgb.mean((2, 3)) - photo_colors).abs().sum()
    assert kept_error < 0.5 * free_error, (kept_error, free_error)  # the result wears the photo's colors


def test_several_styles_and_tensor_inputs(small_images):
    c, s = small_images
    t = load_image(s).rgb[0]
    out = impasto.stylize(Image.open(c), [s, t], size=32, iterations=2, style_blend_weights=(1, 3), seed=0)
    assert out.size == (32, 21)
    first = impasto.stylize(Image.open(c), [s, c], size=32, iterations=4, style_blend_weights=(1, 0), seed=0)
    second = impasto.stylize(Image.open(c), [s, c], size=32, iterations=4, style_blend_weights=(0, 1), seed=0)
    alone = impasto.stylize(Image.open(c), s, size=32, iterations=4, seed=0)
    a, b, ref = (load_image(x).rgb for x in (first, second, alone))
    assert (a - ref).abs().max() < 1e-5  # weight 0 leaves the other style out entirely
    assert (a - b).abs().mean() > 0.01  # and the weights decide which style shows
    with pytest.raises(InputError, match="2 style blend weights for 1 style images"):
        impasto.stylize(c, s, size=32, iterations=1, style_blend_weights=(1, 2))


def test_alpha_is_reattached(tmp_path, small_images):
    _, s = small_images
    rgba = Image.new("RGBA", (40, 20), (10, 120, 200, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 20, 20))
    out = impasto.stylize(rgba, s, size=40, iterations=2)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getextrema() == (0, 255)


def test_nan_loss_stops_with_a_clear_error(small_images, monkeypatch):
    c, s = small_images
    from impasto.losses import objective

    monkeypatch.setattr(objective, "tv_loss", lambda image: image.sum() * float("nan"))
    with pytest.raises(NonFiniteLossError, match="diverged at step 1"):
        impasto.stylize(c, s, size=32, iterations=3)


def test_interrupt_returns_the_image_so_far(small_images):
    c, s = small_images

    def stop_at_three(event):
        if event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(StylizeInterrupted) as info:
        impasto.stylize(c, s, size=32, iterations=50, callback=stop_at_three)
    assert info.value.step == 3 and not info.value.cancelled
    assert info.value.image.shape == (1, 3, 21, 32)  # a tensor; the front end renders it


def test_bad_options():
    with pytest.raises(InputError, match="unknown option"):
        impasto.stylize("a.png", "b.png", sizes=3)
    for bad in (dict(size=0), dict(iterations=-1), dict(size=2.5)):
        with pytest.raises(InputError, match="positive integer") as info:
            impasto.StylizeConfig.from_options(**bad)
        assert info.value.fields == tuple(bad)  # the error names the field, not a CLI flag
    with pytest.raises(InputError, match="valid: conv1_1"):
        impasto.StylizeConfig.from_options(style_layers=("relu9_1",))
    with pytest.raises(InputError, match="one per layer"):
        impasto.StylizeConfig.from_options(style_layer_weights=(1.0,))
    with pytest.raises(InputError, match="valid: lbfgs, adam, gd"):
        impasto.StylizeConfig.from_options(optimizer="sgd")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_refused_without_cuda():
    with pytest.raises(InputError, match="CUDA is not available"):
        impasto.stylize(torch.rand(3, 8, 8), torch.rand(3, 8, 8), device="cuda")


def test_config_parts_are_pure_data_and_round_trip():
    cfg = impasto.StylizeConfig.from_options(size=256, strength=0.3, preserve_color="luminance", pooling="avg")
    flat = cfg.flat()
    assert flat["size"] == 256 and flat["strength"] == 0.3 and flat["pooling"] == "avg"
    assert all(isinstance(v, (int, float, str, tuple, type(None))) for v in flat.values())
    assert impasto.StylizeConfig.from_options(**flat) == cfg
    assert cfg.replace(size=128).optimize.size == 128 and cfg.replace(size=128).loss == cfg.loss
