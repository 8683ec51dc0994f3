"""The universal method's networks as ONNX, for apps that run them with onnxruntime.

:func:`export_onnx` writes, for each level, the encoder (RGB in [0, 1] to VGG19's features at that
level, the Caffe preprocessing inside) and the decoder (features back to RGB), with dynamic height
and width, and a ``universal.json`` naming them. The transforms (whitening and colouring, AdaIN)
are a few small matrix operations on the features and stay in PyTorch or NumPy around the
networks: :meth:`impasto.universal.stylize.Universal.use_onnx` runs exactly that, and the tests
check it against the PyTorch run.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..io.atomic import atomic_path, atomic_write
from .decoder import LEVELS

OPSET = 17
INDEX = "universal.json"


class _Encoder(nn.Module):
    def __init__(self, extractor: nn.Module, level: str) -> None:
        super().__init__()
        self.extractor, self.level = extractor, level

    def forward(self, image: Tensor) -> Tensor:
        return self.extractor(image, (self.level,))[self.level]


def export_onnx(model: Any, folder: str | os.PathLike) -> Path:
    """Write ``model``'s (a :class:`~impasto.universal.stylize.Universal`) encoders and decoders, one
    ONNX file each per level, and ``universal.json``, into ``folder`` (created if missing; each file
    written atomically). Returns the index file's path."""
    from ..runtime import require

    require("onnx", "fast")
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output must be a folder; {str(out)!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"format": "impasto-universal-onnx", "version": 1, "width": model.decoders.width,
                             "levels": {}}
    encoder = model.encoder.float().eval().cpu()
    example = torch.rand(1, 3, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's own deprecation and size-tracing notes
        for level in model.decoders.levels:
            names = {"encoder": f"encoder_{level}.onnx", "decoder": f"decoder_{level}.onnx"}
            enc = _Encoder(encoder, level)
            features = enc(example)
            _export(enc, example, out / names["encoder"], "image", "features")
            dec = model.decoders.decoders[level].float().eval().cpu()
            _export(dec, features, out / names["decoder"], "features", "image")
            index["levels"][level] = names
    path = out / INDEX
    with atomic_write(path) as fh:
        fh.write(json.dumps(index, indent=1).encode())
    model.decoders.to(model.device)
    model.encoder.to(model.device)
    return path


def _export(module: nn.Module, example: Tensor, path: Path, name_in: str, name_out: str) -> None:
    axes = {name_in: {2: "height", 3: "width"}, name_out: {2: "height", 3: "width"}}
    with atomic_path(path) as tmp:
        torch.onnx.export(module, (example,), tmp, input_names=[name_in], output_names=[name_out],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


class OnnxNetworks:
    """An exported folder run by onnxruntime: ``encode(image, level)`` and ``decode(level, features)``
    as the PyTorch networks do (float32 tensors in and out, on the CPU)."""

    def __init__(self, folder: str | os.PathLike, threads: int | None = None) -> None:
        from ..runtime import require

        ort = require("onnxruntime", "fast")
        index_path = Path(folder) / INDEX
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            raise InputError(f"not an exported universal model folder (no readable {INDEX}): {str(folder)!r}") from None
        if index.get("format") != "impasto-universal-onnx" or not isinstance(index.get("levels"), dict):
            raise InputError(f"not an exported universal model folder: {str(folder)!r}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.levels = tuple(lv for lv in LEVELS if lv in index["levels"])
        self.sessions = {(level, part): ort.InferenceSession(str(Path(folder) / name), options,
                                                             providers=["CPUExecutionProvider"])
                         for level, names in index["levels"].items() for part, name in names.items()}

    def encode(self, image: Tensor, level: str) -> Tensor:
        got = self.sessions[(level, "encoder")].run(None, {"image": image.float().cpu().numpy()})[0]
        return torch.from_numpy(got)

    def decode(self, level: str, features: Tensor) -> Tensor:
        got = self.sessions[(level, "decoder")].run(None, {"features": features.float().cpu().numpy()})[0]
        return torch.from_numpy(got)
