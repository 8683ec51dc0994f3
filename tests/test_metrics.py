import pytest
import torch

from impasto.metrics import distances


def test_distances_are_zero_for_the_inputs_and_grow_with_change():
    torch.manual_seed(0)
    content = torch.rand(3, 40, 48)
    style = torch.rand(3, 30, 30) ** 2
    same = distances(content, content, style)
    assert same.content == 0.0 and same.style > 0
    d_style = distances(torch.nn.functional.interpolate(style[None], size=(40, 48))[0], content, style)
    assert d_style.style < same.style  # the style itself (resized) is closer in style
    assert d_style.content > 0.1


def test_the_style_distance_is_the_mean_of_its_layers():
    from impasto.nets.vgg import STYLE_LAYERS

    torch.manual_seed(2)
    d = distances(torch.rand(3, 40, 48), torch.rand(3, 40, 48), torch.rand(3, 30, 30) ** 2)
    assert list(d.style_layers) == list(STYLE_LAYERS)
    assert all(v > 0 for v in d.style_layers.values())
    assert d.style == pytest.approx(sum(d.style_layers.values()) / len(STYLE_LAYERS))


def test_style_distance_is_zero_when_the_output_is_the_style():
    torch.manual_seed(1)
    style = torch.rand(3, 32, 48)
    d = distances(style, torch.rand(3, 32, 48), style)
    assert d.style == pytest.approx(0.0, abs=1e-10)
    assert d.content > 0.1


def test_structure_is_one_for_the_photo_and_near_zero_for_an_unrelated_image(content_path):
    from impasto.io.image import load_image
    from impasto.metrics import structure

    photo = load_image(content_path).rgb
    assert structure(photo, photo) == pytest.approx(1.0, abs=1e-9)
    noise = torch.rand(1, 3, *photo.shape[-2:], generator=torch.Generator().manual_seed(0))
    assert abs(structure(noise, photo)) < 0.15
    flipped = photo.flip(-2)  # the same picture upside down: its shapes are elsewhere
    assert structure(flipped, photo) < 0.5
    # fine texture over the photo (what strokes add) keeps the coarse structure
    textured = (photo + 0.15 * (torch.rand(photo.shape, generator=torch.Generator().manual_seed(1)) - 0.5)).clamp(0, 1)
    assert structure(textured, photo) > 0.8
    blurred_away = torch.full_like(photo, 0.5) + 0.02 * noise
    assert structure(blurred_away, photo) < 0.2
