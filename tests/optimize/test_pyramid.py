import pytest
import torch

import impasto
from impasto.errors import InputError
from impasto.optimize.config import OptimizeConfig
from impasto.optimize.optimizers import carry_state


def test_pyramid_sizes():
    assert OptimizeConfig(size=512).pyramid() == [128, 256, 512]
    assert OptimizeConfig(size=512, scale_ratio=2 ** 0.5).pyramid() == [128, 181, 256, 362, 512]
    assert OptimizeConfig(size=600).pyramid() == [150, 300, 600]
    assert OptimizeConfig(size=512, scales=1).pyramid() == [512]
    assert OptimizeConfig(size=512, scales=2).pyramid() == [256, 512]
    assert OptimizeConfig(size=64).pyramid() == [64]
    assert OptimizeConfig(size=512, start_size=300).pyramid() == [512]
    cfg = OptimizeConfig(size=512, iterations=7, initial_iterations=20)
    assert cfg.scale_iterations() == [20, 7, 7]
    assert OptimizeConfig(size=512, scales=1, iterations=9).scale_iterations() == [9]


@pytest.mark.parametrize("bad,message", [
    (dict(scale_ratio=1.0), "scale_ratio must be a number > 1"),
    (dict(scale_ratio=0.5), "scale_ratio must be a number > 1"),
    (dict(scales=0), "scales must be a positive integer"),
    (dict(size=256, start_size=512), "start_size 512 is above the output size 256; valid: 1 to 256"),
    (dict(initial_iterations=0), "initial_iterations must be a positive integer"),
])
def test_bad_pyramid_settings(bad, message):
    with pytest.raises(InputError, match=message):
        OptimizeConfig(**bad)


def test_events_walk_through_the_scales(small_images):
    c, s = small_images
    events = []
    out = impasto.stylize(c, s, size=64, start_size=32, iterations=3, initial_iterations=4,
                          callback=events.append)
    assert out.size == (64, 43)
    assert [e.scale for e in events] == [0] * 4 + [1] * 3
    assert {e.scales for e in events} == {2}
    assert [e.size for e in (events[0], events[-1])] == [(21, 32), (43, 64)]
    assert [e.step for e in events] == list(range(1, 8)) and events[-1].iterations == 7
    # work is weighted by pixels: 4 iterations at 21x32 against 3 at 43x64
    work = [e.work for e in events]
    assert work == sorted(work) and work[-1] == pytest.approx(1.0)
    assert work[3] == pytest.approx(4 * 21 * 32 / (4 * 21 * 32 + 3 * 43 * 64))


def test_too_small_first_scale_is_refused(small_images):
    c, s = small_images
    with pytest.raises(InputError, match="needs at least 16 px on the short side"):
        impasto.stylize(c, s, size=64, start_size=16, iterations=1)


def test_adam_state_is_carried_and_resized():
    """The moments are per-pixel fields resized to the finer scale, not rescaled: a constant field
    stays that constant, a ramp is the same ramp sampled at the finer pixels' centres, and the
    second moment stays non-negative where bicubic would overshoot; L-BFGS carries nothing."""
    ramp = torch.linspace(-1, 1, 8).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    state = {"step": torch.tensor(5.0), "exp_avg": ramp.clone(), "exp_avg_sq": torch.full((1, 3, 8, 8), 0.25)}
    state["exp_avg_sq"][..., 4, 4] = 9.0  # a spike: bicubic would ring below zero around it
    carried = carry_state("adam", state, (16, 16))
    assert carried["exp_avg"].shape == (1, 3, 16, 16) and carried["step"] == 5
    # the fine pixels' centres in the coarse grid: (j + 0.5) / 2 - 0.5; the ramp's value there
    centres = (torch.arange(16) + 0.5) / 2 - 0.5
    expected = -1 + centres * (2 / 7)
    inner = carried["exp_avg"][0, 0, 8, 2:14]  # away from the edges; bicubic (a = -0.75) is near-linear
    assert torch.allclose(inner, expected[2:14], atol=0.03) and (inner.diff() > 0).all()
    flat = carry_state("adam", {**state, "exp_avg": torch.full((1, 3, 8, 8), -0.3)}, (16, 16))["exp_avg"]
    assert torch.allclose(flat, torch.tensor(-0.3))
    assert (carried["exp_avg_sq"] >= 0).all()
    assert torch.allclose(carried["exp_avg_sq"][..., :4, :4], torch.tensor(0.25))  # far from the spike: unchanged
    assert carry_state("lbfgs", {"d": torch.zeros(3)}, (16, 16)) == {}


def test_adam_carries_its_moments_from_scale_to_scale(small_images, monkeypatch):
    """The finer scale's Adam starts from the coarser one's moments and step count (not from zero),
    and lowers the style loss within each scale (losses are not comparable across scales)."""
    from impasto.optimize import optimizers

    carried = []
    real = optimizers.carry_state

    def spy(name, state, size):
        carried.append((name, int(state["step"]), tuple(state["exp_avg"].shape[-2:]), size))
        return real(name, state, size)

    monkeypatch.setattr(optimizers, "carry_state", spy)
    c, s = small_images
    events = []
    impasto.stylize(c, s, size=64, start_size=32, iterations=6, initial_iterations=9, optimizer="adam",
                    callback=events.append)
    assert carried == [("adam", 9, (21, 32), (43, 64))]
    for scale in {e.scale for e in events}:
        style = [e.losses["style"] for e in events if e.scale == scale]
        assert style[-1] < style[0], (scale, style)


def test_ema_output_averages_the_iterates(small_images):
    c, s = small_images
    plain = impasto.stylize(c, s, size=48, iterations=6, optimizer="adam", seed=0)
    smooth = impasto.stylize(c, s, size=48, iterations=6, optimizer="adam", ema_decay=0.5, seed=0)
    a, b = impasto.load_image(plain).rgb, impasto.load_image(smooth).rgb
    assert not torch.equal(a, b)
    # the average lags behind the iterates: it stays closer to the start (the content) than the last iterate
    content = impasto.load_image(c).rgb
    assert (b - content).abs().mean() < (a - content).abs().mean()
    with pytest.raises(InputError, match="ema_decay must be a number between 0 and 1"):
        OptimizeConfig(ema_decay=1.0)


@pytest.mark.parametrize(("options", "words"), [
    (dict(seed=2**64), "seed must be an integer from 0 to 2\\*\\*63-1"),
    (dict(seed=-1), "seed must be an integer from 0"),
    (dict(style_scale=1e300), "style_scale must be at most 8"),
    (dict(style_scales=(1e300,)), "style_scales must each be at most 8"),
    (dict(size=4096, style_scale=4.0), "over the limit of 120 Mpx"),
    (dict(style_rotations=tuple(range(17))), "at most 16 copies"),
    (dict(scales=3, scale_ratio=1e308), "scale_ratio must be at most 16"),
    (dict(scales=500), "scales must be from 1 to 12"),
    (dict(scales=12, scale_ratio=16.0, size=64), "below 1 px at the first scale"),
    (dict(start_size=1, scale_ratio=1.0001), "make 62387 scales, more than 12"),
])
def test_options_that_would_make_absurd_work_are_refused_by_the_config(options, words):
    from impasto.optimize.config import StylizeConfig

    with pytest.raises(InputError, match=words):
        StylizeConfig.from_options(**options)


def test_integers_are_plain_ascii_digits():
    from impasto.config import parse_int

    assert parse_int(" 64 ") == 64 and parse_int("-3") == -3
    for text in ("٦٤", "1_28", "+64", "6.4", "", "1" * 40):
        with pytest.raises(ValueError):
            parse_int(text)
