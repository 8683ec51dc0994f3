import torch

from impasto.ops.geometry import fit_long_edge, resize, spatial_size, upsample_with_detail


def test_spatial_size_and_fit():
    assert spatial_size(torch.zeros(1, 3, 7, 9)) == (7, 9)
    assert fit_long_edge((300, 400), 512) == (384, 512)


def test_upsampling_with_detail_restores_the_reference_from_its_own_coarse_copy():
    torch.manual_seed(0)
    reference = torch.rand(1, 3, 64, 48) * 0.5 + 0.25
    coarse = resize(reference, (32, 24))
    out = upsample_with_detail(coarse, reference)
    assert out.shape == reference.shape
    assert torch.allclose(out, reference, atol=1e-5)  # the coarse copy plus the band is the whole


def test_the_detail_band_is_the_references_not_the_coarse_images():
    torch.manual_seed(1)
    reference = torch.rand(1, 3, 64, 64) * 0.5 + 0.25
    coarse = torch.full((1, 3, 32, 32), 0.5)  # a flat coarse image: all detail comes from the reference
    out = upsample_with_detail(coarse, reference)
    detail = reference - resize(resize(reference, (32, 32)), (64, 64))
    assert torch.allclose(out, (0.5 + detail).clamp(0, 1), atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
