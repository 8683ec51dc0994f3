"""The optimization method (Gatys et al. 2016): config, optimizers, memory plan, pipeline."""

from .config import INIT_CHOICES, PRESETS, OptimizeConfig, StylizeConfig, with_preset
from .optimizers import OPTIMIZERS, optimize
from .pipeline import compute_targets, load_inputs, stylize
from .snapshot import Snapshot, SnapshotFile, load_snapshot, save_snapshot

__all__ = ["INIT_CHOICES", "OPTIMIZERS", "PRESETS", "OptimizeConfig", "Snapshot", "SnapshotFile", "StylizeConfig",
           "compute_targets", "load_inputs", "load_snapshot", "optimize", "save_snapshot", "stylize", "with_preset"]
