import pytest
import torch

import impasto
from impasto.errors import InputError, StylizeInterrupted
from impasto.fast import TrainConfig, load_model, train
from impasto.fast.train import checkpoint_path, read_checkpoint, sample_path
from impasto.losses.objective import BatchContext

from ..conftest import TINY, files_in


def test_training_writes_a_model_and_a_sample_and_lowers_the_loss(tmp_path, photos, styles):
    events = []
    out = tmp_path / "m.pt"
    model = train(styles, [photos], out, config=TrainConfig.from_options(**{**TINY, "steps": 12, "lr": 5e-3}),
                  callback=events.append)
    assert files_in(tmp_path) == {"m.pt", "m.sample.png"}  # the checkpoint is removed at the end
    assert model.styles == ["starry_night", "wave"] and load_model(out).styles == model.styles
    first = sum(e.losses["total"] for e in events[:3]) / 3
    last = sum(e.losses["total"] for e in events[-3:]) / 3
    assert last < first, (first, last)
    assert model.training["steps_done"] == 12 and model.training["size"] == 32
    data = load_model(out).training["data"]  # the card names its photos and, unless told, says no terms
    assert data["images"] == len(list(photos.iterdir())) and data["folders"] == [photos.name]
    assert data["terms"].startswith("not stated")


def test_existing_model_is_kept_unless_forced(tmp_path, photos, styles):
    out = tmp_path / "m.pt"
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="exists; pass force"):
        train(styles, [photos], out, config=TrainConfig.from_options(**TINY))
    assert out.read_bytes() == b"precious"
    train(styles, [photos], out, config=TrainConfig.from_options(**TINY), force=True)
    assert load_model(out).styles == ["starry_night", "wave"]


def test_cancel_saves_a_checkpoint_and_resume_goes_on(tmp_path, photos, styles):
    out = tmp_path / "m.pt"
    token = impasto.CancelToken()
    seen = []

    def on_step(event):
        seen.append(event.step)
        if event.step == 2:
            token.cancel()

    config = TrainConfig.from_options(**{**TINY, "steps": 5, "checkpoint_every": 100})
    with pytest.raises(StylizeInterrupted) as stop:
        train(styles, [photos], out, config=config, callback=on_step, cancel=token)
    assert stop.value.cancelled and checkpoint_path(out).exists() and not out.exists()
    resumed = []
    train(styles, [photos], out, config=config, resume=True, callback=lambda e: resumed.append(e.step))
    assert seen == [1, 2] and resumed == [3, 4, 5]
    assert out.exists() and not checkpoint_path(out).exists()


