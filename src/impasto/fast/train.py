"""Training feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017 for many styles).

The loss is the optimization method's own: the same Caffe VGG19, content at relu4_2 and style
at relu1_1..relu5_1 as *relative* errors (so the weights are plain ratios; see
:mod:`impasto.losses.basic`), plus TV. Each batch holds random crops of the content photos, each
crop paired with a random style; the style term of each style applies to its own crops.

Departures: Johnson et al. use relu2_2 for content and raw (unnormalized) losses; here content is
the paper's relu4_2 and every term is relative, so that ``style_weight`` means what it means for
``impasto stylize``. Style images are used at ``style_size`` (default 512 px long edge, the size
the optimization uses at its default output size), whatever the crop size, so that brush strokes
come out at the optimization's scale on 512 px images.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..config import choice, non_negative, non_negative_int, options_for, positive, positive_int
from ..errors import InputError, StylizeInterrupted
from ..io.image import ImageLike, load_image, save_image, to_pil
from ..io.photos import Photos, endless
from ..losses.config import LossConfig
from ..losses.objective import (
    BatchContentTerm,
    BatchContext,
    BatchStyleTerm,
    LatticeTerm,
    Objective,
    TeacherTerm,
    Term,
    TVTerm,
    style_targets,
)
from ..losses.style import STYLE_LOSSES
from ..nets.config import NetworkConfig
from ..nets.transformer import DOWNSAMPLING, UPSAMPLING, TransformerNet
from ..nets.vgg import build_extractor
from ..ops.geometry import fit_long_edge, resize, spatial_size
from ..progress import CancelToken, TrainProgress
from ..runtime import Ranks, all_finite, autocast, autocast_dtype, check_finite, join, leave
from ..training import (
    LoopSettings,
    LoopState,
    Task,
    card,
    checkpoint_path,
    data_card,
    read_checkpoint,
    save_checkpoint,
    seed,
)
from ..training import NonFiniteStepWarning as NonFiniteStepWarning  # where the trainers' users found it
from ..training import loop as training_loop
from ..training import resume as resume_from
from .model import StyleModel, load_model

# Where training's loss departs from the optimization's defaults (LossConfig's); see the module docstring.
TRAIN_LOSS_DEFAULTS: dict[str, Any] = {}


@dataclass(frozen=True)
class TrainingConfig:
    """The training method's own settings (``impasto train --help`` documents each)."""

    size: int = 256
    """Side of the square content crops."""
    batch_size: int = 8
    steps: int = 4000
    lr: float = 1e-3
    width: float = 0.25
    """Channel multiplier of the network (1.0 = Johnson's 32/64/128 channels)."""
    blocks: int = 5
    """Residual blocks."""
    style_size: int = 512
    """Long edge of the style images when their targets are computed."""
    min_scale: float = 0.5
    """Smallest crop side, relative to a photo's short side (crops at several scales)."""
    checkpoint_every: int = 500
    sample_every: int = 250
    seed: int | None = 0
    max_minutes: float | None = None
    """Stop after this many minutes of training even if ``steps`` are not done (the model is written)."""
    workers: int = 2
    upsample: str = "nearest"
    """The decoder's upsampling before each convolution: nearest or bilinear (nets.transformer)."""
    downsample: str = "stride"
    """The encoder's downsampling: strided convolutions, or the same after a blur (nets.transformer)."""
    jitter: int = 0
    """Each step, crop the output and its photo together at a random offset of 0..jitter px before
    the loss network (losing jitter px of each side), so that texture cannot lock onto the loss
    network's pooling lattice (a fixed 2-, 4-, 8-pixel grid in its gradients). 0 = off."""
    lattice_weight: float = 0.0
    """Weight of the lattice term (:class:`impasto.losses.objective.LatticeTerm`): the power of a
    pattern repeating on the network's 4-pixel output grid, the fine crosshatch its decoder paints
    (README, "The hatch"). 0 = off."""
    teacher_steps: int = 0
    """The first N steps match a trained network's output (``train(teacher=)``, low-passed:
    :class:`impasto.losses.objective.TeacherTerm`) instead of the loss network's terms, with no
    loss network run; the optimizer starts afresh when the loss network takes over. Distillation:
    a smaller, faster network starts from what a larger one learned in hours. 0 = off."""

    max_skipped: int = 5
    """A step whose gradient is not finite is skipped (counted in the log and the model card);
    after this many in a row training stops, keeping the last good checkpoint."""

    def __post_init__(self) -> None:
        for name in ("size", "batch_size", "steps", "blocks", "style_size", "checkpoint_every", "sample_every",
                     "max_skipped"):
            positive_int(name, getattr(self, name))
        if not 32 <= self.size <= 1024:
            raise InputError(f"size must be from 32 to 1024 px; got {self.size}", fields=("size",))
        if self.batch_size > 256:
            raise InputError(f"batch_size must be from 1 to 256; got {self.batch_size}", fields=("batch_size",))
        positive("lr", self.lr)
        positive("width", self.width)
        if not 0 < self.min_scale <= 1:
            raise InputError(f"min_scale must be in (0, 1]; got {self.min_scale}", fields=("min_scale",))
        non_negative_int("workers", self.workers)
        if self.max_minutes is not None:
            positive("max_minutes", self.max_minutes)
        choice("upsample", self.upsample, UPSAMPLING)
        choice("downsample", self.downsample, DOWNSAMPLING)
        non_negative_int("teacher_steps", self.teacher_steps)
        non_negative("lattice_weight", self.lattice_weight)
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int) or not 0 <= self.jitter <= self.size // 4:
            raise InputError(f"jitter must be an integer from 0 to a quarter of size ({self.size // 4}); "
                             f"got {self.jitter!r}", fields=("jitter",))


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run: the shared network and loss parts, and the training part.

    Build it from flat options with :meth:`from_options` (``size=256, style_weight=30``), routed like
    :class:`impasto.optimize.StylizeConfig`'s; :meth:`flat` gives the flat view back.
    """

    network: NetworkConfig = field(default_factory=lambda: NetworkConfig(device="auto"))
    loss: LossConfig = field(default_factory=lambda: LossConfig(**TRAIN_LOSS_DEFAULTS))
    training: TrainingConfig = field(default_factory=TrainingConfig)

    PARTS = (NetworkConfig, LossConfig, TrainingConfig)

    def __post_init__(self) -> None:
        self.loss.check_network(self.network)
        if not STYLE_LOSSES[self.loss.style_loss].trains:
            valid = ", ".join(n for n, kind in STYLE_LOSSES.items() if kind.trains)
            raise InputError(f"style_loss {self.loss.style_loss!r} cannot train a network; valid: {valid}",
                             fields=("style_loss",))
        if self.network.weights != "caffe":
            raise InputError("training uses the default loss network's weights (caffe)", fields=("weights",))
        # the optimization's style augmentations and blends mean nothing here: refused, not ignored
        ignored = [name for name, value, default in (
            ("style_rotations", self.loss.style_rotations, ()), ("style_scales", self.loss.style_scales, ()),
            ("style_scale", self.loss.style_scale, 1.0), ("style_blend_weights", self.loss.style_blend_weights, None))
            if value != default]
        if ignored:
            raise InputError(f"training does not use {', '.join(ignored)} (each crop takes one style image as it is; "
                             "style_size sets its scale)", fields=tuple(ignored))

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        network, loss, training = options_for(cls.PARTS, {"device": "auto", **TRAIN_LOSS_DEFAULTS, **options})
        return cls(NetworkConfig(**network), LossConfig(**loss), TrainingConfig(**training))

    def replace(self, **options: Any) -> TrainConfig:
        network, loss, training = options_for(self.PARTS, options)
        return TrainConfig(dataclasses.replace(self.network, **network), dataclasses.replace(self.loss, **loss),
                           dataclasses.replace(self.training, **training))

    def flat(self) -> dict[str, Any]:
        return {f.name: getattr(part, f.name)
                for part in (self.network, self.loss, self.training) for f in dataclasses.fields(part)}


@dataclass
class _State:
    net: TransformerNet
    optimizer: torch.optim.Optimizer
    ddp: Any = None
    """The DistributedDataParallel wrapper of ``net`` in a distributed run (forward goes through it)."""
    teacher: TransformerNet | None = None
    """The trained network the first ``teacher_steps`` steps match (distillation)."""


def style_name(style: ImageLike) -> str:
    """A style's name: its file stem (``starry_night``)."""
    if isinstance(style, (str, os.PathLike)):
        return Path(style).stem
    raise InputError("style images for training must be files (their stems name the styles)")


