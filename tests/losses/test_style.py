import math

import pytest
import torch

from impasto.errors import InputError
from impasto.losses import STYLE_LOSSES, get_style_loss, gram_matrix, stack_targets
from impasto.losses.meancov import MeanCovLoss, mean_cov
from impasto.losses.mrf import MRFLoss, extract_patches, match_patches
from impasto.losses.style import StyleLossOptions


def brute_force_mrf(image, style, k, stride):
    """Loops over every image patch and every style patch; NCC with both norms."""
    _c, h, w = image.shape[1:]
    sp = [style[0, :, i:i + k, j:j + k].reshape(-1)
          for i in range(0, style.shape[2] - k + 1, stride) for j in range(0, style.shape[3] - k + 1, stride)]
    idx, loss = [], 0.0
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            x = image[0, :, i:i + k, j:j + k].reshape(-1)
            scores = [float(x @ s / (x.norm() * s.norm())) for s in sp]
            best = max(range(len(sp)), key=lambda n: scores[n])
            idx.append(best)
            loss += float(((x - sp[best]) ** 2).mean())
    return idx, loss / len(idx)


@pytest.mark.parametrize("stride", [1, 2])
def test_mrf_matching_against_brute_force(stride):
    torch.manual_seed(0)
    image, style = torch.rand(1, 4, 6, 7), torch.rand(1, 4, 7, 5)
    kind = MRFLoss(StyleLossOptions(patch_stride=stride, chunk=3))  # small chunks: exercise merging
    target = kind.target([style])
    got = match_patches(image, target["kernels"], chunk=3).tolist()
    ref_idx, ref_loss = brute_force_mrf(image, style, 3, stride)
    assert got == ref_idx
    assert kind.loss(image, target).item() == pytest.approx(ref_loss, rel=1e-4)


def test_mrf_patches_and_mask_weighting():
    torch.manual_seed(1)
    f = torch.rand(1, 2, 5, 5)
    assert extract_patches(f, 3).shape == (9, 2, 3, 3)
    kind = MRFLoss()
    target = kind.target([torch.rand(1, 2, 6, 6)])
    ones = torch.ones(1, 1, 5, 5)
    assert kind.loss(f, target, ones).item() == pytest.approx(kind.loss(f, target).item(), rel=1e-5)
    half = torch.zeros(1, 1, 5, 5)
    half[..., :, :3] = 1  # patch centres in columns 1..2 of the 3x3 grid of centres -> first 2 columns
    per_patch = (torch.nn.functional.unfold(f, 3)[0].T
                 - target["patches"].flatten(1)[match_patches(f, target["kernels"])]).square().mean(1).view(3, 3)
    expected = per_patch[:, :2].mean()
    assert kind.loss(f, target, half).item() == pytest.approx(expected.item(), rel=1e-4)


def test_mrf_gradient_matches_the_patch_formula():
    torch.manual_seed(5)
    kind = MRFLoss(StyleLossOptions(patch_stride=1))
    target = kind.target([torch.rand(1, 3, 7, 7)])
    x = torch.rand(1, 3, 6, 6, requires_grad=True)
    idx = match_patches(x.detach(), target["kernels"])
    reference = (torch.nn.functional.unfold(x, 3)[0].T - target["patches"].flatten(1)[idx]).square().mean()
    g_ref = torch.autograd.grad(reference, x)[0]
    g = torch.autograd.grad(kind.loss(x, target), x)[0]
    assert torch.allclose(g, g_ref, atol=1e-6)


def test_mrf_gradient_pulls_towards_matches():
    torch.manual_seed(2)
    kind = MRFLoss(StyleLossOptions(patch_stride=1))
    style = torch.rand(1, 3, 8, 8)
    target = kind.target([style])
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    before = kind.loss(x, target)
    before.backward()
    with torch.no_grad():
        x2 = x - 0.5 * x.grad / x.grad.abs().max()
    assert kind.loss(x2, target).item() < before.item()
    assert kind.loss(style, target).item() == pytest.approx(0.0, abs=1e-10)  # style matches itself


