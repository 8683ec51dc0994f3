"""Optimizers over the pixels of one image, and the optimization loop.

* ``lbfgs``: L-BFGS with one function evaluation per iteration and no line search (as
  neural-style), the same algorithm as torch's ``LBFGS(max_iter=1)`` but for a first step that
  moves the image (:data:`LBFGS_FIRST_MOVE`) no further than the objective allows
  (:data:`LBFGS_POLYAK`), and with no host synchronization (every decision
  is a tensor select); no clamping during the run, since clamping would corrupt its curvature
  pairs.
* ``adam``: Adam (torch's update rule), image clamped to [0, 1] after each step.
* ``gd``: plain gradient descent whose step is the gradient divided by its standard deviation,
  so ``lr`` is the typical per-pixel change; clamped after each step.

These are small classes of their own rather than ``torch.optim`` optimizers: creating the first
``torch.optim.Optimizer`` in a process imports ``torch._dynamo`` (about 1.1 s on a 2-core CPU, more
than everything else a small run does), for features a single-image optimization never uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, Interrupted, NonFiniteLossError
from ..ops.geometry import spatial_size
from ..progress import CancelToken

Objective = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]
StepCallback = Callable[[int, dict[str, float], Tensor], None]
Closure = Callable[[], Tensor]

LBFGS_HISTORY = 50  # 2 * 50 image-sized vectors; neural-style's 100 doubles memory for no visible gain
LBFGS_FIRST_MOVE = 0.01
"""L-BFGS's first step (it has no curvature yet) moves the image by this much, RMS over its pixels,
in [0, 1] units: the size of one :class:`NormalizedGD` step at its default rate. torch's rule,
min(1, 1/|g|_1), moves a 512 px image by about 4e-5 (|g|_1 is in the hundreds there), an
iteration lost at every scale. Near an optimum, though, a move of fixed size along a small, noisy
gradient overshoots: hence :data:`LBFGS_POLYAK` (both measured in
``benchmarks/results/lbfgs_first_step.md``)."""
LBFGS_POLYAK = 1.0
"""...and no longer than this times Polyak's step f / |g|^2, the step along -g whose predicted
decrease (t |g|^2, to first order) is the whole objective f. Every term is >= 0, so a step that
predicts a larger decrease than f overshoots; the bound lets the step shrink with the objective
near an optimum (a resumed run, a video frame started from the last one, ``strength=0``), and far
from one (a fresh start) the RMS move is the shorter and stands. Half of Polyak's step came nearer
torch's rule near an optimum but gave back about half the RMS move's gains
(``benchmarks/experiments/lbfgs_first_step.py``, ``benchmarks/results/lbfgs_first_step.md``)."""
OPTIMIZERS = ("lbfgs", "adam", "gd")
# Step sizes per optimizer, in units of the [0, 1] image (L-BFGS takes full quasi-Newton steps).


class ImageOptimizer:
    """Optimizes one tensor ``x`` (whose ``.grad`` the closure fills); ``state`` can be carried."""

    clamps = True  # clamp the image to [0, 1] after each step
    capturable = False
    """Whether a step can be captured in a CUDA graph (fixed buffers, no Python state that changes)."""
    default_lr: float = 0.01
    bytes_per_pixel: int = 0
    """Its own state per output pixel, for the memory plan."""

    def __init__(self, x: Tensor, lr: float) -> None:
        self.x, self.lr = x, lr
        self.state: dict[str, Any] = {}

    def zero_grad(self) -> None:
        self.x.grad = None

    @torch.no_grad()
    def step(self, closure: Closure) -> Tensor:
        with torch.enable_grad():
            loss = closure()
        assert self.x.grad is not None, "the closure must fill x.grad"
        self.update(self.x.grad, loss.detach())
        return loss

    def update(self, grad: Tensor, loss: Tensor) -> None:
        """One step from the objective's gradient and value at ``x``."""
        raise NotImplementedError


class NormalizedGD(ImageOptimizer):
    """x <- x - lr * g / std(g)."""

    default_lr = 0.01
    bytes_per_pixel = 0  # nothing kept between steps

    def update(self, grad: Tensor, loss: Tensor) -> None:
        self.x.sub_(grad / grad.std().clamp_min(1e-12), alpha=self.lr)


