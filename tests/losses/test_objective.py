import pytest
import torch

from impasto.losses import LossConfig, content_loss, tv_loss
from impasto.losses.objective import Objective, Term, build_objective, style_targets
from impasto.nets.vgg import build_extractor


@pytest.fixture(scope="module")
def extractor():
    return build_extractor(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"))


class Anchor(Term):
    """An image-space term (as video's temporal term): squared distance to a fixed image."""

    def __init__(self, image):
        super().__init__()
        self.register_buffer("anchor", image)

    def forward(self, image, features):
        return (image - self.anchor).square().mean()


def test_objective_sums_weighted_named_terms(extractor):
    torch.manual_seed(0)
    content, style, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    loss = LossConfig(content_weight=2.0, style_weight=5.0, tv_weight=3.0)
    objective = build_objective(extractor, content, style_targets(extractor, [[style]], loss), loss)
    total, parts = objective(x)
    assert list(parts) == ["content", "style", "tv"]
    expected = 2.0 * parts["content"] + 5.0 * parts["style"] + 3.0 * parts["tv"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["tv"].item() == pytest.approx(tv_loss(x).item(), rel=1e-6)
    # the content term is the relative error at relu4_2: 1 for an image with no activation there
    fc, fx = extractor(content, ["relu4_2"])["relu4_2"], extractor(x, ["relu4_2"])["relu4_2"]
    relative = content_loss(fx, fc) / content_loss(torch.zeros_like(fc), fc)
    assert parts["content"].item() == pytest.approx(relative.item(), rel=1e-4)
    # the style of the style image itself is matched exactly
    assert objective(style)[1]["style"].item() < 1e-6


def test_terms_with_zero_weight_are_left_out_and_extra_terms_add(extractor):
    content = torch.rand(1, 3, 32, 32)
    loss = LossConfig(style_weight=0.0, tv_weight=0.0)
    objective = build_objective(extractor, content, None, loss)
    assert list(objective.terms) == ["content"] and objective.layers == ["relu4_2"]
    anchor = torch.rand(1, 3, 32, 32)
    objective.add("temporal", Anchor(anchor), 10.0)
    total, parts = objective(content)
    assert set(parts) == {"content", "temporal"} and parts["content"].item() < 1e-8
    assert total.item() == pytest.approx(10.0 * (content - anchor).square().mean().item(), rel=1e-5)


def test_every_target_is_a_buffer_that_moves_with_the_objective(extractor):
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    for kind in ("gram", "meancov", "mrf"):
        loss = LossConfig(style_loss=kind)
        objective = build_objective(extractor, content, style_targets(extractor, [[style]], loss), loss)
        buffers = dict(objective.named_buffers())
        assert any("target_" in name for name in buffers)
        moved = objective.to(torch.float64)
        assert all(b.dtype == torch.float64 for n, b in moved.named_buffers() if b.is_floating_point()), kind


def test_objective_on_a_batch(extractor):
    torch.manual_seed(1)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32)
    loss = LossConfig()
    objective = build_objective(extractor, content, style_targets(extractor, [[style]], loss), loss)
    both = objective(content)[1]
    singles = [build_objective(extractor, content[i:i + 1], style_targets(extractor, [[style]], loss), loss)(
        content[i:i + 1])[1] for i in range(2)]
    for name in ("style", "tv"):
        mean = sum(s[name] for s in singles) / 2
        assert both[name].item() == pytest.approx(mean.item(), rel=1e-4), name


def test_an_objective_without_terms_is_a_zero(extractor):
    objective = Objective(extractor, {}, {})
    total, parts = objective(torch.rand(1, 3, 8, 8))
    assert total.item() == 0 and parts == {}


def test_batch_style_term_equals_each_style_on_its_own_crops():
    """Training's batch term (targets indexed per crop) gives what one term per style, applied to
    that style's crops and weighted by their share, gives."""
    from impasto.losses import LossConfig
    from impasto.losses.objective import BatchContext, BatchStyleTerm, StyleLayerTerm, StyleTerm, style_targets
    from impasto.nets.vgg import build_extractor

    loss = LossConfig(style_layers=("relu1_1", "relu2_1"))
    ex = build_extractor(loss.layers)
    g = torch.Generator().manual_seed(0)
    styles = [torch.rand(1, 3, 40, 40, generator=g) for _ in range(3)]
    targets = [style_targets(ex, [[s]], loss) for s in styles]
    batch = torch.rand(4, 3, 32, 32, generator=g)
    which = torch.tensor([2, 0, 2, 1])
    feats = ex(batch, loss.layers)
    term = BatchStyleTerm(targets[0].kind, targets)
    got = term(batch, feats, BatchContext(style_index=which))
    expected = torch.zeros(())
    for index in range(3):
        rows = (which == index).nonzero().flatten()
        single = StyleTerm([StyleLayerTerm(targets[index].kind, layer, target, w, None)
                            for layer, target, w in targets[index].per_style[0]])
        expected = expected + single(batch, {k: v[rows] for k, v in feats.items()}) * len(rows) / len(which)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_teacher_term_compares_low_passed_images():
    """Distillation's term: a flat offset counts in full, a 2 px checkerboard not at all (the low
    pass leaves a teacher's finest lattice out of the target), a 4 px one barely."""
    from impasto.losses.objective import BatchContext, TeacherTerm

    term = TeacherTerm()
    teacher = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert term(teacher, {}, BatchContext(teacher=teacher)).item() == 0
    torch.testing.assert_close(term(teacher + 0.1, {}, BatchContext(teacher=teacher)), torch.tensor(0.01))
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker2 = ((yy + xx) % 2 * 2 - 1).float() * 0.1  # +-0.1 at a 2 px period
    assert term(teacher + checker2, {}, BatchContext(teacher=teacher)).item() < 1e-9
    checker4 = ((yy // 2 + xx // 2) % 2 * 2 - 1).float() * 0.1
    assert term(teacher + checker4, {}, BatchContext(teacher=teacher)).item() < 0.01 * 0.1


def test_style_layer_factors_multiply_the_auto_weights(extractor):
    from impasto.errors import InputError

    torch.manual_seed(3)
    style = torch.rand(1, 3, 32, 32)
    auto = style_targets(extractor, [[style]], LossConfig())
    factors = (1.0, 0.0, 2.0, 1.0, 3.0)
    boosted = style_targets(extractor, [[style]], LossConfig(style_layer_factors=factors))
    for (layer, _, w), (same_layer, _, wf), f in zip(auto.per_style[0], boosted.per_style[0], factors):
        assert layer == same_layer and wf == pytest.approx(w * f)
    with pytest.raises(InputError, match="not both"):
        LossConfig(style_layer_weights=(1.0,) * 5, style_layer_factors=(1.0,) * 5)
    with pytest.raises(InputError, match="one per layer"):
        LossConfig(style_layer_factors=(1.0, 3.0))
    with pytest.raises(InputError, match="style_layer_factors"):
        LossConfig(style_layer_factors=(1.0, 1.0, 1.0, 1.0, -3.0))
