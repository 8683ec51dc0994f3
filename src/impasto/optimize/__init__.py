"""The optimization method (Gatys et al. 2016): config, optimizers, memory plan, pipeline."""

from .config import INIT_CHOICES, OptimizeConfig, StylizeConfig
from .optimizers import OPTIMIZERS, optimize
from .pipeline import compute_targets, load_inputs, stylize
from .snapshot import Snapshot, SnapshotFile, load_snapshot, save_snapshot

__all__ = ["INIT_CHOICES", "OPTIMIZERS", "OptimizeConfig", "Snapshot", "SnapshotFile", "StylizeConfig",
           "compute_targets", "load_inputs", "load_snapshot", "optimize", "save_snapshot", "stylize"]