class Adam(ImageOptimizer):
    """Adam (Kingma & Ba), with torch's update: x -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)."""

    betas = (0.9, 0.999)
    eps = 1e-8
    default_lr = 0.02
    bytes_per_pixel = 3 * 3 * 4  # two moments and a gradient, float32 RGB

    def update(self, grad: Tensor, loss: Tensor) -> None:
        st = self.state
        if "exp_avg" not in st:
            st.update(step=0, exp_avg=torch.zeros_like(grad), exp_avg_sq=torch.zeros_like(grad))
        b1, b2 = self.betas
        st["step"] += 1
        st["exp_avg"].lerp_(grad, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        bc1, bc2 = 1 - b1 ** st["step"], 1 - b2 ** st["step"]
        denom = (st["exp_avg_sq"].sqrt() / math.sqrt(bc2)).add_(self.eps)
        self.x.addcdiv_(st["exp_avg"], denom, value=-self.lr / bc1)


class LBFGS(ImageOptimizer):
    """L-BFGS with one function evaluation per step and no host synchronization.

    The same algorithm as torch's L-BFGS with ``max_iter=1`` and no line search (a first step
    along -g, then unit steps along the two-loop direction), but every decision that torch takes on
    the host (is the curvature pair usable? is this a descent direction?) is a tensor select, so a
    GPU never waits for the CPU. Two differences: the first step moves the image by
    ``first_move`` RMS (:data:`LBFGS_FIRST_MOVE`; ``None``: torch's min(1, 1/|g|_1), which barely
    moves an image), bounded by ``polyak`` times Polyak's step f / |g|^2 (:data:`LBFGS_POLYAK`;
    ``None``: no bound), and a pair with y.s <= 1e-10 is stored with weight 0 (ignored) instead of
    being skipped, so it displaces the oldest pair. ``lr`` scales every step, the first included.
    """

    clamps = False
    default_lr = 1.0
    bytes_per_pixel = 2 * LBFGS_HISTORY * 3 * 4  # 2 x history image-sized float32 vectors
    capturable = True

    def __init__(self, x: Tensor, lr: float = 1.0, history_size: int = LBFGS_HISTORY, *, static: bool = False,
                 first_move: float | None = LBFGS_FIRST_MOVE, polyak: float | None = LBFGS_POLYAK) -> None:
        super().__init__(x, lr)
        self.polyak = polyak
        self.history_size = history_size
        self.first_move = first_move
        self.static = static
        """Fixed buffers updated in place, and the same kernels every step (after the first): what a
        CUDA graph can capture and replay. The same numbers as the ring of pairs (tested)."""

    def _first_t(self, g: Tensor, loss: Tensor) -> Tensor:
        """The first step's length along -g (a 0-d tensor: no host sync)."""
        if self.first_move is None:  # torch's rule
            return torch.clamp(1.0 / g.abs().sum(), max=1.0) * self.lr
        norm = torch.linalg.vector_norm(g)
        t = self.first_move * self.lr / (norm / math.sqrt(g.numel())).clamp_min(1e-30)
        if self.polyak is None:
            return t
        polyak = self.polyak * self.lr * loss.to(g.dtype).clamp_min(0) / (norm * norm).clamp_min(1e-30)
        return torch.minimum(t, polyak)

    def update(self, grad: Tensor, loss: Tensor) -> None:
        if self.static:
            self._update_static(grad, loss)
            return
        g = grad.reshape(-1)
        st = self.state
        k = st.get("k", 0)
        if k == 0:
            st.update(S=[], Y=[], rho=[], H=torch.ones((), device=g.device, dtype=g.dtype))
            d = -g
            t = self._first_t(g, loss)
        else:
            y = g - st["prev_g"]
            s = st["prev_d"] * st["prev_t"]
            ys = torch.dot(y, s)
            usable = ys > 1e-10
            rho = torch.where(usable, 1.0 / torch.where(usable, ys, torch.ones_like(ys)), torch.zeros_like(ys))
            st["H"] = torch.where(usable, ys / torch.dot(y, y).clamp_min(1e-30), st["H"])
            m, n = self.history_size, st.get("pairs", 0)
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
            t = torch.full((), float(self.lr), device=g.device, dtype=g.dtype)
        self.x.add_((d * t).view_as(self.x))
        st.update(prev_g=g.clone(), prev_d=d, prev_t=t, k=k + 1)

    def _update_static(self, grad: Tensor, loss: Tensor) -> None:
        """:meth:`update` in the compact form of L-BFGS (Byrd, Nocedal and Schnabel 1994), over
        fixed buffers written in place, so that a captured step reads what the last replay wrote.

        The pairs are the rows of two (history, pixels) matrices S and Y, the newest written over
        the oldest at a slot held as a tensor (no rolling); their inner products are kept as small
        matrices (S^T Y, Y^T Y), updated each step from two matrix products, and the direction is
        H g = gamma g + S top - gamma Y p, with p = R^-1 S^T g and top = R^-T ((D + gamma Y^T Y) p
        - gamma Y^T g), R the upper triangle of S^T Y in the pairs' time order and D its diagonal.
        Four passes over the history a step, whatever its size, and a fixed number of kernels:
        the two-loop recursion's 4 x history dot products and updates are gone. A pair with
        y.s <= 1e-10 is masked out as the ring's rho = 0 skips it; the same iterates (tested)."""
        g = grad.reshape(-1)
        st, m = self.state, self.history_size
        if st.get("k", 0) == 0:
            f64 = torch.zeros((), dtype=torch.float64, device=g.device)  # the small matrices' dtype and device
            st.update(S=g.new_zeros(m, g.numel()), Y=g.new_zeros(m, g.numel()), H=g.new_ones(()),
                      SY=f64.new_zeros(m, m), YY=f64.new_zeros(m, m),
                      use=f64.new_zeros(m), stamp=f64.new_zeros(m), clock=f64.new_ones(()),
                      slot=torch.zeros(1, dtype=torch.long, device=g.device),
                      prev_g=g.new_zeros(g.numel()), prev_d=g.new_zeros(g.numel()), prev_t=g.new_zeros(()), k=0)
            d = -g
            t = self._first_t(g, loss)
        else:
            S, Y, slot = st["S"], st["Y"], st["slot"]
            y = g - st["prev_g"]
            s = st["prev_d"] * st["prev_t"]
            ys = torch.dot(y, s)
            usable = ys > 1e-10
            st["H"].copy_(torch.where(usable, ys / torch.dot(y, y).clamp_min(1e-30), st["H"]))
            S.index_copy_(0, slot, s[None])
            Y.index_copy_(0, slot, y[None])
            st["use"].index_copy_(0, slot, usable.to(torch.float64)[None])
            st["stamp"].index_copy_(0, slot, st["clock"][None])
            st["clock"].add_(1)
            # (a (k, N) stack seen transposed: as the right operand, a row-major (N, k) copy is 3x slower)
            sv = (S @ torch.stack([y, g]).T).double()  # S^T y, S^T g
            yv = (Y @ torch.stack([s, y, g]).T).double()  # Y^T s, Y^T y, Y^T g
            st["SY"].index_copy_(1, slot, sv[:, :1])
            st["SY"].index_copy_(0, slot, yv[:, :1].T)
            st["YY"].index_copy_(1, slot, yv[:, 1:2])
            st["YY"].index_copy_(0, slot, yv[:, 1:2].T)
            top, p = _compact_terms(st["SY"], st["YY"], st["use"], st["stamp"], sv[:, 1], yv[:, 2],
                                    st["H"].double())
            gamma = st["H"]
            d = -(gamma * g + S.T @ top.to(g.dtype) - gamma * (Y.T @ p.to(g.dtype)))
            d = torch.where(torch.dot(g, d) < 0, d, -g)  # never step uphill
            t = torch.full((), float(self.lr), device=g.device, dtype=g.dtype)
            slot.add_(1).remainder_(m)
        self.x.add_((d * t).view_as(self.x))
        st["prev_g"].copy_(g)
        st["prev_d"].copy_(d)
        st["prev_t"].copy_(t)
        st["k"] += 1


def _compact_terms(sy: Tensor, yy: Tensor, use: Tensor, stamp: Tensor, sg: Tensor, yg: Tensor,
                   gamma: Tensor) -> tuple[Tensor, Tensor]:
    """The compact form's small solves (float64, slot order in and out): ``top`` = R^-T ((D +
    gamma Y^T Y) p - gamma Y^T g) and ``p`` = R^-1 S^T g, over the pairs in use, in time order
    (``stamp``). A pair not in use (empty, or y.s too small) has R's row and column of the
    identity and no products, so it adds nothing, as rho = 0 in the two-loop recursion."""
    order = torch.argsort(stamp)  # oldest first; empty slots (stamp 0) first, masked anyway
    w = use[order]
    keep = w[:, None] * w[None, :]
    r = torch.triu(sy[order][:, order] * keep) + torch.diag(1 - w)
    a = (sg[order] * w)[:, None]
    b = (yg[order] * w)[:, None]
    p = torch.linalg.solve_triangular(r, a, upper=True)
    inner = torch.diagonal(r)[:, None] * w[:, None] * p + gamma * ((yy[order][:, order] * keep) @ p) - gamma * b
    top = torch.linalg.solve_triangular(r.T, inner, upper=False)
    back = torch.empty_like(order)
    back[order] = torch.arange(order.numel(), device=order.device)
    return top[back, 0], p[back, 0]


OPTIMIZER_KINDS: dict[str, type[ImageOptimizer]] = {"lbfgs": LBFGS, "adam": Adam, "gd": NormalizedGD}
DEFAULT_LEARNING_RATES = {name: kind.default_lr for name, kind in OPTIMIZER_KINDS.items()}


def _closure(opt: ImageOptimizer, objective: Objective, x: Tensor, parts: dict[str, Tensor]) -> Closure:
    """The objective's total at ``x`` with its gradient; its named parts are left in ``parts``."""
    def closure() -> Tensor:
        opt.zero_grad()
        total, terms = objective(x)
        total.backward()
        parts.clear()
        parts.update(terms, total=total.detach())
        return total

    return closure


class _Readback:
    """The losses of the steps since the last read-back, all read to the host at once (one sync),
    then checked for NaN and passed to the callback with the image as it is then."""

    def __init__(self, callback: StepCallback | None, x: Tensor) -> None:
        self.callback, self.x = callback, x
        self.pending: list[tuple[int, Tensor]] = []
        self.keys: list[str] = []

    def add(self, step: int, parts: dict[str, Tensor], sync_every: int) -> None:
        # copied now: a replayed CUDA graph writes its next losses into the same tensors
        self.keys = list(parts)
        self.pending.append((step, torch.stack([parts[k].float() for k in self.keys])))
        if len(self.pending) >= sync_every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        keys = self.keys
        rows = torch.stack([row for _, row in self.pending]).tolist()
        for (at, _), row in zip(self.pending, rows):
            losses = dict(zip(keys, row))
            if not math.isfinite(losses["total"]):
                raise NonFiniteLossError(_nonfinite_message(at, losses))
            if self.callback is not None:
                self.callback(at, losses, self.x.detach())
        self.pending.clear()


def make_optimizer(name: str, x: Tensor, lr: float, *, static: bool = False) -> ImageOptimizer:
    """The optimizer called ``name`` (lbfgs, adam, gd) over the image tensor ``x``; ``static``: in
    its capturable form (fixed buffers), for an optimizer that has one."""
    if name not in OPTIMIZER_KINDS:
        raise InputError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}", fields=("optimizer",))
    kind = OPTIMIZER_KINDS[name]
    if static and kind.capturable:
        return kind(x, lr, static=True)  # type: ignore[call-arg]
    return kind(x, lr)


