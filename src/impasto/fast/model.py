"""Model files and inference: a trained feed-forward network with its style names.

A model file is ``torch.save`` of plain data, loaded with ``torch.load(weights_only=True)`` so no
pickled code ever runs: ``{"format": "impasto-model", "version": 1, "styles": [...],
"architecture": {"width": w, "blocks": b}, "training": {...settings, steps, seconds, device},
"state_dict": {name: tensor}}``. Weights are stored in float16 (the shipped models lose nothing
visible: the largest difference in an output image is below one 8-bit level, tested) and used
in float32.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import PRECISIONS, blend_weights, choice
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.image import MAX_PIXELS, ImageLike, as_output, load_image
from ..nets.transformer import DOWNSAMPLING, UPSAMPLING, TransformerNet
from ..ops import color
from ..ops.geometry import fit_long_edge, resize, spatial_size
from ..ops.tiles import Canvas, aligned, grid
from ..runtime import autocast, autocast_dtype

FORMAT = "impasto-model"
VERSION = 1
SHIPPED = "impasto.fast.models"
# Tiled images are normalized with the statistics of the whole image, computed at this long edge
# at most (no gradients, so this costs a few hundred MB at width 0.25, not what a tile costs).
STATS_SIZE = 2048  # package holding the shipped model files (NAME.pt)


@dataclass
class StyleModel:
    """A trained network and its styles; :meth:`stylize` repaints an image in one pass."""

    net: TransformerNet
    styles: list[str]
    training: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    runtime: Any = None
    """None: PyTorch; or an :class:`impasto.fast.export.OnnxModel` (see :meth:`use_onnx`)."""
    precision: str = "auto"
    """PyTorch runtime: 'auto' (bfloat16 autocast on CPUs with bfloat16 units, see
    :func:`impasto.runtime.autocast_dtype`; float32 on CUDA, see :func:`inference_dtype`), 'fp32'
    or 'bf16'. The output is float32 either way."""

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> StyleModel:
        self.net.to(device)
        return self

    def style_vector(self, style: str | None = None, blend: Mapping[str, float] | Sequence[float] | None = None
                     ) -> Tensor:
        """(n_styles,) mixing weights: one style by name, a blend ({name: weight} or one weight per
        style), or the first style."""
        n = len(self.styles)
        if style is not None and blend is not None:
            raise InputError("give either style or style_blend_weights, not both",
                             fields=("style", "style_blend_weights"))
        if blend is None:
            index = 0 if style is None else self.style_index(style)
            return torch.nn.functional.one_hot(torch.tensor(index), n).float()
        if isinstance(blend, Mapping):
            weights = torch.zeros(n)
            for key, value in blend.items():
                weights[self.style_index(key)] = float(value)
        else:
            if len(blend) != n:
                raise InputError(f"{len(blend)} style blend weights for a model with {n} styles "
                                 f"({', '.join(self.styles)}); give one per style", fields=("style_blend_weights",))
            weights = torch.tensor([float(v) for v in blend])
        blend_weights("style_blend_weights", [float(w) for w in weights])
        return weights / weights.sum()

    def style_index(self, style: str) -> int:
        if style not in self.styles:
            raise InputError(f"unknown style {style!r} in model {self.name or '(file)'}; valid: "
                             f"{', '.join(self.styles)}", fields=("style",))
        return self.styles.index(style)

    def use_onnx(self, folder: str | os.PathLike, threads: int | None = None) -> StyleModel:
        """Run through onnxruntime from now on (the model is exported to ``folder/NAME.onnx`` first)."""
        from .export import OnnxModel, export_onnx

        path = Path(folder) / f"{self.name or 'model'}.onnx"
        export_onnx(self, path)
        self.runtime = OnnxModel(path, self.styles, threads)
        return self

    def forward(self, image: Tensor, weights: Tensor) -> Tensor:
        """One pass: (1, 3, H, W) and a (n_styles,) mix -> (1, 3, H, W)."""
        if self.runtime is not None:
            return self.runtime.run(image, weights)
        device = self.device
        with autocast(device, inference_dtype(self.precision, device)):
            return self.net(image.to(device), weights.to(device)[None])

    @torch.no_grad()
    def run(self, image: Tensor, weights: Tensor, *, tile: int | None = None, overlap: int = 64,
            stats_size: int = STATS_SIZE) -> Tensor:
        """(1, 3, H, W) [0, 1] -> stylized, same size; in overlapping tiles of ``tile`` px if given.

        Tiles are pasted with the feathered, normalized weights of :class:`impasto.ops.tiles.Canvas`.
        """
        x = image.float()
        if not tile or max(x.shape[-2:]) <= tile:
            return self.forward(x, weights).cpu()
        if self.runtime is not None:
            raise InputError(f"the onnx runtime runs whole images only; this one is over {tile} px: "
                             "use the torch runtime or a larger tile", fields=("tile",))
        # Every tile is normalized with the statistics of the whole image (exact up to stats_size
        # px, from a downscaled copy above), so tiles agree in tone; the feathered overlap hides
        # what differs at their borders (the padding).
        thumbnail = resize(x, fit_long_edge(spatial_size(x), min(max(spatial_size(x)), stats_size)))
        thumbnail = thumbnail.to(self.device)
        w = weights.to(self.device)[None]
        canvas = Canvas(x, overlap)
        with self.net.frozen_stats(thumbnail, w):
            for t in aligned(grid(spatial_size(x), tile, overlap), TransformerNet.stride):
                canvas.paste(self.forward(x[..., t.y0:t.y1, t.x0:t.x1], weights).cpu(), t)
        return canvas.image()

    def stylize(self, image: ImageLike, *, style: str | None = None,
                style_blend_weights: Mapping[str, float] | Sequence[float] | None = None,
                size: int | None = None, preserve_color: str | None = None, tile: int | None = None,
                output: str = "pil") -> Any:
        """Repaint ``image`` (path, PIL image or tensor) in one of the model's styles, or a blend.

        ``size`` is the output's long edge (None = the input's). ``preserve_color="luminance"``
        keeps the photo's colors. Images larger than ``tile`` px (default 1024 on CPU, 2048 on
        GPU) run in overlapping feathered tiles, so memory stays bounded at print size.
        ``output``: ``"pil"`` (8-bit), ``"tensor"`` or ``"loaded"`` (see :func:`impasto.stylize`).
        """
        if preserve_color not in (None, "luminance"):  # histogram matching needs a style image
            raise InputError(f"unknown preserve_color {preserve_color!r}; valid: luminance", fields=("preserve_color",))
        weights = self.style_vector(style, style_blend_weights)
        loaded = load_image(image, reduce_to=size if isinstance(size, int) and size > 0 else None)
        x = loaded.flat_rgb()
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise InputError(f"size must be a positive integer; got {size!r}", fields=("size",))
            h, w = fit_long_edge(loaded.size, size)
            if h * w > MAX_PIXELS:  # checked before the resize asks the allocator for it
                raise InputError(f"size {size} makes a {w}x{h} px image, over the limit of {MAX_PIXELS / 1e6:.0f} "
                                 "Mpx; give a smaller size", fields=("size",))
            x = resize(x, (h, w))
        if min(x.shape[-2:]) < MIN_SIDE:
            raise InputError(f"image too small: {x.shape[-1]}x{x.shape[-2]} px; a fast model needs at least {MIN_SIDE} "
                             "px on the short side (raise size)", fields=("size",))
        if tile is None:
            tile = 2048 if self.device.type == "cuda" else 1024
        out = self.run(x, weights, tile=tile).float().cpu().clamp(0, 1)
        out = color.restore(out, x, preserve_color)
        return as_output(out, loaded.alpha, output, loaded.bit_depth)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically (weights in float16)."""
        data = {
            "format": FORMAT, "version": VERSION, "styles": list(self.styles),
            "architecture": {"width": self.net.width, "blocks": self.net.blocks, "upsample": self.net.upsample,
                             "downsample": self.net.downsample},
            "training": dict(self.training),
            "state_dict": {k: v.detach().cpu().half() for k, v in self.net.state_dict().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(data, tmp)


MIN_SIDE = 16
"""The smallest short side a fast model paints (its first 9x9 convolution's reflection padding and
its stride-4 encoder need a few pixels)."""


def shipped_models() -> dict[str, Path]:
    """Name -> file of every model shipped with impasto."""
    folder = resources.files(SHIPPED)
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".pt")}


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """The checked contents of a model file; :class:`InputError` for anything that is not one."""
    name = repr(str(path))
    if not os.path.isfile(path):
        raise InputError(f"no such model file: {name}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickled code: all refused alike
        raise InputError(f"not an impasto model file (or truncated): {name} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not an impasto model file: {name}")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputError(f"model file {name} has format version {version}, newer than this impasto reads "
                         f"({VERSION}); upgrade impasto")
    styles, arch, state = data.get("styles"), data.get("architecture"), data.get("state_dict")
    if not (isinstance(styles, list) and styles and all(isinstance(s, str) for s in styles)
            and isinstance(arch, dict) and isinstance(state, dict)):
        raise InputError(f"model file {name} is incomplete (styles, architecture or weights missing)")
    return data


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a fast model's pass. As :func:`impasto.runtime.autocast_dtype`, except
    that 'auto' is float32 on CUDA: these networks are narrow (8 to 64 channels), so a GPU pass is
    bound by memory and launches, and autocast's casts only add to it. On an H200 the shipped model
    took 8.6 ms at 512 px in bfloat16 against 6.3 ms in float32, 11.4 against 9.6 ms at 1024 px,
    and the same at 2048 px (``benchmarks/gpu.py``, ``benchmarks/results/gpu.md``)."""
    if precision == "auto" and device.type == "cuda":
        return None
    return autocast_dtype(precision, device)


def load_model(model: str | os.PathLike, *, device: str | torch.device = "cpu", precision: str = "auto") -> StyleModel:
    """A shipped model by name (see :func:`shipped_models`) or a model file, ready for inference
    (``precision``: see :attr:`StyleModel.precision`)."""
    choice("precision", precision, PRECISIONS)
    shipped = shipped_models()
    if isinstance(model, str) and model in shipped:
        path, name = shipped[model], model
    elif os.path.exists(model):
        path, name = Path(model), Path(model).stem
    else:
        raise InputError(f"unknown model {str(model)!r}: not a shipped model nor a file; shipped: "
                         f"{', '.join(sorted(shipped)) or '(none)'}", fields=("model",))
    data = read_model_file(path)
    arch = data["architecture"]
    upsample, downsample = arch.get("upsample", "nearest"), arch.get("downsample", "stride")
    if upsample not in UPSAMPLING or downsample not in DOWNSAMPLING:
        raise InputError(f"model file {str(path)!r} has an unknown resampling ({upsample!r}, {downsample!r}); "
                         "upgrade impasto")
    net = TransformerNet(len(data["styles"]), width=float(arch.get("width", 1.0)), blocks=int(arch.get("blocks", 5)),
                         upsample=upsample, downsample=downsample)
    try:
        net.load_state_dict({k: v.float() for k, v in data["state_dict"].items()})
    except (RuntimeError, AttributeError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"model file {str(path)!r} does not match its architecture: {first}") from None
    return StyleModel(net.eval().requires_grad_(False), list(data["styles"]), dict(data.get("training", {})),
                      name, precision=precision).to(device)
