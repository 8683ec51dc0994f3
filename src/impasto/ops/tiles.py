"""Overlapping tiles for print-size images: the grid, feathered pasting, and a seam measure.

An image too large to process in one piece is processed tile by tile; each tile is pasted back
with a linear feather across the overlap (a normalized weighted sum), so no hard edge is ever
written. How much fits in memory is the method's business (:mod:`impasto.optimize.memory`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .geometry import spatial_size

MIN_TILE = 128


@dataclass(frozen=True)
class Tile:
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def overlaps(a: Tile, b: Tile) -> bool:
    return a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1


def waves(tiles: list[Tile]) -> list[list[int]]:
    """The tiles (by index) in waves that can run at once, with the result of running them one by
    one in order: a tile starts from the image its overlapping predecessors made, so it goes one
    wave after the last of them; tiles of one wave never overlap. (A row-major grid gives the
    diagonal wavefront: the tiles of one wave run side by side on several devices.)"""
    level: list[int] = []
    for i, tile in enumerate(tiles):
        level.append(1 + max((level[j] for j in range(i) if overlaps(tiles[j], tile)), default=-1))
    return [[i for i, lv in enumerate(level) if lv == wave] for wave in range(max(level, default=-1) + 1)]


def _count(length: int, tile: int, overlap: int) -> int:
    """How many tiles of at most ``tile`` px cover ``length`` px with ``overlap`` px between neighbours."""
    return 1 if length <= tile else math.ceil((length - overlap) / (tile - overlap))


def _length(length: int, n: int, overlap: int) -> int:
    """The shortest tile length with which ``n`` tiles cover ``length`` px overlapping by ``overlap``."""
    return length if n == 1 else math.ceil((length + (n - 1) * overlap) / n)


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced start offsets of tiles of ``tile`` px covering ``length`` px with ``overlap`` overlap."""
    n = _count(length, tile, overlap)
    return [0] if n == 1 else [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _tiles(size: tuple[int, int], ny: int, nx: int, overlap: int) -> list[Tile]:
    h, w = size
    th, tw = _length(h, ny, overlap), _length(w, nx, overlap)
    return [Tile(y, y + th, x, x + tw) for y in starts(h, th, overlap) for x in starts(w, tw, overlap)]


def grid(size: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles of at most ``tile`` px a side covering an image of ``size`` (h, w).

    As few tiles as fit on each axis, each shrunk to the shortest length that still overlaps its
    neighbour by ``overlap``: no pixel is optimized more often than the overlap requires.
    """
    h, w = size
    return _tiles(size, _count(h, tile, overlap), _count(w, tile, overlap), overlap)


def aligned(tiles: list[Tile], step: int) -> list[Tile]:
    """The tiles with their starts moved back to multiples of ``step`` (each grows by < ``step``).

    A network that downsamples by ``step`` computes the same features for a tile as for the whole
    image only if the tile starts on its sampling grid.
    """
    return [Tile(t.y0 - t.y0 % step, t.y1, t.x0 - t.x0 % step, t.x1) for t in tiles]


def budget_grid(size: tuple[int, int], max_pixels: int, overlap: int) -> list[Tile]:
    """The tiles of at most ``max_pixels`` each, any aspect, that cover ``size`` with the least work.

    Work is the total tile area (each pixel costs the same per iteration); ties go to fewer tiles.
    """
    h, w = size
    best: tuple[int, int, list[Tile]] | None = None
    side_min = max(MIN_TILE, 2 * overlap + 1)
    for ny in range(1, _count(h, side_min, overlap) + 1):
        for nx in range(1, _count(w, side_min, overlap) + 1):
            th, tw = _length(h, ny, overlap), _length(w, nx, overlap)
            if th * tw > max_pixels:
                continue
            key = (ny * th * nx * tw, ny * nx)
            if best is None or key < best[:2]:
                best = (*key, _tiles(size, ny, nx, overlap))
            break  # more columns only add area for this row count
    return best[2] if best is not None else grid(size, side_min, overlap)


def feather(tile: Tile, size: tuple[int, int], overlap: int, device=None) -> Tensor:
    """(1, 1, h, w) paste weights of a tile.

    Along a side shared with a neighbour, the outer quarter of the overlap gets weight 0 (those
    pixels were optimized next to the network's zero padding and are used as context only), then
    a linear ramp; at the image's own borders the weight is 1 to the edge.
    """

    def ramp(n: int, at_start: bool, at_end: bool) -> Tensor:
        r = torch.ones(n, device=device)
        k = min(overlap, n // 2)
        margin = k // 4
        width = k - 2 * margin
        if k > 0:
            up = torch.zeros(k, device=device)
            up[margin:k - margin] = torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + 1)
            up[k - margin:] = 1.0
            if not at_start:
                r[:k] = up
            if not at_end:
                r[n - k:] = torch.minimum(r[n - k:], up.flip(0))
        return r

    h, w = size
    ry = ramp(tile.y1 - tile.y0, tile.y0 == 0, tile.y1 == h)
    rx = ramp(tile.x1 - tile.x0, tile.x0 == 0, tile.x1 == w)
    return (ry[:, None] * rx[None, :])[None, None]


class Canvas:
    """Accumulates feathered tiles as a normalized weighted sum (a partition of unity).

    Pasting tiles one over another would leave some of the start image wherever several ramps
    overlap (at tile corners); normalizing by the summed weights does not.
    """

    def __init__(self, start: Tensor, overlap: int) -> None:
        self.start = start
        self.overlap = overlap
        self.acc = torch.zeros_like(start)
        self.weight = torch.zeros_like(start[:, :1])

    def image(self) -> Tensor:
        """The current image: the tiles pasted so far over the start image."""
        done = self.weight > 0
        return torch.where(done, self.acc / self.weight.clamp_min(1e-12), self.start)

    def crop(self, tile: Tile) -> Tensor:
        return self.image()[..., tile.y0:tile.y1, tile.x0:tile.x1]

    def paste(self, piece: Tensor, tile: Tile) -> None:
        w = feather(tile, spatial_size(self.start), self.overlap, self.start.device).to(self.start)
        self.acc[..., tile.y0:tile.y1, tile.x0:tile.x1] += piece * w
        self.weight[..., tile.y0:tile.y1, tile.x0:tile.x1] += w


def seam_ratio(image: Tensor, tiles: list[Tile], overlap: int) -> float:
    """Image-gradient energy on the lines where pasted tiles begin and end, over the interior's.

    Where a tile's feathered paste starts (its ramp's outer edge, inside a neighbour), an
    independently optimized tile would leave a visible step. 1.0 means the seams are as smooth as
    the rest of the image.
    """
    x = image.float().mean(1, keepdim=True)[0, 0]  # luminance-ish, (H, W)
    gx = (x[:, 1:] - x[:, :-1]).square()  # (H, W-1): difference between column c and c+1
    gy = (x[1:, :] - x[:-1, :]).square()
    h, w = x.shape
    cols = sorted({t.x0 for t in tiles if t.x0 > 0} | {t.x1 for t in tiles if t.x1 < w})
    rows = sorted({t.y0 for t in tiles if t.y0 > 0} | {t.y1 for t in tiles if t.y1 < h})
    if not cols and not rows:
        return 1.0
    # like with like: horizontal differences across seam columns against the average column,
    # vertical differences across seam rows against the average row
    seam = sum(float(gx[:, c - 1].sum()) for c in cols) + sum(float(gy[r - 1, :].sum()) for r in rows)
    expected = len(cols) * float(gx.sum(0).mean()) + len(rows) * float(gy.sum(1).mean())
    return seam / max(expected, 1e-12)
