import pytest
import torch

from impasto.optim import SyncFreeLBFGS, make_optimizer


def _quadratic(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, n, generator=g, dtype=torch.float64)
    a = q @ q.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return a, b


def _run(opt_factory, steps, a, b, history):
    x = torch.zeros(a.shape[0], dtype=torch.float64, requires_grad=True)
    opt = opt_factory([x], history)
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
def test_sync_free_lbfgs_follows_torch_lbfgs(history):
    a, b = _quadratic()
    torch_path = _run(lambda p, h: torch.optim.LBFGS(p, lr=1, max_iter=1, history_size=h, tolerance_grad=0,
                                                      tolerance_change=0, line_search_fn=None), 25, a, b, history)
    ours = _run(lambda p, h: SyncFreeLBFGS(p, lr=1, history_size=h), 25, a, b, history)
    for t, o in zip(torch_path, ours):
        assert torch.allclose(t, o, rtol=1e-6, atol=1e-9)
    solution = torch.linalg.solve(a, b)
    assert (ours[-1] - solution).norm() < 0.05 * solution.norm()


def test_sync_free_lbfgs_never_steps_uphill():
    x = torch.tensor([1.5, -0.5], requires_grad=True)
    opt = SyncFreeLBFGS([x], lr=1.0)
    values = []

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 5 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(60):
        values.append(float(opt.step(closure).detach()))
    assert values[-1] < 1e-2 * values[0]


def test_make_optimizer_choices():
    p = [torch.zeros(3, requires_grad=True)]
    assert isinstance(make_optimizer("lbfgs", p, 1.0), torch.optim.LBFGS)
    assert isinstance(make_optimizer("lbfgs", p, 1.0, sync_free=True), SyncFreeLBFGS)
    with pytest.raises(ValueError, match="valid: lbfgs, adam, gd"):
        make_optimizer("sgd", p, 1.0)


def test_batched_readback_gives_the_same_events(small_images):
    import impasto
    from impasto.optim import optimize

    c, s = small_images
    x0 = impasto.load_image(c).rgb
    target = torch.rand_like(x0)

    def objective(x):
        total = (x - target).square().mean()
        return total, {"content": total.detach(), "style": total.detach() * 0, "tv": total.detach() * 0}

    for sync_free in (False, True):
        seen = {}
        for every in (1, 3):
            events = []
            optimize(x0, objective, iterations=7, lr=1.0, sync_every=every, sync_free=sync_free,
                     callback=lambda step, losses, x: events.append((step, losses["total"])))
            seen[every] = events
        assert [e[0] for e in seen[3]] == list(range(1, 8))
        assert seen[1] == seen[3]


def test_nan_is_caught_with_batched_readback():
    from impasto.errors import NonFiniteLossError
    from impasto.optim import optimize

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