def sample_path(output: str | os.PathLike) -> Path:
    path = Path(output)
    return path.with_name(path.stem + ".sample.png")


def _device(name: str) -> torch.device:
    from ..runtime import resolve_device

    return resolve_device(name)


def build_objective(extractor: Any, styles: Sequence[Tensor], loss: LossConfig,
                    autocast: torch.dtype | None, lattice_weight: float = 0.0) -> Objective:
    """The training objective: content against each crop's photo, each crop's own style (the
    styles' targets and auto layer weights computed once, stacked), TV, and with a
    ``lattice_weight`` the lattice term; named terms as in the optimization
    (:mod:`impasto.losses.objective`)."""
    targets = [style_targets(extractor, [[style]], loss) for style in styles]
    terms: dict[str, Term] = {"content": BatchContentTerm(loss.content_layers, loss.normalization),
                              "style": BatchStyleTerm(targets[0].kind, targets), "tv": TVTerm()}
    weights = {"content": loss.content_weight, "style": loss.effective_style_weight, "tv": loss.tv_weight}
    if lattice_weight:
        terms["lattice"], weights["lattice"] = LatticeTerm(), lattice_weight
    return Objective(extractor, terms, weights, autocast_dtype=autocast)


def distill_objective(extractor: Any, autocast: torch.dtype | None) -> Objective:
    """The objective of the teacher steps: the teacher's low-passed output alone, no loss network."""
    return Objective(extractor, {"teacher": TeacherTerm()}, {"teacher": 1.0}, autocast_dtype=autocast)


