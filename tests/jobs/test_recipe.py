from __future__ import annotations

import pytest

from impasto.errors import InputError
from impasto.jobs.recipe import Recipe, Runner, options_from_text, parse_option
from impasto.methods import get_method

OPTIMIZE = get_method("optimize")


def test_text_options_become_the_types_of_their_fields():
    got = options_from_text({"size": "256", "strength": "0.5", "upsample_detail": "false", "style_layers":
                             "relu1_1,relu2_1", "style_blend_weights": "1, 2", "seed": "", "preserve_color":
                             "luminance"}, OPTIMIZE)
    assert got == {"size": 256, "strength": 0.5, "upsample_detail": False, "style_layers": ("relu1_1", "relu2_1"),
                   "style_blend_weights": (1.0, 2.0), "seed": None, "preserve_color": "luminance"}


@pytest.mark.parametrize(("name", "text", "words"), [
    ("size", "big", "size must be an integer"),
    ("strength", "lots", "strength must be a number"),
    ("upsample_detail", "maybe", "true or false"),
    ("style_blend_weights", "1,x", "comma-separated numbers"),
])
def test_bad_text_options_name_the_field(name, text, words):
    with pytest.raises(InputError, match=words) as info:
        options_from_text({name: text}, OPTIMIZE)
    assert info.value.fields == (name,)


def test_unknown_and_unsafe_options_are_refused():
    with pytest.raises(InputError, match="unknown option 'colour'"):
        options_from_text({"colour": "red"}, OPTIMIZE)
    with pytest.raises(InputError, match="unknown option 'weights'"):  # a path on the server: never from a client
        options_from_text({"weights": "/etc/passwd"}, OPTIMIZE)


def test_parse_option_keeps_plain_strings():
    assert parse_option("style_loss", "mrf", str) == "mrf"


def test_recipe_round_trips_through_json():
    recipe = Recipe("optimize", {"size": 64, "style_blend_weights": (1.0, 3.0)})
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_recipe_check_refuses_bad_combinations():
    with pytest.raises(InputError, match="at least one style image"):
        Recipe("optimize", {}).check(0)
    with pytest.raises(InputError, match="size must be"):
        Recipe("optimize", {"size": -1}).check(1)
    with pytest.raises(InputError, match="paints only its own styles"):
        Recipe("multistyle6", {}).check(1)
    with pytest.raises(InputError, match="takes only"):
        Recipe("multistyle6", {"iterations": 3}).check(0)


def test_runner_keeps_networks_between_jobs(small_images, monkeypatch):
    """Counted, not read off the cache's keys (a cache that rebuilt the network under the same key
    each job passed that): the loss network is built once for two jobs and a third with other
    options, and rebuilt for another network; a fast model's file is read once."""
    from impasto.fast import model as fast_model
    from impasto.nets import vgg

    builds, reads = [], []
    real_build, real_read = vgg.build_extractor, fast_model.read_model_file
    def build(*args, **kwargs):
        builds.append(kwargs.get("pooling"))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(vgg, "build_extractor", build)
    monkeypatch.setattr(fast_model, "read_model_file", lambda *a, **k: (reads.append(1), real_read(*a, **k))[1])
    content, style = small_images
    runner = Runner()
    recipe = Recipe("optimize", {"size": 24, "iterations": 1, "initial_iterations": 1, "scales": 1})
    first = runner.run(recipe, content, [style])
    runner.run(recipe, content, [style])
    runner.run(Recipe("optimize", {**recipe.options, "strength": 0.5, "seed": 3}), content, [style])
    assert first.size == (24, 16) and len(builds) == 1
    runner.run(Recipe("optimize", {**recipe.options, "pooling": "avg"}), content, [style])
    assert builds == [builds[0], "avg"]  # another network is another build
    fast = Recipe("multistyle6", {"size": 24})
    assert runner.painter(fast, []).model is runner.painter(fast, []).model and len(reads) == 1


@pytest.mark.parametrize("text", ["٦٤", "1_28", "+64", "64.0"])
def test_form_integers_are_plain_ascii_digits(text):
    with pytest.raises(InputError, match="size must be an integer"):
        options_from_text({"size": text}, OPTIMIZE)
