import pytest
import torch

from impasto.universal.transforms import adain, style_stats, wct


def _features(c=8, h=12, w=10, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g)
    return (mix @ torch.randn(c, h * w, generator=g)).reshape(1, c, h, w) * scale + torch.randn(
        c, 1, 1, generator=g)


def _moments(f):
    flat = f.reshape(f.shape[1], -1).double()
    mean = flat.mean(1, keepdim=True)
    return mean, (flat - mean) @ (flat - mean).T / (flat.shape[1] - 1)


def test_wct_gives_the_style_mean_and_covariance():
    content, style = _features(seed=0), _features(seed=1, scale=3.0)
    out = wct(content, style_stats(style))
    (m_out, c_out), (m_s, c_s) = _moments(out), _moments(style)
    assert torch.allclose(m_out, m_s, atol=1e-4) and torch.allclose(c_out, c_s, rtol=1e-3, atol=1e-3)


def test_adain_gives_the_style_channel_mean_and_std():
    content, style = _features(seed=2), _features(seed=3, scale=2.0)
    out = adain(content, style_stats(style))
    (m_out, c_out), (m_s, c_s) = _moments(out), _moments(style)
    assert torch.allclose(m_out, m_s, atol=1e-4)
    assert torch.allclose(c_out.diagonal(), c_s.diagonal(), rtol=2e-2)


@pytest.mark.parametrize("transform", [wct, adain])
def test_alpha_blends_with_the_photo(transform):
    content, stats = _features(seed=4), style_stats(_features(seed=5))
    assert torch.equal(transform(content, stats, alpha=0.0), content)
    half = transform(content, stats, alpha=0.5)
    assert torch.allclose(half, 0.5 * content + 0.5 * transform(content, stats), atol=1e-5)


@pytest.mark.parametrize("transform", [wct, adain])
def test_a_flat_style_or_photo_never_gives_nan(transform):
    """A singular covariance (a flat image): the eigenvalues are clamped, so whitening and colouring stay finite."""
    flat = torch.full((1, 8, 12, 10), 0.7)
    photo = _features(seed=6)
    styled = transform(photo, style_stats(flat))
    assert torch.isfinite(styled).all()
    assert torch.allclose(styled, flat, atol=1e-3)  # a flat style colours the photo to its flat colour
    assert torch.isfinite(transform(flat, style_stats(photo))).all()
    assert torch.isfinite(transform(torch.zeros(1, 8, 4, 4), style_stats(torch.zeros(1, 8, 4, 4)))).all()


def test_a_mask_transforms_its_region_with_its_own_statistics():
    content, style = _features(seed=7), _features(seed=8, scale=4.0)
    mask = torch.zeros(12, 10)
    mask[:, :5] = 1
    out = wct(content, style_stats(style), mask=mask)
    assert torch.equal(out[..., 5:], content[..., 5:])
    region = out[..., :5]
    (m_r, _), (m_s, _) = _moments(region), _moments(style)
    assert torch.allclose(m_r, m_s, atol=1e-4)
    with pytest.raises(ValueError, match="selects no pixel"):
        style_stats(style, mask=torch.zeros(12, 10))