def train(
    styles: Sequence[ImageLike],
    data: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    config: TrainConfig | None = None,
    base: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    callback: Callable[[TrainProgress], Any] | None = None,
    cancel: CancelToken | None = None,
    sample: ImageLike | None = None,
    init: str | os.PathLike | None = None,
    teacher: str | os.PathLike | None = None,
    data_terms: str | None = None,
) -> StyleModel:
    """Train a network for ``styles`` on crops of the photos under ``data``; write it to ``output``.

    ``base``: add these styles to a trained model, training only their own normalization
    parameters (Dumoulin et al.'s fine-tuning; every other weight is frozen). ``init``: start every
    weight from a trained model of the same styles (in the same order) and parameter shapes, with a
    fresh optimizer: more training for a model whose checkpoint is gone, at another learning rate,
    or with another resampling (``downsample``/``upsample`` change no weight). ``teacher``: a
    trained model of the same styles (any width and blocks) whose output the first
    ``teacher_steps`` steps match (distillation, see :class:`TrainingConfig`). ``resume``: go on
    from ``output``'s checkpoint (refused if its settings differ, naming them). A checkpoint
    (``OUTPUT.ckpt``) is written every ``checkpoint_every`` steps and when the run is interrupted or
    cancelled; a sample image (``OUTPUT.sample.png``: ``sample`` in each style) every
    ``sample_every`` steps. ``data_terms``: the licence or terms the photos were used under, for
    the model card (which also names their folders, count and a hash of their list). The model
    file is written atomically at the end; an existing one is
    refused unless ``force`` (or ``resume``).

    Under ``torchrun --nproc_per_node N``, the N processes train one model with
    DistributedDataParallel: each takes ``batch_size / N`` crops of its own shard of the photos per
    step, the gradients are averaged, and rank 0 alone writes samples, checkpoints and the model.
    """
    cfg = config or TrainConfig.from_options()
    run = _setup(styles, data, Path(output), cfg, base, resume, force, sample, init, teacher, data_terms)
    tc = cfg.training
    try:
        training_loop.run(run, run.done, LoopSettings(tc.steps, tc.checkpoint_every, tc.max_minutes, tc.max_skipped),
                          ranks=run.ranks, checkpoint=lambda: _save_checkpoint(run), callback=callback, cancel=cancel,
                          started=run.started)
    except KeyboardInterrupt as stop:
        if run.ranks.main:
            _save_checkpoint(run)
        raise StylizeInterrupted(None, run.done.step, cancelled=getattr(stop, "cancelled", False)) from None
    run.model.training.update(card(run.done, device=run.device, ranks=run.ranks, data=run.model.training["data"]))
    run.model.net.eval()
    if run.ranks.main:
        check_finite(run.model.net, "model")
        _save_sample(run.model, run.sample, sample_path(run.out))
        run.model.save(run.out)
        if run.done.step < tc.steps:  # stopped by max_minutes: keep what --resume needs
            _save_checkpoint(run)
        elif run.ckpt.exists():
            run.ckpt.unlink()
    leave(run.ranks)
    return run.model


