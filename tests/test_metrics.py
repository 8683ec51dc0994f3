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


def test_style_distance_is_zero_when_the_output_is_the_style():
    torch.manual_seed(1)
    style = torch.rand(3, 32, 48)
    d = distances(style, torch.rand(3, 32, 48), style)
    assert d.style == pytest.approx(0.0, abs=1e-10)
    assert d.content > 0.1
