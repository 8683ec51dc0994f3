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
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import LossConfig, choice, non_negative, positive, positive_int
from ..errors import InputError, NonFiniteLossError, StylizeInterrupted
from ..io.atomic import atomic_path
from ..io.image import ImageLike, load_image, save_image, to_pil
from ..losses.objective import (
    BatchContentTerm,
    BatchContext,
    BatchStyleTerm,
    Objective,
    Term,
    TVTerm,
    style_targets,
)
from ..nets.transformer import TransformerNet
from ..nets.vgg import build_extractor
from ..ops.geometry import fit_long_edge, resize, spatial_size
from ..progress import CancelToken
from ..runtime import autocast_dtype
from .data import Photos, endless
from .model import StyleModel, load_model

TRAIN_STYLE_LOSSES = ("gram", "meancov")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (pure data; ``impasto train --help`` documents each)."""

    size: int = 256
    """Side of the square content crops."""
    batch_size: int = 8
    steps: int = 4000
    lr: float = 1e-3
    width: float = 0.25
    """Channel multiplier of the network (1.0 = Johnson's 32/64/128 channels)."""
    blocks: int = 5
    """Residual blocks."""
    content_weight: float = 1.0
    style_weight: float = 15.0
    tv_weight: float = 1.0
    style_loss: str = "gram"
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
    device: str = "auto"
    precision: str = "auto"
    """'auto': bfloat16 autocast on CUDA GPUs and on CPUs with bfloat16 units, float32 elsewhere; 'fp32'; 'bf16'."""

    def __post_init__(self) -> None:
        for name in ("size", "batch_size", "steps", "blocks", "style_size", "checkpoint_every", "sample_every"):
            positive_int(name, getattr(self, name))
        if not 32 <= self.size <= 1024:
            raise InputError(f"size must be from 32 to 1024 px; got {self.size}", fields=("size",))
        if self.batch_size > 256:
            raise InputError(f"batch_size must be from 1 to 256; got {self.batch_size}", fields=("batch_size",))
        positive("lr", self.lr)
        positive("width", self.width)
        for name in ("content_weight", "style_weight", "tv_weight"):
            non_negative(name, getattr(self, name))
        choice("style_loss", self.style_loss, TRAIN_STYLE_LOSSES)
        if not 0 < self.min_scale <= 1:
            raise InputError(f"min_scale must be in (0, 1]; got {self.min_scale}", fields=("min_scale",))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise InputError(f"workers must be an integer >= 0; got {self.workers!r}", fields=("workers",))
        choice("precision", self.precision, ("auto", "fp32", "bf16"))
        if self.max_minutes is not None:
            positive("max_minutes", self.max_minutes)

    def loss(self) -> LossConfig:
        return LossConfig(content_weight=self.content_weight, style_weight=self.style_weight,
                          tv_weight=self.tv_weight, style_loss=self.style_loss)


@dataclass(frozen=True)
class TrainProgress:
    """One event per step, passed to ``callback``."""

    step: int
    steps: int
    losses: dict[str, float]
    elapsed: float
    images_per_second: float


@dataclass
class _State:
    net: TransformerNet
    optimizer: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def style_name(style: ImageLike) -> str:
    """A style's name: its file stem (``starry_night``)."""
    if isinstance(style, (str, os.PathLike)):
        return Path(style).stem
    raise InputError("style images for training must be files (their stems name the styles)")


def checkpoint_path(output: str | os.PathLike) -> Path:
    return Path(str(output) + ".ckpt")


def sample_path(output: str | os.PathLike) -> Path:
    path = Path(output)
    return path.with_name(path.stem + ".sample.png")


def _device(name: str) -> torch.device:
    from ..runtime import resolve_device

    return resolve_device(name)


def build_objective(extractor: Any, styles: Sequence[Tensor], loss: LossConfig,
                    autocast: torch.dtype | None) -> Objective:
    """The training objective: content against each crop's photo, each crop's own style (the
    styles' targets and auto layer weights computed once, stacked), TV; named terms as in the
    optimization (:mod:`impasto.losses.objective`)."""
    targets = [style_targets(extractor, [[style]], loss) for style in styles]
    terms: dict[str, Term] = {"content": BatchContentTerm(loss.content_layers, loss.normalization),
                              "style": BatchStyleTerm(targets[0].kind, targets), "tv": TVTerm()}
    weights = {"content": loss.content_weight, "style": loss.effective_style_weight, "tv": loss.tv_weight}
    return Objective(extractor, terms, weights, autocast_dtype=autocast)


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
) -> StyleModel:
    """Train a network for ``styles`` on crops of the photos under ``data``; write it to ``output``.

    ``base``: add these styles to a trained model, training only their own normalization
    parameters (Dumoulin et al.'s fine-tuning; every other weight is frozen). ``resume``: go on
    from ``output``'s checkpoint. A checkpoint (``OUTPUT.ckpt``) is written every
    ``checkpoint_every`` steps and when the run is interrupted or cancelled; a sample image
    (``OUTPUT.sample.png``: ``sample`` in each style) every ``sample_every`` steps. The model file
    is written atomically at the end; an existing one is refused unless ``force`` (or ``resume``).
    """
    cfg = config or TrainConfig()
    started = time.perf_counter()
    out = Path(output)
    if out.exists() and not (force or resume):
        raise InputError(f"model file {str(out)!r} exists; pass force to overwrite it", fields=("force",))
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(out.parent)!r}")
    names = [style_name(s) for s in styles]
    if len(set(names)) != len(names):
        raise InputError(f"two styles have the same name: {', '.join(names)}")
    style_images = [load_image(s) for s in styles]
    photos = Photos(data, cfg.size, min_scale=cfg.min_scale)
    for path, why in photos.skipped:
        warnings.warn(f"skipped unreadable image {str(path)!r} ({why})", stacklevel=2)
    device = _device(cfg.device)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
    model, trainable, first_new = _network(names, base, cfg, device)
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    state = _State(model.net, optimizer)
    ckpt = checkpoint_path(out)
    if resume:
        _load_checkpoint(ckpt, state, model.styles, cfg)
    loss_cfg = cfg.loss()
    extractor = build_extractor(loss_cfg.layers, device=device)
    autocast = autocast_dtype(cfg.precision, device)
    with torch.no_grad():
        scaled = [resize(s.flat_rgb(), fit_long_edge(s.size, cfg.style_size)).to(device) for s in style_images]
        objective = build_objective(extractor, scaled, loss_cfg, autocast)
    sample_image = _sample_input(sample, photos)
    batches = endless(photos, cfg.batch_size, cfg.workers, cfg.seed)
    model.training = {**dataclasses.asdict(cfg), "data_images": len(photos), "device": str(device),
                      **({"base": str(base)} if base else {})}
    n_new = len(names)
    try:
        deadline = math.inf if cfg.max_minutes is None else time.perf_counter() + 60 * cfg.max_minutes
        while state.step < cfg.steps and time.perf_counter() < deadline:
            if cancel is not None and cancel.cancelled:
                raise StylizeInterrupted(None, state.step, cancelled=True)
            t0 = time.perf_counter()
            batch = next(batches).to(device, non_blocking=True)
            which = torch.randint(first_new, first_new + n_new, (batch.shape[0],))
            losses = _step(state, objective, batch, which, first_new)
            if not math.isfinite(losses["total"]):
                raise NonFiniteLossError(f"training diverged at step {state.step + 1} (the loss is not finite); "
                                         "try a lower lr; the last checkpoint is kept")
            state.step += 1
            state.seconds += time.perf_counter() - t0
            if callback is not None:
                callback(TrainProgress(state.step, cfg.steps, losses, time.perf_counter() - started,
                                       batch.shape[0] / max(time.perf_counter() - t0, 1e-9)))
            if state.step % cfg.checkpoint_every == 0:
                _save_checkpoint(ckpt, state, model.styles, cfg)
            if state.step % cfg.sample_every == 0:
                _save_sample(model, sample_image, sample_path(out))
    except KeyboardInterrupt as stop:
        _save_checkpoint(ckpt, state, model.styles, cfg)
        raise StylizeInterrupted(None, state.step, cancelled=getattr(stop, "cancelled", False)) from None
    model.training.update(steps_done=state.step, train_seconds=round(state.seconds, 1))
    _save_sample(model, sample_image, sample_path(out))
    model.net.eval()
    model.save(out)
    if ckpt.exists():
        ckpt.unlink()
    return model


