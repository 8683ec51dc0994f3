"""Spatial control's masks (ops.regions): style regions normalized, the kept region taken out and restored."""

import torch

from impasto.ops.regions import region_masks, restore_kept


def test_soft_overlapping_masks_are_normalized():
    a = torch.ones(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.5)
    ma, mb = region_masks([a, b], None, (4, 4), 2)
    assert torch.allclose(ma + mb, torch.ones(1, 1, 4, 4))
    assert torch.allclose(ma, torch.full((1, 1, 4, 4), 2 / 3))
    keep = torch.zeros(1, 1, 4, 4)
    keep[..., :2] = 1
    (only,) = region_masks(None, keep, (4, 4), 1)
    assert only[..., :2].max() == 0 and only[..., 2:].min() == 1


def test_restore_kept_puts_the_content_back_softly():
    image, content = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    keep = torch.zeros(1, 1, 4, 4)
    keep[..., :2] = 1.0
    keep[..., 2] = 0.25
    out = restore_kept(image, content, keep)
    assert torch.equal(out[..., :2], content[..., :2])  # kept: the content exactly
    assert torch.allclose(out[..., 2], torch.full_like(out[..., 2], 0.25))  # a soft edge blends
    assert torch.equal(out[..., 3], image[..., 3])  # elsewhere: the stylized image
