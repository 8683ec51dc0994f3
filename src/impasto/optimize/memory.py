"""How much memory optimizing an image takes, and which scales must be tiled to fit.

A scale too large for memory is optimized tile by tile (:mod:`impasto.ops.tiles`). Every tile
starts from the current whole image (so its overlap already holds what its neighbours made) and
matches the *global* style targets (the same statistics for every tile, so that tiles agree).
"""

from __future__ import annotations

import os

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


def plan_tiles(content_hw: tuple[int, int], edges: list[int], opt: OptimizeConfig, style_loss: str,
               budget: int) -> list[list[Tile]]:
    """For each scale, its tiles ([] = optimized in one piece)."""
    plan: list[list[Tile]] = []
    for edge in edges:
        h, w = fit_long_edge(content_hw, edge)
        need = estimate_bytes(h, w, style_loss, opt.optimizer)
        if opt.tile:
            plan.append(grid((h, w), opt.tile, opt.tile_overlap) if max(h, w) > opt.tile else [])
        elif need <= budget:
            plan.append([])
        elif opt.tile == 0:
            raise InputError(
                f"a {w}x{h} scale needs about {need / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB "
                "available; set tile (or a smaller size)", fields=("tile", "size")
            )
        else:
            pixels = max_tile_pixels(budget, style_loss, opt.optimizer)
            tiles = budget_grid((h, w), pixels, opt.tile_overlap)
            plan.append(tiles if len(tiles) > 1 else [])
    return plan