def test_unreadable_photos_are_skipped_with_a_warning(tmp_path, photos, styles):
    data = tmp_path / "data"
    data.mkdir()
    for p in photos.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    (data / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        model = train(styles, [data], tmp_path / "m.pt", config=TrainConfig.from_options(**{**TINY, "steps": 1}))
    assert model.training["steps_done"] == 1 and (tmp_path / "m.pt").exists()  # trained on the readable ones


def test_bad_training_inputs(tmp_path, styles):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.jpg").write_text("hello")
    with pytest.raises(InputError, match="no readable images"):
        train(styles, [empty], tmp_path / "m.pt", config=TrainConfig.from_options(**TINY))
    for bad, message in ((dict(size=8), "size must be from 32 to 1024"), (dict(batch_size=0), "positive integer"),
                         (dict(batch_size=1000), "batch_size must be from 1 to 256"),
                         (dict(style_loss="mrf"), "valid: gram, meancov"),
                         (dict(size=64, jitter=17), "jitter must be an integer from 0 to a quarter of size"),
                         (dict(lattice_weight=-1), "lattice_weight must be a finite number >= 0")):
        with pytest.raises(InputError, match=message):
            TrainConfig.from_options(**bad)
    assert not (tmp_path / "m.pt").exists()


def test_adding_a_style_trains_only_its_own_parameters(tmp_path, tiny_model, photos, styles):
    from PIL import Image

    third = tmp_path / "scream.png"
    Image.open(styles[0]).rotate(90).save(third)
    out = tmp_path / "more.pt"
    grown = train([third], [photos], out, base=tiny_model, config=TrainConfig.from_options(**{**TINY, "lr": 1e-2}))
    old = load_model(tiny_model)
    assert grown.styles == ["starry_night", "wave", "scream"]
    new = load_model(out)
    x = torch.rand(1, 3, 40, 40)
    for i in range(2):  # the old styles are untouched, bit for bit in the stored float16
        assert torch.equal(new.forward(x, torch.eye(3)[i]), old.forward(x, torch.eye(2)[i]))
    assert not torch.equal(new.forward(x, torch.eye(3)[2]), new.forward(x, torch.eye(3)[0]))
    assert sample_path(out).exists()


def test_half_precision_storage_changes_no_output_pixel_visibly(tmp_path, photos, styles):
    """Model files store float16 weights: the largest change in an 8-bit output must stay below one level."""
    out = tmp_path / "m.pt"
    trained = train(styles, [photos], out, config=TrainConfig.from_options(**{**TINY, "steps": 6, "lr": 5e-3}))
    stored = load_model(out, precision="fp32")  # float32 arithmetic: only the storage differs
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    for i in range(2):
        w = torch.eye(2)[i]
        with torch.no_grad():
            full = trained.net.eval()(x, w[None])
        assert (stored.forward(x, w) - full).abs().max() * 255 < 1.0


def test_a_run_stopped_by_its_time_limit_keeps_its_checkpoint_and_resumes(tmp_path, photos, styles):
    """Training over several sittings: max_minutes writes the model and keeps the checkpoint;
    --resume then goes on from the step it reached, and the finished run removes it."""
    from impasto.fast.train import checkpoint_path

    out = tmp_path / "m.pt"
    config = TrainConfig.from_options(**{**TINY, "steps": 10**6, "max_minutes": 1e-9})
    first = train(styles, [photos], out, config=config)
    assert out.exists() and checkpoint_path(out).exists()
    reached = first.training["steps_done"]
    assert reached >= 1
    done = train(styles, [photos], out, config=TrainConfig.from_options(**{**TINY, "steps": reached + 2}), resume=True)
    assert done.training["steps_done"] == reached + 2
    assert not checkpoint_path(out).exists()


def test_jitter_moves_the_loss_window_and_still_trains(tmp_path, photos, styles, monkeypatch):
    """With jitter, the loss sees a random window of the output (a fixed crop would let texture
    align to the loss network's lattice); the step still lowers the loss."""
    import importlib

    train_module = importlib.import_module("impasto.fast.train")  # the module: impasto.fast.train is the function

    seen = []
    original = train_module.BatchContext

    def spy(**kwargs):
        seen.append(tuple(kwargs["content"][next(iter(kwargs["content"]))].shape[-2:]))
        return original(**kwargs)

    monkeypatch.setattr(train_module, "BatchContext", spy)
    events = []
    config = TrainConfig.from_options(**{**TINY, "steps": 12, "lr": 5e-3, "jitter": 8, "pooling": "avg"})
    train(styles, [photos], tmp_path / "m.pt", config=config, callback=events.append)
    assert set(seen) == {(3, 3)}  # relu4_2 of a 24 px window (32 - 8), not of the 32 px crop (4x4)
    first = sum(e.losses["total"] for e in events[:3]) / 3
    last = sum(e.losses["total"] for e in events[-3:]) / 3
    assert last < first, (first, last)


def test_the_lattice_term_joins_the_objective_and_the_log(tmp_path, photos, styles):
    events = []
    config = TrainConfig.from_options(**{**TINY, "size": 64, "steps": 3, "lattice_weight": 100.0})
    model = train(styles, [photos], tmp_path / "m.pt", config=config, callback=events.append)
    assert all(e.losses["lattice"] > 0 for e in events)  # a 64 px crop holds 2x2 windows of 32 px
    assert model.training["lattice_weight"] == 100.0
    plain = train(styles, [photos], tmp_path / "p.pt", config=TrainConfig.from_options(**{**TINY, "steps": 1}),
                  callback=events.append)
    assert "lattice" not in events[-1].losses and plain.training["lattice_weight"] == 0.0


def test_init_starts_every_weight_from_a_trained_model_with_a_fresh_optimizer(tmp_path, tiny_model, photos, styles):
    old = load_model(tiny_model, precision="fp32")
    still = TrainConfig.from_options(**{**TINY, "steps": 1, "lr": 1e-12, "downsample": "blur"})
    model = train(styles, [photos], tmp_path / "more.pt", config=still, init=tiny_model)
    for key, value in old.net.state_dict().items():  # a step of 1e-12 leaves the start as it was
        assert torch.allclose(model.net.state_dict()[key].float(), value, atol=1e-4), key
    assert model.net.downsample == "blur"  # resampling changes no weight: a model can take it on
    assert model.training["init"] == tiny_model.name and model.training["init_training"]["steps_done"] == 3
    fresh = train(styles, [photos], tmp_path / "fresh.pt", config=still)
    moved = max(float((fresh.net.state_dict()[k].float() - v).abs().max()) for k, v in old.net.state_dict().items())
    assert moved > 5e-4  # without init: the seed's weights, not the trained ones (3 Adam steps of 1e-3 away)
    with pytest.raises(InputError, match="same styles in the same order"):
        train(styles[::-1], [photos], tmp_path / "x.pt", config=still, init=tiny_model)
    with pytest.raises(InputError, match="width"):
        train(styles, [photos], tmp_path / "x.pt", config=TrainConfig.from_options(**{**TINY, "width": 0.25}),
              init=tiny_model)
    with pytest.raises(InputError, match="not both"):
        train(styles, [photos], tmp_path / "x.pt", config=still, init=tiny_model, base=tiny_model)


def test_teacher_steps_match_the_teacher_then_the_loss_network_takes_over(tmp_path, tiny_model, photos, styles,
                                                                          monkeypatch):
    """Distillation: a network of another shape first learns a trained model's output (no loss
    network run, so the steps are cheap), then trains on the usual terms with a fresh optimizer."""
    from impasto.losses.objective import TeacherTerm
    from impasto.ops.geometry import resize

    optimizers = []
    adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: optimizers.append(1) or adam(*a, **k))
    events = []
    config = TrainConfig.from_options(**{**TINY, "steps": 44, "teacher_steps": 40, "lr": 5e-3, "width": 0.25,
                                         "blocks": 2, "checkpoint_every": 100, "sample_every": 100})
    model = train(styles, [photos], tmp_path / "student.pt", config=config, callback=events.append,
                  teacher=tiny_model)
    assert [set(e.losses) for e in events] == [{"teacher", "total"}] * 40 + [{"content", "style", "tv", "total"}] * 4
    assert len(optimizers) == 2  # a fresh Adam when the loss network takes over
    first = sum(e.losses["teacher"] for e in events[:3]) / 3
    last = sum(e.losses["teacher"] for e in events[37:40]) / 3
    assert last < 0.5 * first, (first, last)
    assert (model.net.width, model.net.blocks) == (0.25, 2)
    assert model.training["teacher"] == tiny_model.name and model.training["teacher_steps"] == 40
    assert model.training["teacher_training"]["steps_done"] == 3
    # the student is closer to its teacher than an untrained network of its shape is
    teacher = load_model(tiny_model, precision="fp32")
    photo = resize(torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)), (32, 32))
    style = torch.tensor([[1.0, 0.0]])
    fresh = train(styles, [photos], tmp_path / "fresh.pt", config=config.replace(steps=1, teacher_steps=0))
    with torch.no_grad():
        target = teacher.net.eval()(photo, style)
        gap = {name: TeacherTerm()(m.net.eval()(photo, style), {}, BatchContext(teacher=target)).item()
               for name, m in (("student", model), ("fresh", fresh))}
    assert gap["student"] < 0.7 * gap["fresh"], gap


