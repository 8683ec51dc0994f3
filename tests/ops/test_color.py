import torch

from impasto.ops import color
from impasto.ops.stats import mean_cov


def test_yiq_round_trip():
    x = torch.rand(1, 3, 5, 5)
    assert torch.allclose(color.yiq_to_rgb(color.rgb_to_yiq(x)), x, atol=1e-5)


def test_match_color_matches_mean_and_covariance():
    torch.manual_seed(0)
    src = torch.rand(1, 3, 32, 32) * torch.tensor([0.3, 0.6, 0.2]).view(1, 3, 1, 1)
    ref = torch.rand(1, 3, 32, 32) * 0.5 + 0.25
    out = color.match_color(src, ref)
    mu_o, cov_o = mean_cov(out.double())
    mu_r, cov_r = mean_cov(ref.double())
    assert torch.allclose(mu_o, mu_r, atol=1e-3)
    assert torch.allclose(cov_o, cov_r, atol=1e-3)


def test_recombine_keeps_content_chroma_and_stylized_luminance():
    # mid-range values, so that the recombined colors stay inside the RGB gamut (no clamping)
    content = torch.rand(1, 3, 8, 8) * 0.2 + 0.4
    stylized = torch.rand(1, 3, 8, 8) * 0.2 + 0.4
    out = color.recombine_luminance(stylized, content)
    yiq_o, yiq_c = color.rgb_to_yiq(out), color.rgb_to_yiq(content)
    assert torch.allclose(yiq_o[:, 1:], yiq_c[:, 1:], atol=2e-3)
    assert torch.allclose(yiq_o[:, :1], color.luminance(stylized), atol=2e-3)


def test_luminance_matching_to_content_statistics():
    style = torch.rand(1, 3, 16, 16) * 0.2
    content = torch.rand(1, 3, 16, 16) * 0.6 + 0.2
    grey = color.luminance_as_rgb(style, like=content)
    y = grey[:, 0]
    assert torch.allclose(y.mean(), color.luminance(content).mean(), atol=1e-3)
    assert torch.equal(grey[:, 0], grey[:, 1])


def test_keep_structure_restores_the_photos_coarse_light_in_the_images_tones():
    import torch

    from impasto.ops.color import keep_structure, luminance
    from impasto.ops.geometry import box_mean

    g = torch.Generator().manual_seed(0)
    photo = torch.zeros(1, 3, 32, 32)
    photo[..., 16:, :] = 1.0  # a horizon: light below, dark above
    texture = 0.3 + 0.4 * torch.rand(1, 3, 32, 32, generator=g)  # a painting that lost it
    assert torch.equal(keep_structure(texture, photo, 0.0, 2), texture)
    out = keep_structure(texture, photo, 1.0, 2)
    y = luminance(out)
    assert float(y[..., 24:, :].mean() - y[..., :8, :].mean()) > 0.15  # the horizon is back, at the painting's contrast
    assert abs(float(y.mean() - luminance(texture).mean())) < 0.02  # in the painting's tones, not the photo's 0/1
    fine = luminance(out) - box_mean(box_mean(luminance(out), 2), 2)
    fine_before = luminance(texture) - box_mean(box_mean(luminance(texture), 2), 2)
    a, b = fine.flatten(), fine_before.flatten()
    assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.95  # the strokes are its own
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert torch.isfinite(keep_structure(texture, flat, 1.0, 2)).all()
    assert torch.isfinite(keep_structure(flat, photo, 1.0, 2)).all()
