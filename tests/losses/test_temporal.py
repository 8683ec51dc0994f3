"""The temporal loss (Ruder et al. 2016): reliability-weighted distance to the warped earlier frames."""

import pytest
import torch

from impasto.losses.temporal import TemporalTerm, temporal_loss


def test_temporal_loss_is_the_weighted_mean_squared_difference():
    torch.manual_seed(0)
    image, warped = torch.rand(1, 3, 4, 5), torch.rand(1, 3, 4, 5)
    weights = torch.rand(1, 1, 4, 5)
    want = sum(float(weights[0, 0, y, x]) * float((image[0, c, y, x] - warped[0, c, y, x]) ** 2)
               for c in range(3) for y in range(4) for x in range(5)) / (3 * 4 * 5)
    assert float(temporal_loss(image, warped, weights)) == pytest.approx(want, rel=1e-5)
    assert float(temporal_loss(image, image, weights)) == 0.0
    assert float(temporal_loss(image, warped, torch.zeros_like(weights))) == 0.0  # unreliable flow: free


def test_the_term_sums_one_loss_per_earlier_frame_and_pulls_towards_them():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 6, 6, requires_grad=True)
    near, far = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    w_near, w_far = torch.ones(1, 1, 6, 6), torch.full((1, 1, 6, 6), 0.5)
    term = TemporalTerm([near, far], [w_near, w_far])
    value = term(image, {})
    with torch.no_grad():
        want = temporal_loss(image, near, w_near) + temporal_loss(image, far, w_far)
    assert value.item() == pytest.approx(want.item())
    value.backward()
    step = image.detach() - 10.0 * image.grad
    assert term(step, {}).item() < value.item()  # a gradient step moves towards the warped frames
    assert "warped" in dict(term.named_buffers())  # moves with .to(device)


def test_one_weight_map_per_warped_frame():
    with pytest.raises(ValueError, match="one weight map per warped frame"):
        TemporalTerm([torch.rand(1, 3, 2, 2)] * 2, [torch.ones(1, 1, 2, 2)])
