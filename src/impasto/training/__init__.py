"""One training loop for every trainable model: the fast models' transformer and the universal
method's decoders plug into :func:`run` as a :class:`Task` (the model, its optimizer, its loss, its
batches), and share the rest: the step and its all-reduce across ``torchrun`` processes, the
non-finite guard, checkpoints and what a resume may change, seeding, and the model card's common
fields. Below the methods' own packages (``fast``, ``universal``), above ``losses``."""

from .checkpoint import RESUMABLE, check_resume, checkpoint_path, read_checkpoint, resume, save_checkpoint
from .loop import (
    LoopSettings,
    LoopState,
    NonFiniteStepWarning,
    Task,
    card,
    data_card,
    last_leg,
    run,
    seed,
    step,
    trained_steps,
)

__all__ = [
           "RESUMABLE",
           "LoopSettings",
           "LoopState",
           "NonFiniteStepWarning",
           "Task",
           "card",
           "check_resume",
           "checkpoint_path",
           "data_card",
           "last_leg",
           "read_checkpoint",
           "resume",
           "run",
           "save_checkpoint",
           "seed",
           "step",
           "trained_steps",
]
