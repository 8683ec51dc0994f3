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


class SyncFreeLBFGS(torch.optim.Optimizer):
    """L-BFGS with one function evaluation per step and no host synchronization.

    The same algorithm as torch's L-BFGS with ``max_iter=1`` and no line search (first step scaled
    by min(1, 1/|g|_1), then unit steps along the two-loop direction), but every decision that
    torch takes on the host (is the curvature pair usable? is this a descent direction?) is a
    tensor select, so a GPU never waits for the CPU. One difference: a pair with y.s <= 1e-10 is
    stored with weight 0 (ignored) instead of being skipped, so it displaces the oldest pair.
    Used on CUDA; the CPU keeps torch's implementation.
    """

    def __init__(self, params, lr: float = 1.0, history_size: int = LBFGS_HISTORY) -> None:
        super().__init__(params, {"lr": lr, "history_size": history_size})
        if len(self.param_groups[0]["params"]) != 1:
            raise ValueError("SyncFreeLBFGS optimizes a single tensor")

    @torch.no_grad()
    def step(self, closure):  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        group = self.param_groups[0]
        p = group["params"][0]
        g = p.grad.reshape(-1)
        st = self.state[p]
        k = st.get("k", 0)
        if k == 0:
            st.update(S=[], Y=[], rho=[], H=torch.ones((), device=g.device, dtype=g.dtype))
            d = -g
            t = torch.clamp(1.0 / g.abs().sum(), max=1.0) * group["lr"]
        else:
            y = g - st["prev_g"]
            s = st["prev_d"] * st["prev_t"]
            ys = torch.dot(y, s)
            usable = ys > 1e-10
            rho = torch.where(usable, 1.0 / torch.where(usable, ys, torch.ones_like(ys)), torch.zeros_like(ys))
            st["H"] = torch.where(usable, ys / torch.dot(y, y).clamp_min(1e-30), st["H"])
            m, n = group["history_size"], st.get("pairs", 0)
            if n < m:
                st["S"].append(s), st["Y"].append(y), st["rho"].append(rho)
            else:  # a ring buffer: the new pair replaces the oldest
                st["S"][n % m], st["Y"][n % m], st["rho"][n % m] = s, y, rho
            st["pairs"] = n + 1
            newest_first = [(n - j) % m for j in range(min(n + 1, m))]
            q = -g
            alphas = {}
            for i in newest_first:
                alphas[i] = st["rho"][i] * torch.dot(st["S"][i], q)
                q = q - alphas[i] * st["Y"][i]
            d = q * st["H"]
            for i in reversed(newest_first):
                beta = st["rho"][i] * torch.dot(st["Y"][i], d)
                d = d + st["S"][i] * (alphas[i] - beta)
            d = torch.where(torch.dot(g, d) < 0, d, -g)  # never step uphill
            t = torch.full((), float(group["lr"]), device=g.device, dtype=g.dtype)
        p.add_((d * t).view_as(p))
        st.update(prev_g=g.clone(), prev_d=d, prev_t=t, k=k + 1)
        return loss


def make_optimizer(name: str, params: list[Tensor], lr: float, *, sync_free: bool = False) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (lbfgs, adam, gd) over ``params``.

    ``sync_free`` picks :class:`SyncFreeLBFGS` for lbfgs (used on GPUs).
    """
    if name == "lbfgs" and sync_free:
        return SyncFreeLBFGS(params, lr=lr)
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
    sync_free: bool = False,
    sync_every: int = 1,
) -> tuple[Tensor, dict]:
    """Minimize ``objective`` over the pixels of ``image``.

    Returns the optimized image and the optimizer state to pass as ``resume`` to the next scale.
    ``callback(step, losses, image)`` runs after every iteration, with ``step`` counted from
    ``first_step + 1``. Raises :class:`NonFiniteLossError` if the loss becomes NaN or infinite,
    and :class:`StylizeInterrupted` (holding the image so far) on Ctrl-C.

    With ``ema_decay``, the result is an exponential moving average of the iterates instead of
    the last one, which smooths the small oscillations of the last steps (a cleaner image).

    For GPUs: ``sync_free`` uses :class:`SyncFreeLBFGS`, and ``sync_every`` > 1 reads the losses
    back to the host once every that many steps (one transfer for all of them); the callbacks and
    the NaN check then run in batches, each callback seeing the image as it is at the read-back.
    """
    x = image.detach().clone().requires_grad_(True)
    average = x.detach().clone() if ema_decay else None
    opt = make_optimizer(optimizer, [x], lr, sync_free=sync_free)
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
    pending: list[tuple[int, dict[str, Tensor]]] = []

    def flush() -> None:
        if not pending:
            return
        keys = list(pending[0][1])
        rows = torch.stack([torch.stack([terms[k].float() for k in keys]) for _, terms in pending]).tolist()
        for (at, _), row in zip(pending, rows):
            losses = dict(zip(keys, row))
            if not math.isfinite(losses["total"]):
                raise NonFiniteLossError(_nonfinite_message(at, losses))
            if callback is not None:
                callback(at, losses, x.detach())
        pending.clear()

    try:
        for _ in range(iterations):
            opt.step(closure)
            if clamp:
                with torch.no_grad():
                    x.clamp_(0, 1)
            if average is not None:
                average.lerp_(x.detach(), 1.0 - ema_decay)  # type: ignore[operator]
            step += 1
            pending.append((step, dict(parts)))
            if len(pending) >= sync_every:
                flush()  # one host sync per sync_every iterations
        flush()
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
