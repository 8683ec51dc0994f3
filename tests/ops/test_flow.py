"""Optical flow (ops.flow): DIS flow, warping and the forward-backward reliability."""

import pytest
import torch

pytest.importorskip("cv2")

from impasto.ops.flow import dis_flow, reliability, warp


def test_flow_warp_and_reliability_on_a_known_shift():
    torch.manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=(64, 64), mode="bilinear")
    moved = torch.roll(base, shifts=3, dims=-1)  # everything moves 3 px to the right
    flow = dis_flow(moved, base)  # where each pixel of `moved` comes from in `base`
    inner = flow[..., 8:-8, 8:-8]
    assert abs(float(inner[0, 0].median()) + 3) < 0.5 and abs(float(inner[0, 1].median())) < 0.5
    c = reliability(flow, dis_flow(base, moved))
    assert c[..., 8:-8, 8:-8].mean() > 0.8
    assert (warp(base, flow) - moved)[..., 8:-8, 8:-8].abs().mean() < 0.02
