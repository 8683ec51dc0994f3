import pytest
import torch
from PIL import Image

from impasto.errors import InputError
from impasto.universal import stylize as universal
from impasto.universal.stylize import Universal, UniversalConfig, stylize_universal
from impasto.universal.train import DecoderTrainingConfig, train_decoders


@pytest.fixture(scope="module")
def decoders(tmp_path_factory, photos):
    """Every level's decoder, trained for a few steps at 32 px (shapes and plumbing, not quality)."""
    out = tmp_path_factory.mktemp("decoders") / "d.pt"
    train_decoders([photos], out, config=DecoderTrainingConfig(size=32, batch_size=2, steps=2, workers=0,
                                                                device="cpu", checkpoint_every=10))
    return out


@pytest.fixture(scope="module")
def model(decoders):
    return Universal(decoders, precision="fp32")


def test_any_painting_in_one_pass(model, small_images, tmp_path):
    c, s = small_images
    out = stylize_universal(c, s, model=model, size=48, output="tensor")
    assert out.shape == (1, 3, 32, 48) and torch.isfinite(out).all() and 0 <= float(out.min()) <= float(out.max()) <= 1
    pil = stylize_universal(c, [s, s], model=model, size=48, style_blend_weights=(1, 3), levels=("relu3_1", "relu1_1"))
    assert pil.size == (48, 32)


def test_style_statistics_are_computed_once_per_style_and_size(model, small_images, monkeypatch):
    c, s = small_images
    calls = []
    real = universal.style_stats
    monkeypatch.setattr(universal, "style_stats", lambda f, mask=None: (calls.append(1), real(f, mask))[1])
    model._stats.clear()
    for _ in range(3):
        stylize_universal(c, s, model=model, size=48)
    assert len(calls) == 4  # the four default levels, once


def test_a_flat_style_gives_no_nan_and_a_tiny_one_is_refused(model, small_images, tmp_path):
    c, _ = small_images
    flat, tiny = tmp_path / "flat.png", tmp_path / "tiny.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(flat)
    Image.new("RGB", (10, 6), (1, 2, 3)).save(tiny)
    assert torch.isfinite(stylize_universal(c, flat, model=model, size=48, output="tensor")).all()
    with pytest.raises(InputError, match="style image too small"):
        stylize_universal(c, tiny, model=model, size=48)


def test_style_masks_paint_each_region_with_its_own_style(model, small_images, tmp_path):
    c, s = small_images
    left, right = tmp_path / "left.png", tmp_path / "right.png"
    mask = Image.new("L", (48, 32), 0)
    mask.paste(255, (0, 0, 24, 32))
    mask.save(left)
    Image.eval(mask, lambda v: 255 - v).save(right)
    out = stylize_universal(c, [s, c], model=model, size=48, style_masks=[left, right], output="tensor")
    assert out.shape == (1, 3, 32, 48) and torch.isfinite(out).all()


def test_each_masked_region_takes_its_own_styles_colours(tmp_path):
    """With the shipped decoders: a red painting masked to the left half and a blue one to the
    right give a red left and a blue right, and swapping the masks swaps them (the test before
    checked only the shape, so masks ignored or swapped passed)."""
    g = torch.Generator().manual_seed(0)
    photo = (0.5 + 0.1 * torch.randn(1, 3, 64, 96, generator=g)).clamp(0, 1)

    def painting(rgb):
        return (torch.tensor(rgb).view(1, 3, 1, 1) + 0.15 * torch.randn(1, 3, 64, 64, generator=g)).clamp(0, 1)

    red, blue = painting([0.85, 0.15, 0.1]), painting([0.1, 0.2, 0.85])
    left, right = tmp_path / "left.png", tmp_path / "right.png"
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 48, 64))
    mask.save(left)
    Image.eval(mask, lambda v: 255 - v).save(right)
    model = Universal(precision="fp32")

    def redness(masks):
        out = stylize_universal(photo, [red, blue], model=model, size=96, style_masks=masks, output="tensor")
        return [float((half[:, 0] - half[:, 2]).mean()) for half in (out[..., 4:40], out[..., 56:92])]

    l_red, r_red = redness([left, right])
    assert l_red > 0.3 and r_red < -0.3, (l_red, r_red)
    l_swapped, r_swapped = redness([right, left])
    assert l_swapped < -0.3 and r_swapped > 0.3, (l_swapped, r_swapped)


