"""Feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017): train, infer, export."""

from ..progress import TrainProgress
from .model import StyleModel, load_model, shipped_models
from .train import TrainConfig, train

__all__ = ["StyleModel", "TrainConfig", "TrainProgress", "load_model", "shipped_models", "train"]