@dataclass
class _Training(Task):
    """The network as the shared training loop's task (:mod:`impasto.training`), set up once."""

    kind: ClassVar[str] = "fast"
    what: ClassVar[str] = "network"
    cfg: TrainConfig
    ranks: Ranks
    out: Path
    ckpt: Path
    model: StyleModel
    state: _State
    objective: Objective
    distill: Objective | None
    """The teacher steps' objective (None without a teacher)."""
    batches: Any
    sample: Tensor
    first_new: int
    n_new: int
    started: float
    device: torch.device
    done: LoopState = field(default_factory=LoopState)
    teaching: bool = False
    """Whether this step matches the teacher (one of the first ``teacher_steps``)."""

    def __post_init__(self) -> None:
        self.net, self.optimizer = self.state.net, self.state.optimizer

    def before_step(self, step: int) -> None:
        tc = self.cfg.training
        self.teaching = self.distill is not None and step < tc.teacher_steps
        if self.distill is not None and step == tc.teacher_steps:  # the loss network takes over, afresh
            self.optimizer = self.state.optimizer = torch.optim.Adam(self.optimizer.param_groups[0]["params"], lr=tc.lr)

    def next_batch(self) -> tuple[Tensor, Tensor]:
        batch = next(self.batches).to(self.device, non_blocking=True)
        # drawn on the CPU (the same styles whatever the device), then moved with the batch
        which = torch.randint(self.first_new, self.first_new + self.n_new, (batch.shape[0],)).to(self.device)
        return batch, which

    def batch_size(self, batch: Any) -> int:
        return int(batch[0].shape[0])

    def forward_backward(self, batch: Any) -> tuple[list[str], Tensor]:
        objective = self.distill if self.teaching and self.distill is not None else self.objective
        return _forward_backward(self.state, objective, batch[0], batch[1], self.first_new,
                                 jitter=self.cfg.training.jitter, teacher=self.state.teacher if self.teaching else None)

    def diagnose(self, batch: Any) -> list[str]:
        return _nonfinite_gradients(self.state, self.objective, batch[0], batch[1], self.first_new,
                                    self.cfg.training.jitter, self.state.teacher if self.teaching else None)

    def render(self) -> Tensor | None:
        return _sample_row(self.model, self.sample)

    def after_step(self, step: int, main: bool) -> None:
        if main and step % self.cfg.training.sample_every == 0:
            _save_sample(self.model, self.sample, sample_path(self.out))


