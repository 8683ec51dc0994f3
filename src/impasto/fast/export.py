"""ONNX export of a trained model, and inference through onnxruntime.

The graph's input ``image`` is (1, 3, H, W) float32 RGB in [0, 1] with dynamic H and W; a model
with several styles has a second input ``style_weights`` (n_styles,) float32, the mix of styles
(normalized inside the graph, so any non-negative weights work); the output ``stylized`` is
(1, 3, H, W) in [0, 1]. Instance normalization exports as ONNX's own InstanceNormalization.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..io.atomic import atomic_path

if TYPE_CHECKING:  # the model imports this module (for use_onnx), never the other way at run time
    from .model import StyleModel

OPSET = 17


class _Graph(nn.Module):
    """The network with the signature of the ONNX file."""

    def __init__(self, model: StyleModel, fixed: Tensor | None) -> None:
        super().__init__()
        self.net = model.net
        self.fixed = fixed  # the style vector of a one-style model

    def forward(self, image: Tensor, style_weights: Tensor | None = None) -> Tensor:
        if style_weights is None:
            assert self.fixed is not None
            style_weights = self.fixed
        return self.net(image, (style_weights / style_weights.sum().clamp_min(1e-8))[None])


def export_onnx(model: StyleModel, path: str | os.PathLike) -> None:
    """Write ``model`` as an ONNX file (atomically)."""
    from ..runtime import require

    require("onnx", "fast")
    device = model.device  # read before the export moves the network to the CPU
    net = model.net.float().eval().cpu()
    multi = len(model.styles) > 1
    graph = _Graph(model, None if multi else torch.ones(1))
    example: tuple[Any, ...] = (torch.rand(1, 3, 64, 64),) + ((torch.full((len(model.styles),), 1.0),) if multi else ())
    names = ["image"] + (["style_weights"] if multi else [])
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter warns about its own deprecation and about tracing the size
        # arithmetic, which is exact here (tested at several sizes against PyTorch)
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, tmp, input_names=names, output_names=["stylized"],
                          dynamic_axes={"image": {2: "height", 3: "width"}, "stylized": {2: "height", 3: "width"}},
                          opset_version=OPSET, dynamo=False)
        _stamp(tmp, model)
    net.to(device)


def _stamp(path: str, model: StyleModel) -> None:
    """Record the style names in the file's metadata (``styles``: comma-separated)."""
    from ..runtime import require

    onnx = require("onnx", "fast")
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "styles", ",".join(model.styles)
    onnx.save(proto, path)


class OnnxModel:
    """An exported model run by onnxruntime: ``run(image, weights)`` as :meth:`StyleModel.run`."""

    def __init__(self, path: str | os.PathLike, styles: list[str], threads: int | None = None) -> None:
        from ..runtime import require

        ort = require("onnxruntime", "fast")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.styles = styles
        self.multi = len(self.session.get_inputs()) > 1

    def run(self, image: Tensor, weights: Tensor) -> Tensor:
        feeds = {"image": image.float().cpu().numpy()}
        if self.multi:
            feeds["style_weights"] = weights.float().cpu().numpy()
        return torch.from_numpy(self.session.run(None, feeds)[0])
