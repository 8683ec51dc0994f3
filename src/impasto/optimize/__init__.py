"""The optimization method (Gatys et al. 2016): config, optimizers, memory plan, pipeline."""

from .config import INIT_CHOICES, OptimizeConfig, StylizeConfig
from .optimizers import OPTIMIZERS, optimize
from .pipeline import compute_targets, load_inputs, stylize

__all__ = ["INIT_CHOICES", "OPTIMIZERS", "OptimizeConfig", "StylizeConfig", "compute_targets", "load_inputs",
           "optimize", "stylize"]