def test_bad_teacher_settings_are_refused_before_any_step(tmp_path, tiny_model, photos, styles):
    config = TrainConfig.from_options(**{**TINY, "teacher_steps": 2})
    with pytest.raises(InputError, match="teacher_steps needs a teacher"):
        train(styles, [photos], tmp_path / "x.pt", config=config)
    with pytest.raises(InputError, match="teacher needs teacher_steps > 0"):
        train(styles, [photos], tmp_path / "x.pt", config=TrainConfig.from_options(**TINY), teacher=tiny_model)
    with pytest.raises(InputError, match="same styles in the same order"):
        train(styles[::-1], [photos], tmp_path / "x.pt", config=config, teacher=tiny_model)
    with pytest.raises(InputError, match="not both"):
        train(styles, [photos], tmp_path / "x.pt", config=config, teacher=tiny_model, base=tiny_model)
    with pytest.raises(InputError, match="teacher_steps must be an integer >= 0"):
        TrainConfig.from_options(teacher_steps=-1)
    assert not any(tmp_path.iterdir())


def test_a_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, photos, styles,
                                                                                   monkeypatch):
    """A weight turned NaN before step 4 makes the real loss non-finite: weights once lost never come
    back, so the run stops there with a message (no skipping), writes no model, and the checkpoint of
    step 2 stays as it was (finite), so --resume goes on."""
    from impasto.errors import NonFiniteLossError
    from impasto.training import loop

    real_step, calls = loop.step, []

    def step(task, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            next(task.net.parameters()).data.fill_(float("nan"))
        return real_step(task, *args, **kwargs)

    monkeypatch.setattr(loop, "step", step)
    out = tmp_path / "m.pt"
    config = TrainConfig.from_options(**{**TINY, "steps": 6, "checkpoint_every": 2})
    with pytest.raises(NonFiniteLossError, match="diverged at step 4: the network's weights are not finite"):
        train(styles, [photos], out, config=config)
    assert not out.exists()
    kept = read_checkpoint(checkpoint_path(out))
    assert kept["step"] == 2 and all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    monkeypatch.undo()
    resumed = []
    train(styles, [photos], out, config=config, resume=True, callback=lambda e: resumed.append(e.step))
    assert resumed == [3, 4, 5, 6] and out.exists()


def _flat_batch(size: int = 32) -> torch.Tensor:
    colours = torch.tensor([[0.55, 0.7, 0.9], [0.2, 0.2, 0.2], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    return colours[:, :, None, None].expand(-1, -1, size, size).contiguous()


def test_flat_crops_give_finite_gradients_through_a_deep_network(styles):
    """A crop of one colour (sky, a wall) makes every channel of every normalization flat; its
    gradient used to grow 316-fold per normalization, to inf and NaN in every weight (issue 29)."""
    import importlib

    from impasto.nets.transformer import TransformerNet

    training = importlib.import_module("impasto.fast.train")
    cfg = TrainConfig.from_options(**{**TINY, "blocks": 9, "width": 0.25, "content_layers": ("relu3_1",),
                                      "tv_weight": 10, "precision": "fp32"})
    torch.manual_seed(0)
    net = TransformerNet(2, width=0.25, blocks=9)
    from impasto.io.image import load_image
    from impasto.nets.vgg import build_extractor

    extractor = build_extractor(cfg.loss.layers)
    objective = training.build_objective(extractor, [load_image(s).flat_rgb() for s in styles], cfg.loss, None, 1000.0)
    state = training._State(net, torch.optim.Adam(net.parameters(), lr=1e-3))
    batch = _flat_batch()
    names, values = training._forward_backward(state, objective, batch, torch.tensor([0, 1, 0, 1]), 0)
    assert torch.isfinite(values).all() and values[-1] == 1.0, dict(zip(names, values.tolist()))
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert any(p.grad.abs().sum() > 0 for p in net.parameters() if p.grad is not None)  # it still learns
    # a flat network output (what a flat crop gives): the objective's own gradient is finite too
    image = torch.full((4, 3, 32, 32), 0.5, requires_grad=True)
    with torch.no_grad():
        content = objective.features(batch, objective.content_layers)
    total, _ = objective(image, BatchContext(style_index=torch.tensor([0, 1, 0, 1]), content=content))
    total.backward()
    assert torch.isfinite(image.grad).all()


def test_the_flat_guard_changes_nothing_on_a_photo(photos):
    """Same outputs and same gradients as plain instance normalization on real crops."""
    from impasto.io.image import load_image
    from impasto.nets import transformer
    from impasto.ops.geometry import resize

    torch.manual_seed(1)
    net = transformer.TransformerNet(1, width=0.25, blocks=3)
    x = torch.cat([resize(load_image(p).flat_rgb(), (32, 32)) for p in sorted(photos.iterdir())[:2]])
    results = []
    for guard in (transformer._flat_safe, lambda x, normalized: normalized):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(transformer, "_flat_safe", guard)
            net.zero_grad()
            out = net(x, torch.ones(2, 1))
            out.square().mean().backward()
            results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (a, ga), (b, gb) = results
    assert torch.equal(a, b) and all(torch.equal(u, v) for u, v in zip(ga, gb))


def test_training_on_photos_of_one_colour_each_runs_to_the_end(tmp_path):
    """The CPU reproduction of issue 29: the shipped model's weights and loss settings, four photos of
    one colour each; it used to diverge at step 2."""
    from PIL import Image

    from impasto.gallery import painting

    styles = [painting(name) for name in load_model("multistyle6").styles]

    data = tmp_path / "flat"
    data.mkdir()
    for i, colour in enumerate([(140, 180, 230), (50, 50, 50), (255, 255, 255), (0, 0, 0)]):
        Image.new("RGB", (48, 40), colour).save(data / f"flat{i}.png")
    out = tmp_path / "m.pt"
    config = TrainConfig.from_options(**{**TINY, "steps": 3, "blocks": 9, "width": 0.25, "tv_weight": 10,
                                         "content_layers": ("relu3_1",), "lattice_weight": 1000, "lr": 1e-4})
    model = train(styles, [data], out, config=config, init="multistyle6")
    assert model.training["skipped_steps"] == [] and model.training["steps_done"] == 3
    assert all(torch.isfinite(p).all() for p in model.net.parameters())


def test_a_step_with_a_non_finite_gradient_is_skipped_named_and_counted(tmp_path, photos, styles, monkeypatch):
    """Every loss finite, one term's gradient not (at step 3): the step is skipped, the warning names
    the term, the run goes on, and the model card lists the step."""
    import importlib

    from impasto.losses.basic import tv_loss

    training = importlib.import_module("impasto.fast.train")
    def poisoned_tv(image):  # finite value, NaN gradient (0 * d sqrt(0)) during the third step
        value = tv_loss(image)
        return value + 0 * (image - image.detach()).sum().sqrt() if len(before) == 3 else value

    monkeypatch.setattr("impasto.losses.objective.tv_loss", poisoned_tv)
    before = {}
    from impasto.training import loop

    real_step = loop.step

    def step(task, *args, **kwargs):
        before[len(before) + 1] = [p.detach().clone() for p in task.net.parameters()]
        return real_step(task, *args, **kwargs)

    monkeypatch.setattr(loop, "step", step)
    events = []
    with pytest.warns(training.NonFiniteStepWarning, match=r"step 3 skipped: the gradient of tv is not finite"):
        model = train(styles, [photos], tmp_path / "m.pt", callback=events.append,
                      config=TrainConfig.from_options(**{**TINY, "steps": 5}))
    assert [e.step for e in events] == [1, 2, 3, 4, 5] and model.training["skipped_steps"] == [3]
    after_3 = before[4]
    assert all(torch.equal(a, b) for a, b in zip(before[3], after_3))  # step 3 changed no weight
    assert not all(torch.equal(a, b) for a, b in zip(before[2], before[3]))  # step 2 did