def _setup(styles: Sequence[ImageLike], data: Sequence[str | os.PathLike], out: Path, cfg: TrainConfig,
           base: str | os.PathLike | None, resume: bool, force: bool, sample: ImageLike | None,
           init: str | os.PathLike | None = None, teacher: str | os.PathLike | None = None,
           data_terms: str | None = None) -> _Training:
    """Check every input, then load the photos, build the network and the objective (no step yet)."""
    started, tc, ranks = time.perf_counter(), cfg.training, Ranks.from_env()
    if out.exists() and not (force or resume):
        raise InputError(f"model file {str(out)!r} exists; pass force to overwrite it", fields=("force",))
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    names = [style_name(s) for s in styles]
    if len(set(names)) != len(names):
        raise InputError(f"two styles have the same name: {', '.join(names)}")
    if init is not None and base is not None:
        raise InputError("give init (every weight from a model) or base (add styles to a model), not both",
                         fields=("init", "base"))
    start = None if init is None else _init_weights(init, names, cfg)
    mentor = _teacher(teacher, names, base, tc)
    style_images = [load_image(s, reduce_to=tc.style_size) for s in styles]
    photos = Photos(data, tc.size, min_scale=tc.min_scale)
    for path, why in photos.skipped:
        warnings.warn(f"skipped unreadable image {str(path)!r} ({why})", stacklevel=3)
    device = join(ranks, _device(cfg.network.device), tc.batch_size)
    seed(tc.seed, ranks)  # the same initial weights on every rank; each rank its own crops
    model, trainable, first_new = _network(names, base, cfg, device)
    if start is not None and not resume:  # a checkpoint, when resumed, has the newer weights
        model.net.load_state_dict(start[0])
    state = _State(model.net, torch.optim.Adam(trainable, lr=tc.lr))
    if mentor is not None:
        state.teacher = mentor.net.to(device).eval().requires_grad_(False)
    ckpt, done = checkpoint_path(out), LoopState()
    if resume:
        _load_checkpoint(ckpt, state, done, model.styles, cfg)
    if ranks.world > 1:
        state.ddp = torch.nn.parallel.DistributedDataParallel(
            model.net, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = autocast_dtype(cfg.network.precision, device)
    # The styles' targets and auto weights are computed once, on the CPU (the weights are read to
    # the host); then the whole objective, loss network included, moves to the run's device.
    extractor = build_extractor(cfg.loss.layers, pooling=cfg.network.pooling, device="cpu")
    with torch.no_grad():
        scaled = [resize(s.flat_rgb(), fit_long_edge(s.size, tc.style_size)) for s in style_images]
        objective = build_objective(extractor, scaled, cfg.loss, autocast, tc.lattice_weight).to(device)
    distill = distill_objective(objective.extractor, autocast) if mentor is not None else None
    batches = endless(photos, tc.batch_size // ranks.world, tc.workers, tc.seed, ranks,
                      pin_memory=device.type == "cuda")
    data_info = data_card(data, photos.files, data_terms)
    model.training = {**cfg.flat(), "data": data_info, "data_images": len(photos), "device": str(device),
                      "processes": ranks.world,
                      **({"base": str(base)} if base else {}),
                      **({"init": Path(str(init)).name, "init_training": start[1]} if start is not None else {}),
                      **({"teacher": Path(str(teacher)).name, "teacher_training": _summary(mentor.training)}
                         if mentor is not None else {})}
    return _Training(cfg, ranks, out, ckpt, model, state, objective, distill, batches,
                     _sample_input(sample, photos), first_new, len(names), started, device, done)


def _teacher(teacher: str | os.PathLike | None, names: list[str], base: str | os.PathLike | None,
             tc: TrainingConfig) -> StyleModel | None:
    """The trained model to distil from (its styles must be this run's, in order), or None."""
    if teacher is None:
        if tc.teacher_steps:
            raise InputError("teacher_steps needs a teacher model to match", fields=("teacher_steps", "teacher"))
        return None
    if not tc.teacher_steps:
        raise InputError("a teacher needs teacher_steps > 0 (how many steps match it)",
                         fields=("teacher_steps", "teacher"))
    if base is not None:
        raise InputError("give teacher or base (add styles to a model), not both", fields=("teacher", "base"))
    model = load_model(teacher, precision="fp32")
    if model.styles != names:
        raise InputError(f"teacher {str(teacher)!r} has the styles {', '.join(model.styles)}; distillation needs the "
                         f"same styles in the same order (got {', '.join(names)})", fields=("teacher",))
    return model


def _summary(training: dict[str, Any]) -> dict[str, Any]:
    """A model card's record of how a model was trained, without nested records."""
    return {k: v for k, v in (training or {}).items() if not isinstance(v, dict)}


def _nonfinite_gradients(state: _State, objective: Objective, batch: Tensor, which: Tensor, first: int,
                         jitter: int, teacher: TransformerNet | None) -> list[str]:
    """The objective's terms whose gradient alone is not finite on ``batch`` (a diagnosis, run only
    after a skipped step: one backward per term)."""
    bad = []
    for name in objective.terms:
        saved = dict(objective.weights)
        objective.weights = {k: (v if k == name else 0.0) for k, v in saved.items()}
        try:
            values = _forward_backward(state, objective, batch, which, first, jitter=jitter, teacher=teacher)[1]
            if not bool(values[-1] > 0):  # the finite-gradient flag
                bad.append(name)
        finally:
            objective.weights = saved
            state.optimizer.zero_grad(set_to_none=True)
    return bad


def _init_weights(init: str | os.PathLike, names: list[str], cfg: TrainConfig) -> tuple[dict, dict]:
    """The state dict of model ``init`` (a shipped name or a file) to start from, and its training
    record; refused unless its styles and parameter shapes are this run's."""
    old = load_model(init, precision="fp32")
    if old.styles != names:
        raise InputError(f"model {str(init)!r} has the styles {', '.join(old.styles)}; init needs the same styles in "
                         f"the same order (got {', '.join(names)})", fields=("init",))
    tc = cfg.training
    if (old.net.width, old.net.blocks) != (tc.width, tc.blocks):
        raise InputError(f"model {str(init)!r} has width {old.net.width:g} and {old.net.blocks} blocks; this run "
                         f"{tc.width:g} and {tc.blocks}: give the same to start from it", fields=("init", "width"))
    return {k: v.detach().float().clone() for k, v in old.net.state_dict().items()}, dict(old.training or {})


def _network(names: list[str], base: str | os.PathLike | None, cfg: TrainConfig,
             device: torch.device) -> tuple[StyleModel, list[torch.nn.Parameter], int]:
    """(model, trainable parameters, index of the first style being trained)."""
    if base is None:
        net = TransformerNet(len(names), width=cfg.training.width, blocks=cfg.training.blocks,
                             upsample=cfg.training.upsample, downsample=cfg.training.downsample).to(device)
        return StyleModel(net, list(names)), list(net.parameters()), 0
    old = load_model(base)
    clash = sorted(set(old.styles) & set(names))
    if clash:
        raise InputError(f"model {str(base)!r} already has style(s) {', '.join(clash)}")
    n_old = len(old.styles)
    net = TransformerNet(n_old + len(names), width=old.net.width, blocks=old.net.blocks, upsample=old.net.upsample,
                         downsample=old.net.downsample)
    state = old.net.state_dict()
    for key, _value in net.state_dict().items():
        if key.endswith((".gamma", ".beta")):  # old rows kept; new styles start from the mean style
            state[key] = torch.cat([state[key], state[key].mean(0, keepdim=True).expand(len(names), -1)])
    net.load_state_dict(state)
    net.to(device).train()
    trainable = []
    for key, p in net.named_parameters():
        if key.endswith((".gamma", ".beta")):
            p.register_hook(lambda g, n=n_old: torch.cat([torch.zeros_like(g[:n]), g[n:]]))
            trainable.append(p)
        else:
            p.requires_grad_(False)
    return StyleModel(net, old.styles + list(names)), trainable, n_old


def _forward_backward(state: _State, objective: Objective, batch: Tensor, which: Tensor, first: int, *,
                      jitter: int = 0, teacher: TransformerNet | None = None) -> tuple[list[str], Tensor]:
    """The objective on the network's output for ``batch`` and its gradients (in the parameters'
    ``.grad``), with no host sync: (names, values) where values holds each named loss, the total,
    and last 1.0 if every gradient is finite, else 0.0, all on the batch's device."""
    net = state.ddp or state.net
    net.train()
    style_vec = torch.nn.functional.one_hot(which, state.net.n_styles).float()
    dtype = objective.autocast_dtype
    with autocast(batch.device, dtype):
        out = net(batch, style_vec)
        with torch.no_grad():
            target = None if teacher is None else teacher(batch, style_vec)
    if jitter:  # the same random window of the output and of its photo
        dy, dx = (int(v) for v in torch.randint(0, jitter + 1, (2,)))
        h, w = batch.shape[-2] - jitter, batch.shape[-1] - jitter
        out, batch = out[..., dy:dy + h, dx:dx + w], batch[..., dy:dy + h, dx:dx + w]
        target = None if target is None else target[..., dy:dy + h, dx:dx + w]
    with torch.no_grad():
        content = objective.features(batch, objective.content_layers)
    total, parts = objective(out, BatchContext(style_index=which - first, content=content, teacher=target))
    state.optimizer.zero_grad(set_to_none=True)
    total.backward()
    finite = all_finite(p.grad for p in state.net.parameters())
    names = [*parts, "total"]
    values = torch.stack([*(parts[k].float() for k in parts), total.detach().float(), finite.float()])
    return names, values


def _sample_input(sample: ImageLike | None, photos: Photos) -> Tensor:
    image = load_image(sample if sample is not None else photos.files[0]).flat_rgb()
    return resize(image, fit_long_edge(spatial_size(image), 256))


@torch.no_grad()
def _sample_row(model: StyleModel, image: Tensor) -> Tensor:
    """The sample photo in every style, side by side (the photo first)."""
    model.net.eval()
    try:
        n = len(model.styles)
        x = image.to(model.device).expand(n, -1, -1, -1)
        outs = model.net(x, torch.eye(n, device=model.device)).float().cpu()
        return torch.cat([image, *outs.split(1)], -1)
    finally:
        model.net.train()


def _save_sample(model: StyleModel, image: Tensor, path: Path) -> None:
    save_image(to_pil(_sample_row(model, image)), path)



def _save_checkpoint(run: _Training) -> None:
    save_checkpoint(run.ckpt, kind=run.kind, state=run.done, config=run.cfg.flat(), net=run.state.net,
                    optimizer=run.state.optimizer, extra={"styles": run.model.styles})


def _load_checkpoint(path: Path, state: _State, done: LoopState, styles: list[str], cfg: TrainConfig) -> None:
    if path.exists():
        saved = read_checkpoint(path, "fast")["extra"].get("styles")
        if saved != styles:
            raise InputError(f"checkpoint {str(path)!r} is for styles {', '.join(saved or [])}, "
                             f"not {', '.join(styles)}")
    resume_from(path, kind="fast", state=done, config=cfg.flat(), net=state.net, optimizer=state.optimizer)
