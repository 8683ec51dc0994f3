"""Training the decoders of universal style transfer: photos only, no style images.

Each level's decoder learns to rebuild a photo from its VGG19 features at that level (Li et al.
2017): the shared :class:`impasto.losses.objective.Objective` with a pixel term (mean squared
error to the photo, :class:`PixelTerm`) and a feature term (the decoded image's features against
the photo's, relative, :class:`BatchContentTerm`: the content term of the other methods). One
encoder pass gives every level's features; the decoders of all levels train side by side, with
one optimizer.

The loop is the one every trainer shares (:mod:`impasto.training`): random crops of the photos
under some folders (:mod:`impasto.io.photos`), bfloat16 autocast where the device has the units,
checkpoints (``OUTPUT.ckpt``, every ``checkpoint_every`` steps, on Ctrl-C and when ``max_minutes``
is up) and ``resume``, gradients checked before each step (a non-finite step is skipped and
named; ``max_skipped`` in a row stop the run), and ``torchrun`` (DistributedDataParallel: each
process its own shard and ``batch_size / N`` crops, rank 0 writes).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..config import PRECISIONS, choice, positive, positive_int
from ..errors import InputError, StylizeInterrupted
from ..io.photos import Photos, endless
from ..losses.objective import BatchContentTerm, BatchContext, Objective, PixelTerm
from ..nets.vgg import build_extractor
from ..progress import CancelToken, TrainProgress
from ..runtime import Ranks, all_finite, autocast, autocast_dtype, check_finite, join, leave, resolve_device
from ..training import (
    LoopSettings,
    LoopState,
    Task,
    card,
    checkpoint_path,
    data_card,
    loop,
    save_checkpoint,
    seed,
)
from ..training import resume as loop_resume
from .decoder import LEVELS, Decoder
from .model import DecoderSet, load_decoders


@dataclass(frozen=True)
class DecoderTrainingConfig:
    """Every setting of a decoder training run (documented defaults)."""

    levels: tuple[str, ...] = LEVELS
    """Which levels' decoders to train (relu1_1 ... relu5_1)."""
    width: float = 0.5
    """Channel multiplier of the decoders (1.0 = Li et al.'s mirror of VGG19)."""
    size: int = 128
    """Side of the square photo crops (the decoders are convolutional: they run at any size)."""
    batch_size: int = 8
    steps: int = 20000
    lr: float = 1e-4
    """Adam's learning rate (Li et al.'s)."""
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    """Weight of the feature term (relative error, so 1.0 means as much as the pixel error in
    its own units: Li et al. weigh their raw feature loss by 1)."""
    checkpoint_every: int = 200
    max_minutes: float | None = None
    workers: int = 2
    seed: int | None = 0
    device: str = "auto"
    precision: str = "auto"
    max_skipped: int = 5
    """A step whose gradient is not finite is skipped; after this many in a row training stops."""

    def __post_init__(self) -> None:
        for name in ("size", "batch_size", "steps", "checkpoint_every", "max_skipped"):
            positive_int(name, getattr(self, name))
        if not self.levels or any(level not in LEVELS for level in self.levels) \
                or len(set(self.levels)) != len(self.levels):
            raise InputError(f"levels must be distinct names from {', '.join(LEVELS)}; got {self.levels!r}",
                             fields=("levels",))
        if self.size < 32 or self.size % 16:
            raise InputError(f"size must be a multiple of 16, at least 32 (relu5_1 is 1/16 of it); got {self.size}",
                             fields=("size",))
        for name in ("width", "lr", "pixel_weight", "feature_weight"):
            positive(name, getattr(self, name))
        if self.max_minutes is not None:
            positive("max_minutes", self.max_minutes)
        choice("precision", self.precision, PRECISIONS)

    def flat(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class _Run(Task):
    """The decoders as the shared training loop's task (:mod:`impasto.training`)."""

    kind: ClassVar[str] = "decoders"
    what: ClassVar[str] = "decoders"
    cfg: DecoderTrainingConfig
    ranks: Ranks
    out: Path
    ckpt: Path
    decoders: DecoderSet
    optimizer: torch.optim.Optimizer
    objectives: dict[str, Objective]
    encoder: Any
    batches: Any
    device: torch.device
    data: dict[str, Any] = field(default_factory=dict)
    """The model card's data (:func:`impasto.training.data_card`)."""
    ddp: Any = None
    state: LoopState = field(default_factory=LoopState)

    def __post_init__(self) -> None:
        self.net = self.decoders

    def next_batch(self) -> Tensor:
        return next(self.batches).to(self.device, non_blocking=True)

    def forward_backward(self, batch: Tensor) -> tuple[list[str], Tensor]:
        return forward_backward(self, batch)

    def settings(self) -> LoopSettings:
        cfg = self.cfg
        return LoopSettings(cfg.steps, cfg.checkpoint_every, cfg.max_minutes, cfg.max_skipped)


def train_decoders(data: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   config: DecoderTrainingConfig | None = None, resume: bool = False, force: bool = False,
                   callback: Callable[[TrainProgress], Any] | None = None,
                   cancel: CancelToken | None = None, init: str | os.PathLike | None = None,
                   data_terms: str | None = None) -> DecoderSet:
    """Train the decoders of ``config.levels`` on crops of the photos under ``data``; write them to
    ``output`` (a :class:`DecoderSet` file) at the end, atomically. ``resume``: go on from
    ``OUTPUT.ckpt`` (refused if its settings differ, naming them). ``init``: start from a decoder
    file's weights (its levels and width must be this run's) with a fresh optimizer: more training
    for decoders whose checkpoint is gone (checkpoints hold the optimizer's state, three times the
    weights, and are not kept in the repository). ``data_terms``: the licence or terms the photos
    were used under, for the model card."""
    cfg = config or DecoderTrainingConfig()
    if init is not None and resume:
        raise InputError("give init (weights from a decoder file) or resume (from the checkpoint), not both",
                         fields=("init", "resume"))
    run = _setup(data, Path(output), cfg, resume, force, data_terms)
    if init is not None:
        _init_weights(run, init)
    try:
        loop.run(run, run.state, run.settings(), ranks=run.ranks, checkpoint=lambda: _save_checkpoint(run),
                 callback=callback, cancel=cancel)
    except KeyboardInterrupt as stop:
        if run.ranks.main:
            _save_checkpoint(run)
        raise StylizeInterrupted(None, run.state.step, cancelled=getattr(stop, "cancelled", False)) from None
    result = run.decoders
    result.training_record = {**result.training_record, **cfg.flat(),
                              **card(run.state, device=run.device, ranks=run.ranks, data=run.data)}
    result.eval()
    if run.ranks.main:
        check_finite(run.decoders, "decoders")
        result.save(run.out)
        if run.state.step < cfg.steps:  # stopped by max_minutes: keep what resume needs
            _save_checkpoint(run)
        elif run.ckpt.exists():
            run.ckpt.unlink()
    leave(run.ranks)
    return result


def _setup(data: Sequence[str | os.PathLike], out: Path, cfg: DecoderTrainingConfig, resume: bool,
           force: bool, data_terms: str | None = None) -> _Run:
    ranks = Ranks.from_env()
    if out.exists() and not (force or resume):
        raise InputError(f"decoder file {str(out)!r} exists; pass force to overwrite it", fields=("force",))
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    photos = Photos(data, cfg.size, min_scale=0.5)
    for path, why in photos.skipped:
        warnings.warn(f"skipped unreadable image {str(path)!r} ({why})", stacklevel=3)
    device = join(ranks, resolve_device(cfg.device), cfg.batch_size)
    seed(cfg.seed, ranks)
    decoders = DecoderSet({level: Decoder(level, cfg.width) for level in cfg.levels}, cfg.width).to(device)
    optimizer = torch.optim.Adam(decoders.parameters(), lr=cfg.lr)
    dtype = autocast_dtype(cfg.precision, device)
    encoder = build_extractor(tuple(cfg.levels), device=device)
    objectives = {level: Objective(encoder, {"pixel": PixelTerm(), "feature": BatchContentTerm([level])},
                                   {"pixel": cfg.pixel_weight, "feature": cfg.feature_weight}, autocast_dtype=dtype)
                  for level in cfg.levels}
    run = _Run(cfg, ranks, out, checkpoint_path(out), decoders, optimizer, objectives, encoder,
               endless(photos, cfg.batch_size // ranks.world, cfg.workers, cfg.seed, ranks,
                       pin_memory=device.type == "cuda"), device, data_card(data, photos.files, data_terms))
    if resume:
        loop_resume(run.ckpt, kind=run.kind, state=run.state, config=cfg.flat(), net=decoders, optimizer=optimizer,
                    what="train new decoders")
    if ranks.world > 1:
        run.ddp = torch.nn.parallel.DistributedDataParallel(
            decoders, device_ids=[device.index] if device.type == "cuda" else None)
    return run


def forward_backward(run: _Run, batch: Tensor) -> tuple[list[str], Tensor]:
    """Every level's decoder on the photos' features, the objective and its gradients, with no host
    sync: (names, values), values holding each level's terms and total, the sum, and last 1.0 if
    every gradient is finite, all on the batch's device."""
    decoders = run.ddp or run.decoders
    decoders.train()
    with torch.no_grad():
        with autocast(batch.device, run.objectives[run.cfg.levels[0]].autocast_dtype):
            feats = run.encoder(batch, run.cfg.levels)
        feats = {k: v.float() for k, v in feats.items()}
    names: list[str] = []
    values: list[Tensor] = []
    total = batch.new_zeros(())
    with autocast(batch.device, run.objectives[run.cfg.levels[0]].autocast_dtype):
        outs = decoders(feats)
    for level in run.cfg.levels:
        loss, parts = run.objectives[level](outs[level].float(), BatchContext(content=feats, photos=batch))
        total = total + loss
        for k, v in parts.items():
            names.append(f"{level}.{k}")
            values.append(v.float())
    run.optimizer.zero_grad(set_to_none=True)
    total.backward()
    finite = all_finite(p.grad for p in run.decoders.parameters())
    return [*names, "total"], torch.stack([*values, total.detach().float(), finite.float()])


def _init_weights(run: _Run, init: str | os.PathLike) -> None:
    start = load_decoders(init)
    if start.levels != tuple(run.cfg.levels) or start.width != run.cfg.width:
        raise InputError(f"decoder file {str(init)!r} has levels {', '.join(start.levels)} at width {start.width:g}; "
                         f"this run {', '.join(run.cfg.levels)} at {run.cfg.width:g}", fields=("init",))
    run.decoders.decoders.load_state_dict(start.decoders.state_dict())
    run.decoders.training_record = {"init": Path(str(init)).name, "legs": earlier_legs(start.training_record)}


def earlier_legs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The training legs a decoder file was made by, oldest first: its own earlier ones, then its
    last (a model card keeps its whole history, however many times it was trained on with ``--init``)."""
    own = {k: v for k, v in record.items() if k not in ("legs", "init", "init_training")}
    legs = [dict(leg) for leg in record.get("legs", [])]
    if "init_training" in record:  # files written before legs were kept: one earlier leg, flat
        legs.append(dict(record["init_training"]))
    return [*legs, own] if own else legs


def _save_checkpoint(run: _Run) -> None:
    save_checkpoint(run.ckpt, kind=run.kind, state=run.state, config=run.cfg.flat(), net=run.decoders,
                    optimizer=run.optimizer)
