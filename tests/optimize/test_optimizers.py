import pytest
import torch

from impasto.optimize.optimizers import LBFGS, LBFGS_FIRST_MOVE, LBFGS_POLYAK, Adam, NormalizedGD, make_optimizer


def _quadratic(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, n, generator=g, dtype=torch.float64)
    a = q @ q.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return a, b


def _run(opt_factory, steps, a, b, history):
    x = torch.zeros(a.shape[0], dtype=torch.float64, requires_grad=True)
    opt = opt_factory(x, history)
    path = []

    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        path.append(x.detach().clone())
    return path


@pytest.mark.parametrize("history", [50, 4])  # 4: the ring buffer wraps around
def test_lbfgs_follows_torch_lbfgs(history):
    a, b = _quadratic()
    torch_path = _run(lambda x, h: torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=h, tolerance_grad=0,
                                                      tolerance_change=0, line_search_fn=None), 25, a, b, history)
    ours = _run(lambda x, h: LBFGS(x, lr=1, history_size=h, first_move=None), 25, a, b, history)
    for t, o in zip(torch_path, ours):
        assert torch.allclose(t, o, rtol=1e-6, atol=1e-9)
    solution = torch.linalg.solve(a, b)
    assert (ours[-1] - solution).norm() < 0.05 * solution.norm()