@pytest.mark.parametrize(("options", "words"), [
    ({"strength": 1.5}, "strength must be a number from 0 to 1"),
    ({"levels": ("relu9_1",)}, "levels must be distinct names"),
    ({"transform": "gram"}, "unknown transform"),
    ({"size": 8}, "size must be at least 32"),
    ({"preserve_color": "histogram"}, "preserve_color for this method is luminance"),
    ({"photo": "yes"}, "photo must be true or false"),
])
def test_bad_options_are_refused_naming_them(options, words):
    with pytest.raises(InputError, match=words):
        UniversalConfig(**options)


def test_the_method_runs_through_the_registry_and_refuses_other_methods_options(decoders, small_images):
    from impasto.jobs import Recipe, Runner
    from impasto.methods import get_method

    c, s = small_images
    method = get_method("wct")
    assert method.takes_styles and "strength" in method.web_options and "decoders" not in method.web_options
    image = Runner().run(Recipe("wct", {"decoders": str(decoders), "size": 64, "precision": "fp32"}), c, [s])
    assert image.size == (64, 43)
    with pytest.raises(InputError, match="image too small: 40x27 px; level relu5_1 needs at least 32 px"):
        Runner().run(Recipe("wct", {"decoders": str(decoders), "size": 40, "levels": ("relu5_1", "relu1_1")}), c, [s])
    with pytest.raises(InputError, match="size must be at least 32"):
        Runner().run(Recipe("wct", {"decoders": str(decoders), "size": 20}), c, [s])
    with pytest.raises(InputError, match=r"the method 'wct' takes only .*; not iterations"):
        method.check({"iterations": 10}, 1)
    with pytest.raises(InputError, match="needs at least one style image"):
        method.check({}, 0)
    with pytest.raises(InputError, match="image too small: 40x27 px"):  # before any work (the service's 422)
        method.check_content({"size": 40, "levels": ("relu5_1", "relu4_1")}, (32, 48))
    method.check_content({"size": 40}, (32, 48))


def test_the_photorealistic_mode_uses_the_shallow_levels_and_keeps_the_photos_edges(model, small_images, monkeypatch):
    """photo=true transforms relu2_1 and relu1_1 only (unless levels says otherwise), then smooths the
    result along the photo's edges: with the photo's own statistics as the style and the full
    strength, the result is closer to the photo than without the smoothing."""
    c, s = small_images
    seen = []
    real_run = Universal.run

    def spy(self, content, styles, cfg, masks=None):
        seen.append(cfg.ordered_levels)
        return real_run(self, content, styles, cfg, masks)

    monkeypatch.setattr(Universal, "run", spy)
    photo = stylize_universal(c, s, model=model, size=48, photo=True, output="tensor")
    chosen = stylize_universal(c, s, model=model, size=48, photo=True, levels=("relu3_1",), output="tensor")
    assert seen == [("relu2_1", "relu1_1"), ("relu3_1",)]
    assert photo.shape == chosen.shape == (1, 3, 32, 48) and torch.isfinite(photo).all()
    plain = stylize_universal(c, s, model=model, size=48, levels=("relu2_1", "relu1_1"), output="tensor")
    photo_in = universal.load_image(c).flat_rgb()
    from impasto.ops.geometry import resize

    target = resize(photo_in, (32, 48))
    edges = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()  # noqa: E731
    assert abs(float(edges(photo) - edges(target))) < abs(float(edges(plain) - edges(target)))


def test_the_guided_filter_keeps_edges_and_smooths_flat_regions():
    from impasto.ops.geometry import box_mean, guided_filter

    x = torch.rand(1, 2, 9, 11, generator=torch.Generator().manual_seed(0))
    brute = torch.zeros_like(x)
    for i in range(9):
        for j in range(11):
            brute[..., i, j] = x[..., max(0, i - 2):i + 3, max(0, j - 2):j + 3].mean((-1, -2))
    torch.testing.assert_close(box_mean(x, 2), brute)
    step = torch.zeros(1, 1, 16, 16)
    step[..., 8:] = 1.0  # a guide with one edge
    noisy = step + 0.1 * torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    out = guided_filter(step, noisy, 3, 1e-3)
    assert (out - step).abs().mean() < 0.5 * (noisy - step).abs().mean()  # the noise goes, the edge stays
    assert float(out[..., :, 6].mean()) < 0.1 and float(out[..., :, 9].mean()) > 0.9  # either side of the edge