def _network(names: list[str], base: str | os.PathLike | None, cfg: TrainConfig,
             device: torch.device) -> tuple[StyleModel, list[torch.nn.Parameter], int]:
    """(model, trainable parameters, index of the first style being trained)."""
    if base is None:
        net = TransformerNet(len(names), width=cfg.width, blocks=cfg.blocks).to(device)
        return StyleModel(net, list(names)), list(net.parameters()), 0
    old = load_model(base)
    clash = sorted(set(old.styles) & set(names))
    if clash:
        raise InputError(f"model {str(base)!r} already has style(s) {', '.join(clash)}")
    n_old = len(old.styles)
    net = TransformerNet(n_old + len(names), width=old.net.width, blocks=old.net.blocks)
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


def _step(state: _State, objective: Objective, batch: Tensor, which: Tensor, first: int) -> dict[str, float]:
    """One optimizer step on ``batch``; ``which`` is each crop's style (index into the network's
    styles, of which the objective holds those from ``first`` on)."""
    net = state.net
    net.train()
    style_vec = torch.nn.functional.one_hot(which, net.n_styles).float().to(batch.device)
    dtype = objective.autocast_dtype
    with torch.autocast(batch.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = net(batch, style_vec)
    with torch.no_grad():
        content = objective.features(batch, objective.content_layers)
    total, parts = objective(out, BatchContext(style_index=which - first, content=content))
    state.optimizer.zero_grad(set_to_none=True)
    total.backward()
    state.optimizer.step()
    names = list(parts)
    values = torch.stack([*(parts[k] for k in names), total.detach()]).float().tolist()  # one sync
    return dict(zip([*names, "total"], values))


def _sample_input(sample: ImageLike | None, photos: Photos) -> Tensor:
    image = load_image(sample if sample is not None else photos.files[0]).flat_rgb()
    return resize(image, fit_long_edge(spatial_size(image), 256))


@torch.no_grad()
def _save_sample(model: StyleModel, image: Tensor, path: Path) -> None:
    """The sample photo in every style, side by side (the photo first)."""
    model.net.eval()
    n = len(model.styles)
    x = image.to(model.device).expand(n, -1, -1, -1)
    outs = model.net(x, torch.eye(n, device=model.device)).float().cpu()
    row = torch.cat([image, *outs.split(1)], -1)
    save_image(to_pil(row), path)
    model.net.train()


def _save_checkpoint(path: Path, state: _State, styles: list[str], cfg: TrainConfig) -> None:
    data = {"format": "impasto-checkpoint", "version": 1, "step": state.step, "seconds": state.seconds,
            "styles": styles, "config": dataclasses.asdict(cfg), "net": state.net.state_dict(),
            "optimizer": state.optimizer.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def _load_checkpoint(path: Path, state: _State, styles: list[str], cfg: TrainConfig) -> None:
    if not path.exists():
        raise InputError(f"nothing to resume: no checkpoint {str(path)!r}", fields=("resume",))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read checkpoint {str(path)!r} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != "impasto-checkpoint":
        raise InputError(f"not an impasto checkpoint: {str(path)!r}")
    if data["styles"] != styles:
        raise InputError(f"checkpoint {str(path)!r} is for styles {', '.join(data['styles'])}, not {', '.join(styles)}")
    state.net.load_state_dict(data["net"])
    state.optimizer.load_state_dict(data["optimizer"])
    state.step, state.seconds = int(data["step"]), float(data["seconds"])
    if math.isnan(state.seconds):
        state.seconds = 0.0
