"""Every tensor of a training step on the batch's device, checked on a CPU.

CI has no GPU, so the device under test is ``meta``: a tensor that stays on the CPU (an index, a
buffer, a weight) meets the meta tensors in some operation, which then fails as it would on CUDA
("Expected all tensors to be on the same device"). The meta device has no values, so the step is
run without reading any back.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from impasto.fast import TrainConfig

from ..conftest import TINY

training = importlib.import_module("impasto.fast.train")  # the module (impasto.fast.train is the function)


def _tensors(module: torch.nn.Module):
    yield from module.parameters()
    yield from module.buffers()


@pytest.mark.parametrize("extra", [{}, {"lattice_weight": 10.0, "jitter": 2}])
def test_a_training_step_keeps_every_tensor_on_the_batch_device(tmp_path, photos, styles, extra, monkeypatch):
    monkeypatch.setattr(training, "_device", lambda name: torch.device("meta"))  # what --device resolves to
    cfg = TrainConfig.from_options(**{**TINY, **extra, "precision": "fp32"})
    run = training._setup(styles, [photos], Path(tmp_path / "m.pt"), cfg, None, False, False, None)
    meta = torch.device("meta")
    assert {t.device for t in _tensors(run.objective)} == {meta}
    assert {t.device for t in _tensors(run.model.net)} == {meta}
    # the loop's own calls (impasto.training.step): the task draws its batch and style index, then steps
    batch = run.next_batch()
    assert batch[0].device == meta and batch[1].device == meta
    names, values = run.forward_backward(batch)
    assert values.device == meta and names[:3] == ["content", "style", "tv"]
    run.state.optimizer.step()
    assert all(p.grad is not None and p.grad.device == meta for p in run.model.net.parameters())
    assert {t.device for s in run.state.optimizer.state.values() for t in s.values() if torch.is_tensor(t)} <= {
        meta, torch.device("cpu")}  # Adam keeps its step counters on the CPU unless capturable


@pytest.mark.parametrize("static", [False, True])  # True: the compact form that CUDA graphs capture
def test_an_optimization_step_keeps_every_tensor_on_the_image_device(static):
    """The optimization's objective (built on the CPU: its auto weights are read there), moved to
    meta, and L-BFGS's steps, first and later, with no tensor left behind."""
    from impasto.losses.config import LossConfig
    from impasto.losses.objective import build_objective, style_targets
    from impasto.nets.vgg import build_extractor
    from impasto.optimize.optimizers import LBFGS, _closure

    loss = LossConfig()
    extractor = build_extractor(loss.layers, device="cpu")
    content, style = torch.rand(1, 3, 48, 40), torch.rand(1, 3, 48, 48)
    targets = style_targets(extractor, [[style]], loss)
    objective = build_objective(extractor, content, targets, loss).to("meta")
    x = torch.rand(1, 3, 48, 40, device="meta").requires_grad_(True)
    opt = LBFGS(x, history_size=2, static=static)
    parts: dict = {}
    closure = _closure(opt, objective, x, parts)
    for _ in range(4):  # past the history's size: the slots wrap
        opt.step(closure)
    assert x.device.type == "meta" and all(v.device.type == "meta" for v in parts.values())
    state = [t for v in opt.state.values() for t in (v if isinstance(v, list) else [v]) if torch.is_tensor(t)]
    assert len(state) >= 6 and all(t.device.type == "meta" for t in state)


@pytest.mark.filterwarnings("ignore::impasto.runtime.SlowPrecisionWarning")  # bf16 asked on a CPU build
def test_a_fast_models_auto_precision_is_float32_on_cuda_and_follows_the_cpu_elsewhere():
    """Measured on an H200: the narrow networks run slower under bfloat16 autocast there."""
    from impasto.fast.model import inference_dtype
    from impasto.runtime import autocast_dtype

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert inference_dtype("auto", cuda) is None and inference_dtype("fp32", cuda) is None
    assert inference_dtype("bf16", cuda) is torch.bfloat16
    assert inference_dtype("auto", cpu) is autocast_dtype("auto", cpu)
