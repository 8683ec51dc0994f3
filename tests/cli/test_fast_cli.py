import json
from pathlib import Path

from PIL import Image

from impasto.cli import main

from ..conftest import EXAMPLES, TINY, files_in


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def test_train_apply_export_end_to_end(tmp_path, photos, styles, capsys):
    model = tmp_path / "m.pt"
    flags = ["--size", TINY["size"], "--batch-size", 2, "--steps", 2, "--width", 0.125, "--blocks", 1,
             "--style-size", 64, "--workers", 0, "--quiet"]
    code, out = run(["train", *styles, "--data", photos, "-o", model, *flags], capsys)
    assert code == 0, out.err
    code, out = run(["train", *styles, "--data", photos, "-o", model, *flags], capsys)
    assert code == 2 and "exists; pass --force" in out.err
    code, out = run(["apply", model, EXAMPLES / "cat.jpg", "-o", tmp_path / "cat.png", "--style", "wave",
                     "--size", 80], capsys)
    assert code == 0 and max(Image.open(tmp_path / "cat.png").size) == 80
    folder = tmp_path / "outs"
    folder.mkdir()
    code, out = run(["apply", model, EXAMPLES / "cat.jpg", EXAMPLES / "lighthouse.jpg", "-o", folder,
                     "--size", 64, "--runtime", "onnx", "--style-blend-weights", "1,3", "--quiet"], capsys)
    assert code == 0 and files_in(folder) == {"cat.png", "lighthouse.png"}
    code, out = run(["export", model, "-o", tmp_path / "m.onnx"], capsys)
    assert code == 0 and (tmp_path / "m.onnx").stat().st_size > 1000


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, tiny_model, photos, styles, capsys):
    (tmp_path / "junk.pt").write_text("junk")
    before = files_in(tmp_path)
    cases = [
        (["apply", tmp_path / "junk.pt", EXAMPLES / "cat.jpg", "-o", tmp_path / "o.png"], "not an impasto model"),
        (["apply", "nope", EXAMPLES / "cat.jpg", "-o", tmp_path / "o.png"], "unknown model 'nope'"),
        (["apply", "wct", EXAMPLES / "cat.jpg", "-o", tmp_path / "o.png"],
         "not a trained model: impasto stylize PHOTO PAINTING -o OUT --method wct"),
        (["apply", tiny_model, EXAMPLES / "cat.jpg", "-o", tmp_path / "o.png", "--style", "x"],
         "valid: starry_night, wave"),
        (["apply", tiny_model, EXAMPLES / "cat.jpg", "-o", tmp_path / "o.png", "--style-blend-weights", "1,2,3"],
         "3 style blend weights for a model with 2 styles"),
        (["apply", tiny_model, EXAMPLES / "cat.jpg", EXAMPLES / "wave.jpg", "-o", tmp_path / "o.png"],
         "must be an existing folder"),
        (["train", *styles, "--data", photos, "-o", tmp_path / "m.pt", "--size", "8"], "--size must be from 32"),
        (["train", *styles, "--data", photos, "-o", tmp_path / "m.pt", "--batch-size", "999"],
         "--batch-size must be from 1 to 256"),
        (["train", *styles, "--data", tmp_path / "missing", "-o", tmp_path / "m.pt"], "does not exist"),
        (["train", *styles, "--data", photos, "-o", tmp_path / "m.pt", "--teacher", tiny_model],
         "a --teacher needs --teacher-steps > 0"),
        (["train", *styles[::-1], "--data", photos, "-o", tmp_path / "m.pt", "--teacher", tiny_model,
          "--teacher-steps", "5"], "same styles in the same order"),
        (["export", tmp_path / "junk.pt", "-o", tmp_path / "m.onnx"], "not an impasto model"),
    ]
    for argv, message in cases:
        code, out = run(argv, capsys)
        assert code == 2 and message in out.err, (argv, out.err)
        assert out.err.count("\n") == 1
    assert files_in(tmp_path) == before


def test_a_bad_image_among_many_is_skipped_and_reported(tmp_path, tiny_model, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    folder = tmp_path / "outs"
    folder.mkdir()
    code, out = run(["apply", tiny_model, EXAMPLES / "cat.jpg", bad, "-o", folder, "--size", 48, "--quiet"], capsys)
    assert code == 1 and "skipped" in out.err and "bad.jpg" in out.err
    assert files_in(folder) == {"cat.png"}


def test_models_lists_every_shipped_file_with_its_card(capsys):
    """`impasto models` listed the fast models only; it lists every shipped file, the wct decoders
    included, each with its data, the data's terms, its steps and its file's hash."""
    import hashlib

    code, out = run(["models", "--json"], capsys)
    assert code == 0
    rows = json.loads(out.out)
    assert [(r["name"], r["kind"], r["method"]) for r in rows] == [
        ("multistyle6", "fast model", "multistyle6"), ("decoders", "decoders", "wct")]
    fast, decoders = rows
    assert fast["styles"][0] == "starry_night" and decoders["levels"][-1] == "relu5_1"
    for row in rows:
        assert row["sha256"] == hashlib.sha256(Path(row["file"]).read_bytes()).hexdigest()
        assert row["data"]["images"] == 1000 and row["data"]["folders"] == ["imagenet-sample"]
        assert "non-commercial research and educational use" in row["data"]["terms"]
    assert fast["steps"] == 20_178 and decoders["steps"] == 7_610  # the cards' legs, summed (docs/models.md)
    assert "public domain" in fast["style_images"] and decoders["style_images"] is None
    code, out = run(["models"], capsys)
    assert code == 0
    text = out.out
    assert "decoders (decoders of --method wct)" in text and "trained 7,610 steps on 1000 photos" in text
    assert text.count("data terms: ImageNet sample") == 2


