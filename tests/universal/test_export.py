"""The universal method's networks through ONNX: the same painting as PyTorch in float32, the
transforms staying in PyTorch around onnxruntime."""

from __future__ import annotations

import pytest

from ..conftest import EXAMPLES

pytest.importorskip("onnxruntime")


def test_onnx_networks_paint_as_pytorch_does(tmp_path):
    from impasto.universal.export import INDEX, OnnxNetworks
    from impasto.universal.stylize import Universal, stylize_universal

    model = Universal(precision="fp32")
    # the networks are what differs; wct's one inverse root passes their float error on less amplified than
    # ost's two at 64 px, where relu5_1 has 16 pixels for 512 channels
    kw = dict(model=model, size=64, output="tensor", levels=("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1"),
              transform="wct")
    torch_run = stylize_universal(EXAMPLES / "lighthouse.jpg", EXAMPLES / "starry_night.jpg", **kw)
    model.use_onnx(tmp_path / "wct")
    onnx_run = stylize_universal(EXAMPLES / "lighthouse.jpg", EXAMPLES / "starry_night.jpg", **kw)
    assert (torch_run - onnx_run).abs().max() < 2e-3
    assert (tmp_path / "wct" / INDEX).exists() and len(list((tmp_path / "wct").glob("*.onnx"))) == 10
    # a folder is reused without exporting again
    again = OnnxNetworks(tmp_path / "wct")
    assert again.levels == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def test_export_bad_input_is_one_line(tmp_path, capsys):
    from impasto.cli import main
    from impasto.errors import InputError
    from impasto.universal.export import OnnxNetworks

    (tmp_path / "file").write_text("x")
    for argv, message in (
        (["export", "wct", "-o", str(tmp_path / "m.onnx")], "-o must be a folder"),
        (["export", "wct", "-o", str(tmp_path / "file")], "-o must be a folder"),
        (["export", "multistyle6", "-o", str(tmp_path / "m.onnx"), "--decoders", "x.pt"], "--decoders goes with"),
        (["export", "multistyle6", "-o", str(tmp_path / "file")], "the output must be a .onnx file"),
        (["export", "wct", "-o", ""], "-o must name a folder for wct's files; got an empty name"),
        (["export", "wct", "-o", "  "], "got an empty name"),
        (["export", "wct", "-o", str(tmp_path)], "is not empty; choose a new folder, or pass --force"),
    ):
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing replaced
    with pytest.raises(InputError, match="not an exported universal model folder"):
        OnnxNetworks(tmp_path)


def test_export_never_replaces_an_onnx_file_unasked(tmp_path, capsys):
    """Issue 42, item 7: `export MODEL -o existing.onnx` overwrote the file, and --force was refused
    for fast models, while train and export wct refuse to overwrite without it. One rule now."""
    pytest.importorskip("onnx")
    from impasto.cli import main

    existing = tmp_path / "m.onnx"
    existing.write_bytes(b"my earlier export")
    assert main(["export", "multistyle6", "-o", str(existing), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "exists; choose another name, or pass --force to replace it" in err and err.count("\n") == 1, err
    assert existing.read_bytes() == b"my earlier export"
    assert main(["export", "multistyle6", "-o", str(existing), "--force", "--quiet"]) == 0
    assert existing.read_bytes()[:2] != b"my" and existing.stat().st_size > 100_000
