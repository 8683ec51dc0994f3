import pytest
import torch

from impasto.errors import InputError
from impasto.losses import ContentLoss, content_loss, gram_matrix, style_loss, tv_loss


def test_gram_by_hand():
    # two channels over a 1x2 image: a = [1, 2], b = [3, 4]
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_gram_is_layout_independent():
    f = torch.randn(1, 5, 4, 3)
    g1 = gram_matrix(f)
    g2 = gram_matrix(f.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(g1, g2, atol=1e-6)


def test_content_loss_by_hand():
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    t = torch.tensor([1.0, 0.0, 3.0, 1.0]).view(1, 1, 2, 2)
    # squared differences: 0, 4, 0, 9
    assert content_loss(f, t, "chw").item() == pytest.approx(13 / 4)
    assert content_loss(f, t, "paper").item() == pytest.approx(13 / 2)


def test_style_loss_paper_matches_equation_4():
    torch.manual_seed(0)
    x, s = torch.randn(1, 3, 4, 5), torch.randn(1, 3, 4, 5)
    n, m = 3, 4 * 5
    raw_g = x.reshape(3, -1) @ x.reshape(3, -1).T
    raw_a = s.reshape(3, -1) @ s.reshape(3, -1).T
    expected = ((raw_g - raw_a) ** 2).sum() / (4 * n**2 * m**2)
    got = style_loss(gram_matrix(x), gram_matrix(s), "paper")
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    chw = style_loss(gram_matrix(x), gram_matrix(s), "chw")
    assert chw.item() == pytest.approx((((raw_g - raw_a) / (n * m)) ** 2).mean().item(), rel=1e-5)


def test_tv_loss_by_hand():
    img = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    # horizontal diffs 1, 2 -> mean sq 2.5; vertical diffs 2, 3 -> mean sq 6.5
    assert tv_loss(img).item() == pytest.approx(9.0)
    assert tv_loss(torch.ones(1, 3, 5, 5)).item() == 0.0


def test_modules_match_functions_and_auto_weight_is_relative():
    torch.manual_seed(1)
    target = torch.randn(1, 4, 6, 6)
    f = torch.randn(1, 4, 6, 6)
    m = ContentLoss(target, weight=2.5)
    assert torch.allclose(m(f), 2.5 * content_loss(f, target))
    auto = ContentLoss(target)
    assert auto(torch.zeros_like(target)).item() == pytest.approx(1.0, rel=1e-5)
    assert "target" in dict(auto.named_buffers())  # moves with .to(device)


def test_batched_losses_are_the_mean_of_single_ones():
    torch.manual_seed(4)
    f, t = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    single = [content_loss(f[i:i + 1], t[i:i + 1]) for i in range(3)]
    assert content_loss(f, t).item() == pytest.approx(torch.stack(single).mean().item(), rel=1e-5)
    mask = (torch.rand(3, 1, 5, 5) > 0.5).float() + 0.1
    grams = gram_matrix(f, mask)
    for i in range(3):  # the guided Gram of a batch is each image's own, not pooled over the batch
        assert torch.allclose(grams[i], gram_matrix(f[i:i + 1], mask[i:i + 1])[0], atol=1e-6)


def test_style_loss_gradcheck():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    a = gram_matrix(torch.randn(1, 3, 4, 4, dtype=torch.float64)).double()

    for norm in ("chw", "paper"):
        assert torch.autograd.gradcheck(lambda t, n=norm: style_loss(gram_matrix(t), a, n), (x,))
        assert torch.autograd.gradcheck(lambda t, n=norm: content_loss(t, a[None], n), (x[:, :, :3, :3],))


def test_unknown_normalization():
    with pytest.raises(InputError, match="valid: chw, paper"):
        content_loss(torch.zeros(1), torch.zeros(1), "l2")


def _grid(amplitude: float, size: int = 128, seed: int = 0) -> torch.Tensor:
    """A random 4x4 pattern repeated over the image: the lattice a fast network's decoder paints."""
    g = torch.Generator().manual_seed(seed)
    tile = torch.rand(1, 3, 4, 4, generator=g) - 0.5
    return amplitude * tile.repeat(1, 1, size // 4, size // 4)


def test_lattice_loss_sees_a_grid_and_not_texture_or_ramps():
    from impasto.losses import lattice_loss

    g = torch.Generator().manual_seed(1)
    texture = 0.5 + 0.1 * torch.randn(1, 3, 128, 128, generator=g)  # fine detail that does not repeat
    grid = _grid(0.2)  # weaker than the texture (std 0.06 against 0.1), yet clear to the loss
    assert lattice_loss(texture + grid) > 10 * lattice_loss(texture)
    assert lattice_loss(grid) == pytest.approx(float(lattice_loss(grid.roll(1, -1).roll(3, -2))), rel=1e-5)
    ramp = torch.linspace(0, 1, 128).view(1, 1, 1, 128).expand(1, 3, 128, 128)
    assert lattice_loss(ramp + ramp.transpose(-1, -2)) < 1e-12  # smooth shading is not a grid
    stripes = 0.1 * torch.sin(torch.arange(128.0) * 2 * torch.pi / 5).view(1, 1, 1, 128).expand(1, 3, 128, 128)
    four = 0.1 * torch.sin(torch.arange(128.0) * 2 * torch.pi / 4).view(1, 1, 1, 128).expand(1, 3, 128, 128)
    assert lattice_loss(stripes) < 0.05 * lattice_loss(four)  # a 5 px period is not on the 4 px grid
    assert lattice_loss(torch.rand(1, 3, 31, 200)) == 0  # smaller than one 32 px window: nothing to measure


def test_lattice_loss_gradient_removes_the_grid_and_keeps_the_picture():
    from impasto.losses import lattice_loss

    y = torch.linspace(0, 1, 128).view(1, 1, 128, 1)
    picture = (0.3 + 0.4 * (y > 0.5)).expand(1, 3, 128, 128).contiguous()  # a horizon: one edge
    x = (picture + _grid(0.1)).requires_grad_(True)
    before = float(lattice_loss(x.detach()))
    opt = torch.optim.Adam([x], lr=5e-3)
    for _ in range(100):
        opt.zero_grad()
        lattice_loss(x).backward()
        opt.step()
    assert float(lattice_loss(x.detach())) < 0.01 * before
    assert (x.detach() - picture).abs().mean() < 0.02  # the grid went, the horizon stayed
