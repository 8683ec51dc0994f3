"""How much memory optimizing an image takes, and which scales must be tiled to fit.

A scale too large for memory is optimized tile by tile (:mod:`impasto.ops.tiles`). Every tile
starts from the current whole image (so its overlap already holds what its neighbours made) and
matches the *global* style targets (the same statistics for every tile, so that tiles agree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..losses.style import STYLE_LOSSES
from ..ops.geometry import fit_long_edge
from ..ops.tiles import MIN_TILE, Tile, budget_grid, grid
from .config import OptimizeConfig
from .optimizers import OPTIMIZER_KINDS

# Bytes per output pixel live on their classes: each style loss's ``bytes_per_pixel`` (its
# activations and gradients) and each optimizer's (its own state).
BASELINE_BYTES = 600 * 2**20

def _per_pixel(style_loss: str, optimizer: str) -> int:
    loss = STYLE_LOSSES.get(style_loss)
    kind = OPTIMIZER_KINDS.get(optimizer)
    return ((loss.bytes_per_pixel if loss else max(k.bytes_per_pixel for k in STYLE_LOSSES.values()))
            + (kind.bytes_per_pixel if kind else max(k.bytes_per_pixel for k in OPTIMIZER_KINDS.values())))


def estimate_bytes(h: int, w: int, style_loss: str = "gram", optimizer: str = "lbfgs") -> int:
    """Peak memory of optimizing an h x w image in one piece (linear in the pixel count)."""
    return BASELINE_BYTES + _per_pixel(style_loss, optimizer) * h * w


def available_bytes() -> int:
    """Memory available to this process now (MemAvailable), or total RAM where that is unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def max_tile_pixels(budget: int, style_loss: str = "gram", optimizer: str = "lbfgs") -> int:
    """How many pixels one tile may have for its optimization to fit in ``budget`` bytes."""
    return max(MIN_TILE * MIN_TILE, (budget - BASELINE_BYTES) // _per_pixel(style_loss, optimizer))


def memory_budget(opt: OptimizeConfig, device: torch.device) -> int:
    """Bytes a scale may use: the configured GiB, or 80% of what is free on the device now."""
    if opt.memory_budget:
        return int(opt.memory_budget * 2**30)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.mem_get_info(device)[0])
    return int(0.8 * available_bytes())


@dataclass(frozen=True)
class Scale:
    """One scale of the coarse-to-fine pyramid, planned: what every part of a run reads."""

    index: int
    edge: int
    """Its long edge."""
    size: tuple[int, int]
    """(height, width) at that edge."""
    iterations: int
    tiles: list[Tile]
    """Its tiles ([] = optimized in one piece)."""

    @property
    def steps(self) -> int:
        """Optimizer steps (each tile takes ``iterations`` of its own)."""
        return self.iterations * max(1, len(self.tiles))

    @property
    def work(self) -> float:
        """Pixel-iterations: what the progress fraction and the ETA are measured in."""
        pixels = sum(t.size[0] * t.size[1] for t in self.tiles) if self.tiles else self.size[0] * self.size[1]
        return float(self.iterations * pixels)


def plan_scales(content_hw: tuple[int, int], opt: OptimizeConfig, style_loss: str, budget: int) -> list[Scale]:
    """Every scale of the run, coarse to fine: edge, size, iterations and tiles (so that each scale
    fits in ``budget`` bytes)."""
    edges, counts = opt.pyramid(), opt.scale_iterations()
    scales = []
    for index, (edge, count) in enumerate(zip(edges, counts)):
        hw = fit_long_edge(content_hw, edge)
        scales.append(Scale(index, edge, hw, count, _tiles(hw, opt, style_loss, budget)))
    return scales


def _tiles(hw: tuple[int, int], opt: OptimizeConfig, style_loss: str, budget: int) -> list[Tile]:
    h, w = hw
    need = estimate_bytes(h, w, style_loss, opt.optimizer)
    if opt.tile:
        return grid((h, w), opt.tile, opt.tile_overlap) if max(h, w) > opt.tile else []
    if need <= budget:
        return []
    if opt.tile == 0:
        raise InputError(
            f"a {w}x{h} scale needs about {need / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB "
            "available; set tile (or a smaller size)", fields=("tile", "size")
        )
    tiles = budget_grid((h, w), max_tile_pixels(budget, style_loss, opt.optimizer), opt.tile_overlap)
    return tiles if len(tiles) > 1 else []
