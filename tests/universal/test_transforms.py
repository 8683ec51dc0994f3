import pytest
import torch

from impasto.universal.transforms import adain, efdm, ost, rotated_histograms, style_stats, wct

ALL = [wct, adain, ost, efdm, rotated_histograms]


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
    # exactly, not within 2%: the photo's and the style's variances use one convention (n - 1), which a
    # mix of n and n - 1 (off by n / (n - 1) = 1.008 here) fails
    assert torch.allclose(c_out.diagonal(), c_s.diagonal(), rtol=1e-5)


@pytest.mark.parametrize("transform", ALL)
def test_alpha_blends_with_the_photo(transform):
    content, stats = _features(seed=4), style_stats(_features(seed=5))
    assert torch.equal(transform(content, stats, alpha=0.0), content)
    half = transform(content, stats, alpha=0.5)
    assert torch.allclose(half, 0.5 * content + 0.5 * transform(content, stats), atol=1e-5)


@pytest.mark.parametrize("transform", ALL)
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


def test_ost_gives_the_style_mean_and_covariance_moving_the_photo_less_than_wct():
    content, style = _features(seed=10), _features(seed=11, scale=1.5)
    stats = style_stats(style)
    out = ost(content, stats)
    (m_out, c_out), (m_s, c_s) = _moments(out), _moments(style)
    assert torch.allclose(m_out, m_s, atol=1e-4) and torch.allclose(c_out, c_s, rtol=1e-3, atol=1e-3)
    # the Monge map moves the (centred) features least of all maps onto that covariance; WCT rotates them
    def centred(f):
        return f - f.mean((-2, -1), keepdim=True)

    moved = [(centred(t(content, stats)) - centred(content)).square().sum() for t in (ost, wct)]
    assert moved[0] < 0.95 * moved[1], moved  # optimal: never more; here 0.90x


def test_ost_leaves_features_that_already_have_the_style_statistics_alone():
    content = _features(seed=12)
    assert torch.allclose(ost(content, style_stats(content)), content, atol=1e-3)
    assert not torch.allclose(wct(content, style_stats(_features(seed=13))), content, atol=1e-1)


def test_efdm_gives_each_channel_the_styles_values_at_the_photos_ranks():
    content, style = _features(seed=14), _features(seed=15, scale=2.0)
    out = efdm(content, style_stats(style))
    flat_out, flat_c, flat_s = (t.reshape(8, -1) for t in (out, content, style))
    assert torch.allclose(flat_out.sort(1).values, flat_s.sort(1).values, atol=1e-5)  # the same size: exact
    assert torch.equal(flat_out.argsort(1), flat_c.argsort(1))
    bigger = _features(seed=16, h=30, w=20)  # more pixels than the style: its quantiles interpolated
    q = efdm(bigger, style_stats(style)).reshape(8, -1).sort(1).values
    assert torch.allclose(q[:, [0, -1]], flat_s.sort(1).values[:, [0, -1]], atol=1e-5)


def _sliced_distance(a, b, n=64):
    g = torch.Generator().manual_seed(99)
    a, b = a.reshape(a.shape[1], -1), b.reshape(b.shape[1], -1)
    d = 0.0
    for _ in range(n):
        v = torch.randn(a.shape[0], 1, generator=g)
        v = v / v.norm()
        pa, pb = (v.T @ a).sort().values[0], (v.T @ b).sort().values[0]
        d += float((pa - pb).square().mean())
    return d / n


def test_rotated_histograms_move_the_joint_distribution_towards_the_styles_and_are_seeded():
    content, style = _features(seed=17), _features(seed=18, scale=3.0) ** 2  # a skewed style: not Gaussian
    stats = style_stats(style)
    one, four = rotated_histograms(content, stats, rotations=1), rotated_histograms(content, stats, rotations=8)
    assert _sliced_distance(four, style) < _sliced_distance(one, style) < _sliced_distance(content, style)
    assert torch.equal(rotated_histograms(content, stats), rotated_histograms(content, stats))


@pytest.mark.parametrize("transform", ALL)
def test_a_one_pixel_mask_and_an_empty_one_stay_finite(transform):
    content, stats = _features(seed=19), style_stats(_features(seed=20))
    one = torch.zeros(12, 10)
    one[3, 4] = 1
    out = transform(content, stats, mask=one)
    assert torch.isfinite(out).all() and torch.equal(out[..., 0, 0], content[..., 0, 0])
    assert torch.equal(transform(content, stats, mask=torch.zeros(12, 10)), content)


def test_statistics_without_the_histograms_name_what_is_missing():
    from impasto.universal.transforms import StyleStats

    bare = StyleStats(torch.zeros(8, 1), torch.ones(8, 1))
    with pytest.raises(ValueError, match="no samples, which the efdm transform needs"):
        efdm(_features(), bare)
    with pytest.raises(ValueError, match="no cov, which the wct transform needs"):
        wct(_features(), bare)


@pytest.mark.parametrize("transform", ALL)
def test_every_transform_keeps_its_tensors_on_the_features_device(transform):
    """On a second device type (meta: shapes only) a tensor made on the CPU inside a transform (a
    rotation, the ranks, an index) would fail the run, as it would on a user's GPU."""
    from impasto.ops.color import keep_structure

    content, stats = _features(seed=21).to("meta"), style_stats(_features(seed=22)).to("meta")
    assert transform(content, stats).device.type == "meta"  # (a mask selects pixels by value: not on meta)
    painted = keep_structure(torch.rand(1, 3, 16, 16, device="meta"), torch.rand(1, 3, 16, 16), 0.7, 2)
    assert painted.device.type == "meta"
