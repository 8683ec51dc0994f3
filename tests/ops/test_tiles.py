"""Tiles: grids that cover an image with overlap, feathered pasting, and the seam measure."""

import itertools

import pytest
import torch

from impasto.ops import tiles as tiling
from impasto.ops.tiles import Canvas, budget_grid, feather, grid, seam_ratio


def _coverage(tiles, size):
    covered = torch.zeros(size)
    for t in tiles:
        covered[t.y0:t.y1, t.x0:t.x1] += 1
    return covered


def _min_overlap(tiles):
    """The smallest overlap between horizontally or vertically adjacent tiles."""
    xs, ys = sorted({(t.x0, t.x1) for t in tiles}), sorted({(t.y0, t.y1) for t in tiles})
    return min([a[1] - b[0] for a, b in itertools.pairwise(xs)] + [a[1] - b[0] for a, b in itertools.pairwise(ys)])


def test_grid_covers_the_image_with_overlap():
    tiles = grid((100, 230), 64, 16)
    assert _coverage(tiles, (100, 230)).min() >= 1
    assert all(t.size[0] <= 64 and t.size[1] <= 64 for t in tiles)
    assert len(tiles) == 2 * 5 and _min_overlap(tiles) >= 16
    # tiles shrink to what covering needs: 5 columns of 64 px would overlap by 23 px, not 16
    assert {t.size for t in tiles} == {(58, 59)}
    assert grid((50, 40), 64, 16) == [tiling.Tile(0, 50, 0, 40)]


def test_budget_grid_covers_with_the_least_work():
    size, overlap = (2560, 4096), 64
    max_px = 2000 * 2000
    tiles = budget_grid(size, max_px, overlap)
    assert _coverage(tiles, size).min() >= 1 and _min_overlap(tiles) >= overlap
    assert all(t.size[0] * t.size[1] <= max_px for t in tiles)
    area = sum(t.size[0] * t.size[1] for t in tiles)
    assert area < 1.1 * size[0] * size[1]  # square 2000 px tiles would cost 2.3x the image
    for ny in range(1, 6):  # no other grid that fits does less work
        for nx in range(1, 6):
            th, tw = tiling._length(size[0], ny, overlap), tiling._length(size[1], nx, overlap)
            if th * tw <= max_px:
                assert ny * nx * th * tw >= area
    assert len(budget_grid((300, 300), 10**9, 16)) == 1


def test_feather_and_canvas():
    tiles = grid((64, 112), 64, 16)
    w = feather(tiles[0], (64, 112), 16)
    assert w[0, 0, :, 0].eq(1).all()  # image border: full weight to the edge
    assert w[0, 0, 0, -4:].eq(0).all()  # the outer quarter of the overlap is context only
    assert 0 < w[0, 0, 0, -8] < 1 and w[0, 0, 0, 40] == 1
    start = torch.rand(1, 3, 64, 112)
    canvas = Canvas(torch.zeros_like(start), 16)
    for t in tiles:  # pasting the same image tile by tile rebuilds it exactly (partition of unity)
        canvas.paste(start[..., t.y0:t.y1, t.x0:t.x1], t)
    assert torch.allclose(canvas.image(), start, atol=1e-6)
    assert canvas.weight.min() > 0


def test_seam_ratio_sees_a_step():
    smooth = torch.linspace(0, 1, 128).repeat(1, 3, 64, 1)
    tiles = grid((64, 128), 64, 16)
    assert seam_ratio(smooth, tiles, 16) == pytest.approx(1.0, rel=0.05)
    stepped = smooth.clone()
    stepped[..., tiles[1].x0:] += 0.3
    assert seam_ratio(stepped, tiles, 16) > 5