CUDA_GRAPH_MAX_PIXELS = 2 * 512 * 512
"""The largest image whose iterations are captured as CUDA graphs by default. A small image is
launch-bound, and the graph pays: on an H200 an iteration at 512 x 512 took 5.4 ms captured
against 9.3 ms eager (fp32), 4.7 against 9.9 ms (bf16). A large one is not, and the static L-BFGS
that capture needs (every history slot visited, the buffers shifted each step) costs more than the
launches it saves: 16.2 against 12.9 ms at 1024 x 1024, 60.9 against 47.5 ms at 2048 x 2048
(``benchmarks/gpu.py``, ``benchmarks/results/gpu.md``)."""


def graphs_pay(image: Tensor) -> bool:
    """Whether capturing the iterations over ``image`` (N, C, H, W) pays (see
    :data:`CUDA_GRAPH_MAX_PIXELS`)."""
    return image.shape[-2] * image.shape[-1] <= CUDA_GRAPH_MAX_PIXELS


GRAPH_WARMUP = 3
"""Eager steps before a step is captured (on a side stream, as CUDA graphs need: the allocator and
cuDNN's algorithm choice settle there)."""


def cuda_graph_capture(step: Callable[[], Any]) -> Callable[[], None]:
    """``step`` captured in a CUDA graph; returns its replay. Capture runs nothing, so the caller
    replays it for the step it stands for."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


class Stepper:
    """Runs an optimizer's steps eagerly, or (``capture``, for a capturable optimizer) eagerly for
    :data:`GRAPH_WARMUP` steps and then as the replay of one captured step: one launch for the whole
    iteration (loss network forward and backward, losses, L-BFGS update), where eager PyTorch
    launches hundreds of kernels one by one from Python (issue 29: 7 ms an iteration at 512 px on
    an H200, for 0.5 ms of arithmetic).

    ``capture`` is a function like :func:`cuda_graph_capture`; a capture that fails (an operation
    a graph cannot hold) falls back to eager steps for the rest of the run, with the same results.
    """

    def __init__(self, opt: ImageOptimizer, closure: Closure, capture: Callable[[Callable[[], Any]], Callable[[], None]]
                 | None = None) -> None:
        self.opt, self.closure = opt, closure
        self.capture = capture if opt.capturable and getattr(opt, "static", False) else None
        self.replay: Callable[[], None] | None = None
        self.steps = 0
        self.fell_back: str | None = None
        """Why the capture failed, if it did (the run went on eagerly)."""

    def step(self) -> None:
        if self.replay is not None:
            self.replay()
        elif self.capture is not None and self.steps >= GRAPH_WARMUP:
            self._capture()
        elif self.capture is not None and self.opt.x.device.type == "cuda":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.opt.step(self.closure)
            torch.cuda.current_stream().wait_stream(side)
        else:
            self.opt.step(self.closure)
        self.steps += 1

    def _capture(self) -> None:
        assert self.capture is not None
        self.opt.zero_grad()
        try:
            self.replay = self.capture(lambda: self.opt.step(self.closure))
        except Exception as exc:  # a graph cannot hold this objective: go on eagerly, as before
            self.fell_back, self.capture, self.replay = f"{type(exc).__name__}: {exc}", None, None
            self.opt.zero_grad()
            self.opt.step(self.closure)
            return
        self.replay()  # the capture ran nothing: this replay is the step


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
    sync_every: int = 1,
    cancel: CancelToken | None = None,
    graphs: bool | Callable[[Callable[[], Any]], Callable[[], None]] = False,
) -> tuple[Tensor, dict]:
    """Minimize ``objective`` over the pixels of ``image``.

    Returns the optimized image and the optimizer state to pass as ``resume`` to the next scale.
    ``callback(step, losses, image)`` runs after every iteration, with ``step`` counted from
    ``first_step + 1``. Raises :class:`NonFiniteLossError` if the loss becomes NaN or infinite,
    and :class:`Interrupted` (holding the image so far, a tensor) on Ctrl-C or when
    ``cancel`` is set (checked before every iteration).

    With ``ema_decay``, the result is an exponential moving average of the iterates instead of
    the last one, which smooths the small oscillations of the last steps (a cleaner image).

    For GPUs: ``sync_every`` > 1 reads the losses back to the host once every that many steps
    (one transfer for all of them); the callbacks and the NaN check then run in batches, each
    callback seeing the image as it is at the read-back. ``graphs=True`` (CUDA, L-BFGS) replays
    each iteration as one captured CUDA graph after a few eager ones (:class:`Stepper`); it may
    also be a capture function (the tests pass one that runs the step eagerly). Where capture is
    not possible the steps run eagerly, with the same results.
    """
    x = image.detach().clone().requires_grad_(True)
    average = x.detach().clone() if ema_decay else None
    capture = (cuda_graph_capture if x.device.type == "cuda" else None) if graphs is True else (graphs or None)
    opt = make_optimizer(optimizer, x, lr, static=capture is not None)
    if resume:
        opt.state.update(carry_state(optimizer, resume, spatial_size(x)))
    parts: dict[str, Tensor] = {}
    closure = _closure(opt, objective, x, parts)
    stepper = Stepper(opt, closure, capture)
    readback = _Readback(callback, x)
    step = first_step

    def current() -> Tensor:
        return (average if average is not None else x.detach()).clone()

    try:
        for _ in range(iterations):
            if cancel is not None and cancel.cancelled:
                readback.flush()
                raise Interrupted(current(), step, cancelled=True)
            stepper.step()
            if opt.clamps:
                with torch.no_grad():
                    x.clamp_(0, 1)
            if average is not None:
                average.lerp_(x.detach(), 1.0 - ema_decay)  # type: ignore[operator]
            step += 1
            readback.add(step, parts, sync_every)
        readback.flush()
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(current(), step) from None
    result = average if average is not None else x.detach()
    if not torch.isfinite(result).all():
        raise NonFiniteLossError(_nonfinite_message(step, {"image": float("nan")}))
    return result, dict(opt.state)


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
        "Try a lower style_weight or learning_rate, or the lbfgs optimizer"
    )
