"""The optimization loop: one optimizer step per iteration, a callback after each.

Optimizers work on the image in [0, 1] RGB:

* ``lbfgs``: torch's L-BFGS, one function evaluation per iteration, no line search (as
  neural-style); no clamping during the run, since clamping would corrupt its curvature pairs.
* ``adam``: Adam, image clamped to [0, 1] after each step.
* ``gd``: plain gradient descent whose step is the gradient divided by its standard deviation,
  so ``lr`` is the typical per-pixel change; clamped after each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .errors import NonFiniteLossError, StylizeInterrupted

Objective = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]
StepCallback = Callable[[int, dict[str, float], Tensor], None]

LBFGS_HISTORY = 50  # 2 * 50 image-sized vectors; neural-style's 100 doubles memory for no visible gain


class NormalizedGD(torch.optim.Optimizer):
    """x <- x - lr * g / std(g)."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(p.grad / p.grad.std().clamp_min(1e-12), alpha=group["lr"])
        return loss


def make_optimizer(name: str, params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (lbfgs, adam, gd) over ``params``."""
    if name == "lbfgs":
        return torch.optim.LBFGS(
            params, lr=lr, max_iter=1, history_size=LBFGS_HISTORY,
            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn=None,
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "gd":
        return NormalizedGD(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; valid: lbfgs, adam, gd")


def optimize(
    image: Tensor,
    objective: Objective,
    *,
    optimizer: str = "lbfgs",
    iterations: int,
    lr: float,
    callback: StepCallback | None = None,
    first_step: int = 0,
    resume: dict | None = None,
    ema_decay: float | None = None,
) -> tuple[Tensor, dict]:
    """Minimize ``objective`` over the pixels of ``image``.

    Returns the optimized image and the optimizer state to pass as ``resume`` to the next scale.
    ``callback(step, losses, image)`` runs after every iteration, with ``step`` counted from
    ``first_step + 1``. Raises :class:`NonFiniteLossError` if the loss becomes NaN or infinite,
    and :class:`StylizeInterrupted` (holding the image so far) on Ctrl-C.

    With ``ema_decay``, the result is an exponential moving average of the iterates instead of
    the last one, which smooths the small oscillations of the last steps (a cleaner image).
    """
    x = image.detach().clone().requires_grad_(True)
    average = x.detach().clone() if ema_decay else None
    opt = make_optimizer(optimizer, [x], lr)
    if resume:
        carried = carry_state(optimizer, resume, tuple(x.shape[-2:]))
        if carried:
            opt.state[x] = carried
    clamp = optimizer != "lbfgs"
    parts: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        total, terms = objective(x)
        total.backward()
        parts.clear()
        parts.update(terms, total=total.detach())
        return total

    step = first_step
    try:
        for _ in range(iterations):
            opt.step(closure)
            if clamp:
                with torch.no_grad():
                    x.clamp_(0, 1)
            if average is not None:
                average.lerp_(x.detach(), 1.0 - ema_decay)  # type: ignore[operator]
            step += 1
            losses = {k: float(v) for k, v in parts.items()}  # one host sync per iteration
            if not math.isfinite(losses["total"]):
                raise NonFiniteLossError(_nonfinite_message(step, losses))
            if callback is not None:
                callback(step, losses, x.detach())
    except KeyboardInterrupt:
        raise StylizeInterrupted((average if average is not None else x.detach()).clone(), step) from None
    result = average if average is not None else x.detach()
    if not torch.isfinite(result).all():
        raise NonFiniteLossError(_nonfinite_message(step, {"image": float("nan")}))
    return result, dict(opt.state[x])


def carry_state(optimizer: str, state: dict, size: tuple[int, int]) -> dict:
    """Optimizer state from a coarser scale, resized to ``size``; {} when nothing carries.

    Adam's moment estimates are per-pixel fields and resize well (as in crowsonkb's
    style-transfer-pytorch). L-BFGS's history pairs are curvature information of the coarse
    problem and do not transfer, so L-BFGS restarts at each scale (as every peer does).
    """
    if optimizer != "adam" or "exp_avg" not in state:
        return {}
    resize = torch.nn.functional.interpolate
    return {
        "step": state["step"],
        "exp_avg": resize(state["exp_avg"], size=size, mode="bicubic", align_corners=False),
        "exp_avg_sq": resize(state["exp_avg_sq"], size=size, mode="bilinear", align_corners=False).clamp_min(0),
    }


def _nonfinite_message(step: int, losses: dict[str, float]) -> str:
    bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
    return (
        f"optimization diverged at step {step} ({bad}); nothing was written. "
        "Try a lower --style-weight or --learning-rate, or --optimizer lbfgs"
    )
