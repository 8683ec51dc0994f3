import pytest
import torch

from impasto.nets.transformer import CondInstanceNorm, TransformerNet


@pytest.mark.parametrize("hw", [(32, 32), (37, 50), (21, 18), (9, 5)])
def test_output_is_an_image_of_the_input_size(hw):
    net = TransformerNet(n_styles=2, width=0.125).eval()
    x = torch.rand(2, 3, *hw)
    out = net(x, torch.eye(2))
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


def test_conditional_norm_blends_scale_and_shift_linearly():
    torch.manual_seed(0)
    norm = CondInstanceNorm(4, 3)
    with torch.no_grad():
        norm.gamma.copy_(torch.rand(3, 4) + 0.5)
        norm.beta.copy_(torch.randn(3, 4))
    x = torch.randn(1, 4, 5, 5)
    one = [norm(x, torch.eye(3)[i:i + 1]) for i in range(3)]
    mix = torch.tensor([[0.2, 0.3, 0.5]])
    expected = 0.2 * one[0] + 0.3 * one[1] + 0.5 * one[2]  # affine in (gamma, beta), so blends mix outputs
    assert torch.allclose(norm(x, mix), expected, atol=1e-5)
    normalized = torch.nn.functional.instance_norm(x)
    assert torch.allclose(one[1], normalized * norm.gamma[1].view(1, 4, 1, 1) + norm.beta[1].view(1, 4, 1, 1),
                          atol=1e-5)


def test_width_scales_the_channels_and_style_parameters_are_per_style():
    small, big = TransformerNet(2, width=0.25), TransformerNet(2, width=1.0)
    assert small.down[0].conv.out_channels == 8 and big.down[0].conv.out_channels == 32
    assert big.res[0].a.conv.in_channels == 128
    views = small.style_parameters(1)
    assert views and all(v.dim() == 1 for v in views)
    # no transposed convolutions (checkerboard artifacts): upsampling is resize + conv
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in big.modules())


def test_bilinear_upsampling_is_an_architecture_choice_kept_in_the_model_file(tmp_path):
    from impasto.fast.model import StyleModel, load_model
    from impasto.nets.transformer import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(2, width=0.125, blocks=1, upsample="bilinear")
    x, w = torch.rand(1, 3, 20, 28), torch.tensor([[1.0, 0.0]])
    nearest = TransformerNet(2, width=0.125, blocks=1)
    nearest.load_state_dict(net.state_dict())  # the same weights: only the upsampling differs
    assert not torch.allclose(net(x, w), nearest(x, w))
    path = tmp_path / "m.pt"
    StyleModel(net.eval(), ["a", "b"]).save(path)
    loaded = load_model(path, precision="fp32")
    assert loaded.net.upsample == "bilinear"
    assert torch.allclose(loaded.net(x, w), net(x, w), atol=2e-3)  # float16 storage
    with pytest.raises(ValueError, match="upsample must be one of"):
        TransformerNet(1, upsample="cubic")


def test_blurred_downsampling_is_an_architecture_choice_kept_in_the_model_file(tmp_path):
    from impasto.fast.model import StyleModel, load_model
    from impasto.nets.transformer import TransformerNet, binomial_blur

    torch.manual_seed(0)
    net = TransformerNet(2, width=0.125, blocks=1, downsample="blur")
    x, w = torch.rand(1, 3, 21, 30), torch.tensor([[0.0, 1.0]])
    plain = TransformerNet(2, width=0.125, blocks=1)
    plain.load_state_dict(net.state_dict())  # the same weights: only the downsampling differs
    assert net(x, w).shape == x.shape and not torch.allclose(net(x, w), plain(x, w))
    path = tmp_path / "m.pt"
    StyleModel(net.eval(), ["a", "b"]).save(path)
    loaded = load_model(path, precision="fp32")
    assert loaded.net.downsample == "blur"
    assert torch.allclose(loaded.net(x, w), net(x, w), atol=2e-3)
    flat = torch.full((1, 2, 8, 8), 0.3)
    assert torch.allclose(binomial_blur(flat), flat)  # a low-pass: flat stays flat
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    blurred = binomial_blur(checker.float()[None, None])
    assert blurred[..., 1:-1, 1:-1].std() < 1e-6  # and the finest pattern (what a stride aliases) is gone
    with pytest.raises(ValueError, match="downsample must be one of"):
        TransformerNet(1, downsample="pool")