@pytest.mark.parametrize("static", [False, True])
def test_lbfgs_first_step_moves_the_image_by_first_move_rms(static):
    """torch's first step, min(1, 1/|g|_1) along -g, barely moves an image whose |g|_1 is large
    (4e-5 RMS at 512 px); ours moves it by LBFGS_FIRST_MOVE (times lr) RMS, along -g, in both forms."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 24, generator=gen, dtype=torch.float64).requires_grad_(True)
    target = torch.rand(1, 3, 32, 24, generator=gen, dtype=torch.float64)
    start = x.detach().clone()
    opt = LBFGS(x, lr=0.5, static=static)

    def closure():
        opt.zero_grad()
        loss = 300 * ((x - target) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    move = x.detach() - start
    assert float(move.square().mean().sqrt()) == pytest.approx(0.5 * LBFGS_FIRST_MOVE, rel=1e-9)
    assert float(torch.nn.functional.cosine_similarity(move.flatten(), (target - start).flatten(), dim=0)) > 1 - 1e-9


@pytest.mark.parametrize("static", [False, True])
def test_near_an_optimum_the_first_step_shrinks_with_the_objective(static):
    """Issue 42's regression: a first step of fixed RMS size ignores how close the optimum is, and
    near it (a resumed run, a video frame, strength 0) it overshoots along a small, noisy gradient.
    Bounded by LBFGS_POLYAK times Polyak's step f / |g|^2, it moves a point 1e-4 RMS from the
    optimum of f = |x - x*|^2 by LBFGS_POLYAK / 2 of the way there (f / |g|^2 = 1/4 for it), never past it,
    in both forms; far from the optimum the RMS move stands."""
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 32, 24, generator=gen, dtype=torch.float64)
    noise = torch.randn(1, 3, 32, 24, generator=gen, dtype=torch.float64)
    for offset, moved in ((1e-4, None), (0.5, LBFGS_FIRST_MOVE)):
        start = target + offset * noise / noise.square().mean().sqrt()
        x = start.clone().requires_grad_(True)
        opt = LBFGS(x, static=static)

        def closure(opt=opt, x=x):
            opt.zero_grad()
            loss = ((x - target) ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        rms = float((x.detach() - start).square().mean().sqrt())
        if moved is None:
            assert rms == pytest.approx(LBFGS_POLYAK / 2 * offset, rel=1e-9)  # t = polyak/4, |g| = 2|e|
            assert float((x.detach() - target).square().mean().sqrt()) < offset
        else:
            assert rms == pytest.approx(moved, rel=1e-9)
    unbounded = LBFGS(start.clone().requires_grad_(True), polyak=None)
    assert unbounded.polyak is None  # the f844e55 rule, kept for the experiment


@pytest.mark.parametrize("static", [False, True])
def test_lbfgs_on_a_flat_objective_stays_finite_and_still(static):
    """A zero gradient (a flat photo and painting can give one) has no RMS to scale the first step
    by: the image stays where it is and every state tensor stays finite."""
    x = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    opt = LBFGS(x, static=static)

    def closure():
        opt.zero_grad()
        loss = (x * 0).sum()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert torch.equal(x.detach(), torch.full_like(x, 0.5))
    state = [v for v in opt.state.values() for v in (v if isinstance(v, list) else [v]) if torch.is_tensor(v)]
    assert state and all(bool(torch.isfinite(v).all()) for v in state)


def test_lbfgs_first_step_lowers_a_style_objective_more_than_torchs():
    """On the loss network's objective, the first iteration is no longer lost: torch's rule barely
    moves the image (|g|_1 is 8 even at 40 x 48 px), ours takes a third off the loss, and the
    lead holds at every later step."""
    objective, content = _tiny_objective()

    def losses(first_move):
        x = content.clone().requires_grad_(True)
        opt = LBFGS(x, first_move=first_move)

        def closure():
            opt.zero_grad()
            total, _ = objective(x)
            total.backward()
            return total.detach()

        return [float(opt.step(closure)) for _ in range(6)]  # the loss at x before each step

    ours, torchs = losses(LBFGS_FIRST_MOVE), losses(None)
    assert ours[0] == torchs[0]
    assert torchs[1] > 0.95 * torchs[0]  # torch's first step: almost nothing moved
    assert ours[1] < 0.8 * torchs[1]
    assert all(o < t for o, t in zip(ours[1:], torchs[1:]))


def test_lbfgs_never_steps_uphill():
    x = torch.tensor([1.5, -0.5], requires_grad=True)
    opt = LBFGS(x, lr=1.0)
    values = []

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(60):
        values.append(float(opt.step(closure).detach()))
    assert values[-1] < 1e-2 * values[0]


def test_adam_follows_torch_adam():
    a, b = _quadratic(seed=1)
    torch_path = _run(lambda x, h: torch.optim.Adam([x], lr=0.05), 30, a, b, None)
    ours = _run(lambda x, h: Adam(x, lr=0.05), 30, a, b, None)
    for t, o in zip(torch_path, ours):
        assert torch.allclose(t, o, rtol=1e-6, atol=1e-9)


def test_make_optimizer_choices():
    x = torch.zeros(3, requires_grad=True)
    assert isinstance(make_optimizer("lbfgs", x, 1.0), LBFGS)
    assert isinstance(make_optimizer("adam", x, 1.0), Adam)
    assert isinstance(make_optimizer("gd", x, 1.0), NormalizedGD)
    with pytest.raises(ValueError, match="valid: lbfgs, adam, gd"):
        make_optimizer("sgd", x, 1.0)


def test_no_torch_optim_optimizer_is_created(small_images):
    """Creating a torch.optim optimizer imports torch._dynamo (about 1 s); a run must not need it."""
    import subprocess
    import sys

    c, s = small_images
    code = ("import sys, impasto; impasto.stylize(sys.argv[1], sys.argv[2], size=32, iterations=1, scales=1); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(c), str(s)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cancel_token_stops_before_the_next_step(small_images):
    import impasto
    from impasto.errors import StylizeInterrupted

    c, s = small_images
    token = impasto.CancelToken()
    steps = []

    def on_step(event):
        steps.append(event.step)
        if event.step == 3:
            token.cancel()

    with pytest.raises(StylizeInterrupted) as stop:
        impasto.stylize(c, s, size=32, iterations=10, scales=1, cancel=token, callback=on_step)
    assert stop.value.cancelled and stop.value.step == 3 and steps == [1, 2, 3]
    assert stop.value.image.shape == (1, 3, 21, 32)  # the partial result stays a tensor


def test_batched_readback_gives_the_same_events(small_images):
    import impasto
    from impasto.optimize.optimizers import optimize

    c, _s = small_images
    x0 = impasto.load_image(c).rgb
    target = torch.rand_like(x0)

    def objective(x):
        total = (x - target).square().mean()
        return total, {"content": total.detach(), "style": total.detach() * 0, "tv": total.detach() * 0}

    seen = {}
    for every in (1, 3):
        events = []
        optimize(x0, objective, iterations=7, lr=1.0, sync_every=every,
                 callback=lambda step, losses, x, seen_now=events: seen_now.append((step, losses["total"])))
        seen[every] = events
    assert [e[0] for e in seen[3]] == list(range(1, 8))
    assert seen[1] == seen[3]


def test_nan_is_caught_with_batched_readback():
    from impasto.errors import NonFiniteLossError
    from impasto.optimize.optimizers import optimize

    def objective(x):
        total = x.sum() * float("nan")
        return total, {"content": total.detach()}

    with pytest.raises(NonFiniteLossError, match="diverged at step 1"):
        optimize(torch.rand(1, 3, 4, 4), objective, iterations=5, lr=1.0, sync_every=4)


def test_bf16_autocast_keeps_grams_in_float32(small_images):
    import impasto
    from impasto.losses import gram_matrix

    f = torch.rand(1, 8, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(f.bfloat16()).dtype == torch.float32
    c, s = small_images
    events = []
    impasto.stylize(c, s, size=32, iterations=4, precision="bf16", seed=0, callback=events.append)
    assert events[-1].losses["total"] < events[0].losses["total"]


@pytest.mark.parametrize("history", [50, 4])
def test_the_capturable_lbfgs_takes_the_same_steps(history):
    """Fixed buffers, every slot visited, state written in place: the same path as the ring of pairs."""
    a, b = _quadratic()
    ring = _run(lambda x, h: LBFGS(x, lr=1, history_size=h), 25, a, b, history)
    static = _run(lambda x, h: LBFGS(x, lr=1, history_size=h, static=True), 25, a, b, history)
    for r, s in zip(ring, static):
        assert torch.allclose(r, s, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("history", [50, 4])
def test_the_compact_lbfgs_skips_the_pairs_the_ring_skips(history):
    """An objective whose gradient often does not change (|x - c| summed: y = 0 until a coordinate
    crosses c) makes pairs with y.s <= 1e-10, which the ring stores with rho 0 and the compact form
    masks: both still take the same steps, in float64 to 1e-12."""
    c = torch.linspace(-1, 1, 12, dtype=torch.float64)

    def run(static):
        x = torch.zeros(12, dtype=torch.float64, requires_grad=True)
        opt = LBFGS(x, lr=0.3, history_size=history, static=static)

        def closure():
            opt.zero_grad()
            loss = (x - c).abs().sum()
            loss.backward()
            return loss

        path = []
        for _ in range(30):
            opt.step(closure)
            path.append(x.detach().clone())
        return path, opt

    (ring, ring_opt), (compact, compact_opt) = run(False), run(True)
    assert any(float(r) == 0 for r in ring_opt.state["rho"])  # some pairs were skipped
    assert float(compact_opt.state["use"].sum()) < min(29, history)
    for r, k in zip(ring, compact):
        assert torch.allclose(r, k, rtol=1e-12, atol=1e-12)


def _tiny_objective():
    from impasto.losses.config import LossConfig
    from impasto.losses.objective import build_objective, style_targets
    from impasto.nets.vgg import build_extractor

    loss = LossConfig()
    torch.manual_seed(0)
    extractor = build_extractor(loss.layers)
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 48, 48)
    return build_objective(extractor, content, style_targets(extractor, [[style]], loss), loss), content


def _spy_steppers(mp, seen):
    """Record each Stepper (and so its optimizer) as the run makes it."""
    from impasto.optimize import optimizers

    real_init = optimizers.Stepper.__init__

    def init(self, opt, closure, capture=None):
        seen.append(self)
        real_init(self, opt, closure, capture)

    mp.setattr(optimizers.Stepper, "__init__", init)


def _events_and_image(objective, content, graphs, nudge=0.0):
    from impasto.optimize.optimizers import optimize

    events = []
    x, _ = optimize(content * (1 + nudge), objective, iterations=8, lr=1.0, sync_every=3, graphs=graphs,
                    callback=lambda step, losses, x: events.append((step, losses)))
    return events, x


def _same_run_within_float32(got, eager, objective, content):
    """``got`` (events, image) is the eager run's, to float32's own noise: the compact L-BFGS that
    capture uses differs from the two-loop recursion by rounding only (equal to 1e-12 in float64,
    ``test_the_capturable_lbfgs_takes_the_same_steps``), and in float32 rounding grows along a
    run; the yardstick is how far the eager run itself moves when its start is nudged by 1e-7 either way."""
    nudges = [_events_and_image(objective, content, False, nudge=n) for n in (1e-7, -1e-7)]
    (events, image), (eager_events, eager_image) = got, eager
    assert (image - eager_image).abs().max() <= max((x - eager_image).abs().max() for _, x in nudges)
    assert [s for s, _ in events] == [s for s, _ in eager_events] == list(range(1, 9))
    for i, ((_, r), (_, e)) in enumerate(zip(events, eager_events)):
        noise = {k: max(abs(n[i][1][k] - e[k]) for n, _ in nudges) for k in e}
        assert r.keys() == e.keys() and all(abs(r[k] - e[k]) <= noise[k] + 1e-6 * abs(e[k]) for k in e)


def test_a_replayed_step_gives_the_same_run_and_keeps_its_buffers():
    """A stand-in for CUDA graph capture on the CPU: capture records nothing, and each 'replay' runs
    the step again and checks what a real graph needs: every state tensor stays where the capture
    saw it (written in place), so that a replay reads what the last one wrote. The run (losses,
    events, image) equals the eager one."""
    from impasto.optimize import optimizers

    objective, content = _tiny_objective()
    replays = []

    def capture(step):
        opt = opts[-1]
        where = {k: v.data_ptr() for k, v in opt.state.items() if torch.is_tensor(v)}

        def replay():
            step()
            replays.append(1)
            assert {k: v.data_ptr() for k, v in opt.state.items() if torch.is_tensor(v)} == where, \
                "a state tensor was replaced, not written in place"
        return replay

    steppers: list = []
    with pytest.MonkeyPatch.context() as mp:
        _spy_steppers(mp, steppers)
        opts = _Opts(steppers)
        replayed_events, replayed = _events_and_image(objective, content, capture)
    assert opts[-1].static and len(replays) == 8 - optimizers.GRAPH_WARMUP
    _same_run_within_float32((replayed_events, replayed), _events_and_image(objective, content, False), objective,
                             content)
    # and exactly the run of the same capturable optimizer with no replay at all
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(optimizers, "GRAPH_WARMUP", 10**6)
        unreplayed_events, unreplayed = _events_and_image(objective, content, capture)
    assert torch.equal(unreplayed, replayed) and unreplayed_events == replayed_events


def test_a_failed_capture_falls_back_to_eager_steps_with_the_same_result():

    objective, content = _tiny_objective()

    def broken(step):
        raise RuntimeError("operation not permitted when stream is capturing")

    steppers: list = []
    with pytest.MonkeyPatch.context() as mp:
        _spy_steppers(mp, steppers)
        fell_events, fell = _events_and_image(objective, content, broken)
    eager_events, eager = _events_and_image(objective, content, False)
    assert steppers[0].fell_back.startswith("RuntimeError") and steppers[0].replay is None
    _same_run_within_float32((fell_events, fell), (eager_events, eager), objective, content)
    # on a CPU, graphs=True captures nothing: the ordinary eager run
    cpu_events, cpu = _events_and_image(objective, content, True)
    assert torch.equal(cpu, eager) and cpu_events == eager_events


class _Opts:
    """The optimizers of recorded Steppers, as a list that fills as the run goes."""

    def __init__(self, steppers: list) -> None:
        self.steppers = steppers

    def __getitem__(self, index: int):
        return self.steppers[index].opt


@pytest.mark.parametrize("allowed", [True, False])
def test_iterations_are_captured_only_at_the_scales_where_graphs_pay(small_images, allowed):
    """A small (launch-bound) scale is captured, a large one runs eagerly (measured on an H200:
    the static L-BFGS costs more than the launches it saves above about 724 x 724), and
    ``cuda_graphs=False`` turns capture off at every scale."""
    import impasto
    from impasto.optimize import optimizers, pipeline

    assert optimizers.graphs_pay(torch.zeros(1, 3, 512, 512))
    assert not optimizers.graphs_pay(torch.zeros(1, 3, 1024, 1024))
    asked = []
    real = pipeline.optimize

    def spy(init, objective, **kw):
        asked.append((init.shape[-2] * init.shape[-1], kw["graphs"]))
        return real(init, objective, **kw)

    c, s = small_images
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "optimize", spy)
        mp.setattr(optimizers, "CUDA_GRAPH_MAX_PIXELS", 24 * 16)  # between the two scales' sizes
        impasto.stylize(c, s, size=48, scales=2, iterations=2, seed=0, cuda_graphs=allowed)
    assert asked == [(24 * 16, allowed), (48 * 32, False)]
