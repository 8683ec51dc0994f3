import os

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import ImageError, InputError
from impasto.io.image import check_output_path, load_image, open_pil, save_image, to_pil
from impasto.ops.geometry import fit_long_edge

from ..conftest import EXAMPLES


def test_fit_long_edge_keeps_aspect():
    assert fit_long_edge((300, 400), 512) == (384, 512)
    assert fit_long_edge((400, 300), 100) == (100, 75)
    assert fit_long_edge((1, 1000), 10) == (1, 10)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK", "P", "1", "RGBA", "LA", "I;16", "I", "F"])
def test_modes_load_as_rgb(tmp_path, mode):
    img = Image.new("RGB", (6, 4), (200, 100, 50)).convert(mode)
    ext = ".tif" if mode in ("CMYK", "F", "I") else ".png"
    path = tmp_path / f"img{ext}"
    img.save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (1, 3, 4, 6) and loaded.rgb.dtype == torch.float32
    assert loaded.rgb.min() >= 0.0 and loaded.rgb.max() <= 1.0
    assert (loaded.alpha is not None) == (mode in ("RGBA", "LA"))


def test_16bit_precision_is_kept(tmp_path):
    arr = np.full((4, 4), 1000, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    loaded = load_image(path)
    assert loaded.rgb[0, 0, 0, 0].item() == pytest.approx(1000 / 65535, rel=1e-5)


def test_palette_transparency_becomes_alpha(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.info["transparency"] = 0
    path = tmp_path / "p.png"
    img.save(path, transparency=0)
    loaded = load_image(path)
    assert loaded.alpha is not None and loaded.alpha.max() == 0.0
    assert torch.allclose(loaded.flat_rgb(), torch.ones(1, 3, 4, 4))  # composited onto white


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("RGB", (16, 8), "red")
    img.paste((0, 0, 255), (8, 0, 16, 8))  # left half red, right half blue
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.size == (16, 8)  # (h, w): portrait after rotation
    rgb = loaded.rgb[0]
    top, bottom = rgb[:, 2:6].mean((1, 2)), rgb[:, 10:14].mean((1, 2))  # clockwise: the left half is on top
    assert top[0] > 0.8 and top[2] < 0.2 and bottom[2] > 0.8 and bottom[0] < 0.2, (top, bottom)


def test_bad_files(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not an image"):
        load_image(text)
    good = tmp_path / "good.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(good)
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(truncated)
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (2000, 2000)).save(path)  # 4 Mpx, a few KB on disk
    with pytest.raises(ImageError, match="too large to decode safely"):
        open_pil(path, max_pixels=1_000_000)


def test_tensor_inputs():
    assert load_image(torch.rand(3, 5, 7)).size == (5, 7)
    assert load_image(torch.rand(1, 1, 5, 7)).rgb.shape == (1, 3, 5, 7)
    with pytest.raises(InputError, match="must be"):
        load_image(torch.rand(2, 3, 5, 7))
    with pytest.raises(InputError, match="NaN"):
        load_image(torch.full((3, 2, 2), float("nan")))


def test_save_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    img = to_pil(torch.rand(1, 3, 8, 8))
    out = tmp_path / "out.png"
    save_image(img, out)
    assert Image.open(out).size == (8, 8)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    before = out.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(img, out)
    assert out.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temporary file left behind


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_output_formats_follow_extension(tmp_path, ext):
    out = tmp_path / f"o{ext}"
    save_image(to_pil(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8)), out)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".tif": "TIFF"}[ext]
    assert Image.open(out).format == fmt


def test_check_output_path(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    with pytest.raises(InputError, match="one of the inputs"):
        check_output_path(src, [str(src)])
    with pytest.raises(InputError, match="output folder does not exist"):
        check_output_path(tmp_path / "nope" / "o.png", [])
    with pytest.raises(InputError, match="unsupported output extension"):
        check_output_path(tmp_path / "o.gif", [])
    check_output_path(tmp_path / "o.png", [str(src)])


def test_a_jpeg_used_small_is_decoded_small_and_alike(tmp_path):
    """reduce_to: DCT-domain decoding keeps at least twice the edge it will be used at, and the
    picture at that edge is the same as from the full decode (within JPEG noise)."""
    from impasto.ops.geometry import fit_long_edge, resize

    path = tmp_path / "big.jpg"
    Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((2000, 1200)).save(path, quality=92)
    full = load_image(path)
    small = load_image(path, reduce_to=100)
    assert full.size == (1200, 2000)
    assert 200 <= max(small.size) < 500 and small.size == (150, 250)  # 1/8 scale
    a = resize(full.rgb, fit_long_edge(full.size, 100))
    b = resize(small.rgb, fit_long_edge(small.size, 100))
    assert (a - b).abs().mean() < 2 / 255
    assert load_image(path, reduce_to=1500).size == full.size  # no reduction below twice the edge
    png = tmp_path / "big.png"
    Image.open(path).save(png)
    assert load_image(png, reduce_to=100).size == full.size  # only JPEGs are drafted