def exact_gaussian_features(mean, variances, n=64, seed=0):
    """(1, C, 8, n/8) features whose sample mean and covariance are exactly mean, diag(variances)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(mean), generator=g, dtype=torch.float64)
    x = x - x.mean(0)
    cov = x.T @ x / n
    vals, vecs = torch.linalg.eigh(cov)
    x = x @ (vecs @ torch.diag(vals.rsqrt()) @ vecs.T)  # exactly white
    x = x * torch.tensor(variances, dtype=torch.float64).sqrt() + torch.tensor(mean, dtype=torch.float64)
    return x.T.reshape(1, len(mean), 8, n // 8).float()


def test_meancov_against_closed_form_for_gaussians():
    mu1, var1 = [0.5, -1.0, 2.0], [1.0, 4.0, 0.25]
    mu2, var2 = [0.0, 1.0, 2.5], [9.0, 1.0, 0.25]
    x, s = exact_gaussian_features(mu1, var1), exact_gaussian_features(mu2, var2, seed=1)
    _mu, cov = mean_cov(x)
    assert torch.allclose(cov[0], torch.diag(torch.tensor(var1)), atol=1e-4)
    # W2^2 between Gaussians with commuting covariances: |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2
    closed = sum((a - b) ** 2 for a, b in zip(mu1, mu2)) + sum(
        (math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(var1, var2))
    kind = MeanCovLoss()
    target = kind.target([s])
    assert kind.loss(x, target).item() * 3 == pytest.approx(closed, rel=1e-4)
    assert kind.loss(s, target).item() == pytest.approx(0.0, abs=1e-4)
    assert kind.scale(target) * 3 == pytest.approx(sum(m * m for m in mu2) + sum(var2), rel=1e-4)


def test_meancov_general_covariance_and_gradient():
    torch.manual_seed(3)
    a = torch.randn(1, 4, 6, 6)
    b = torch.randn(1, 4, 6, 6) * 2 + 1
    kind = MeanCovLoss()
    target = kind.target([b])
    x = a.clone().requires_grad_(True)
    loss = kind.loss(x, target)
    loss.backward()
    assert torch.isfinite(x.grad).all() and loss.item() > 0
    with torch.no_grad():
        assert kind.loss(x - 0.1 * x.grad / x.grad.abs().max(), target).item() < loss.item()


def test_guided_gram_selects_the_masked_region():
    torch.manual_seed(4)
    f = torch.rand(1, 3, 4, 6)
    mask = torch.zeros(1, 1, 4, 6)
    mask[..., :3] = 1
    assert torch.allclose(gram_matrix(f, mask), gram_matrix(f[..., :3]), atol=1e-6)
    assert torch.allclose(gram_matrix(f, torch.ones(1, 1, 4, 6)), gram_matrix(f), atol=1e-6)


def test_registry_and_unknown_name():
    assert set(STYLE_LOSSES) == {"gram", "meancov", "mrf"}
    with pytest.raises(InputError, match="unknown style loss 'wct'; valid: gram, meancov, mrf"):
        get_style_loss("wct")


def test_mrf_layer_too_small():
    with pytest.raises(InputError, match="holds no 3x3 patch"):
        MRFLoss().check("relu4_1", (2, 5), (10, 10))


@pytest.mark.parametrize("name", ["gram", "meancov", "mrf"])
def test_batches_with_shared_and_per_sample_targets(name):
    """A batch's loss is the mean of its images' losses, with one shared target or one per image."""
    torch.manual_seed(5)
    kind = get_style_loss(name)
    x = torch.rand(3, 4, 7, 7)
    styles = [torch.rand(1, 4, 7, 7) for _ in range(3)]
    shared = kind.target([styles[0]])
    single = torch.stack([kind.loss(x[i:i + 1], shared) for i in range(3)]).mean()
    assert kind.loss(x, shared).item() == pytest.approx(single.item(), rel=1e-4)
    if name != "mrf":  # MRF matches against one pool of patches shared by the batch
        own = [kind.target([s]) for s in styles]
        per_sample = torch.stack([kind.loss(x[i:i + 1], own[i]) for i in range(3)]).mean()
        assert kind.loss(x, stack_targets(own)).item() == pytest.approx(per_sample.item(), rel=1e-4)
