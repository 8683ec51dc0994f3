"""Tensor -> tensor helpers shared by every method: geometry, color, regions, tiles."""
