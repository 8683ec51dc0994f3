"""16 bits per sample: 16-bit RGB PNG and TIFF read and written at full precision, everywhere."""

import io
import warnings
import zlib

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageOps

from impasto.cli import main
from impasto.errors import ImageError, InputError
from impasto.io.image import (
    BitDepthWarning,
    as_output,
    encode_image,
    load_image,
    output_bit_depth,
    save_image,
    source_bit_depth,
)
from impasto.jobs.recipe import Recipe

from .test_color_profiles import display_p3_profile


def gradient(height: int = 32, width: int = 600) -> np.ndarray:
    """A smooth (H, W, 3) gradient in [0, 1]: far more than 256 levels along each row."""
    ramp = np.linspace(0.0, 1.0, width)
    return np.stack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)),
                     np.full((height, width), 0.4)], -1)


def to16(samples: np.ndarray) -> np.ndarray:
    return (samples * 65535.0 + 0.5).astype(np.uint16)


def write_png16(path, arr: np.ndarray, extra: list | None = None) -> None:
    """A 16-bit PNG written with pypng, with ``extra`` chunks (eXIf, iCCP) after IHDR."""
    h, w, planes = arr.shape
    buffer = io.BytesIO()
    png.Writer(w, h, greyscale=False, alpha=planes == 4, bitdepth=16).write(buffer, arr.reshape(h, -1))
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    with open(path, "wb") as fh:
        png.write_chunks(fh, [chunks[0], *(extra or []), *chunks[1:]])


def read16(path) -> np.ndarray:
    """A 16-bit output read back by another library than the one that wrote it (OpenCV), as RGB(A)."""
    cv2 = pytest.importorskip("cv2")
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None and arr.dtype == np.uint16, (path, None if arr is None else arr.dtype)
    return arr[..., [2, 1, 0, 3][: arr.shape[-1]]]


def levels(arr: np.ndarray) -> int:
    """Distinct values of the first channel along the middle row."""
    return len(np.unique(arr[arr.shape[0] // 2, :, 0]))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_files_are_read_at_full_precision(tmp_path, ext):
    samples = gradient()
    path = tmp_path / f"deep{ext}"
    if ext == ".png":
        write_png16(path, to16(samples))
    else:
        tifffile.imwrite(path, to16(samples), photometric="rgb", compression="zlib")
    assert Image.open(path).mode == "RGB"  # what Pillow alone would give: 8 bits
    loaded = load_image(path)
    assert loaded.bit_depth == 16 and source_bit_depth(path) == 16
    rgb = loaded.rgb[0].permute(1, 2, 0).numpy()
    assert np.abs(rgb - samples).max() < 1e-4
    assert levels(rgb) > 500


def test_16bit_rgba_png_keeps_its_alpha_at_16_bits(tmp_path):
    samples = np.concatenate([gradient(), gradient()[..., :1][..., ::-1]], -1)  # alpha: another ramp
    samples[..., 3] = np.linspace(1.0, 0.0, samples.shape[1])[None]
    write_png16(tmp_path / "a.png", to16(samples))
    loaded = load_image(tmp_path / "a.png")
    assert loaded.alpha is not None and len(torch.unique(loaded.alpha)) > 500
    save_image(loaded, tmp_path / "out.png")
    assert np.array_equal(read16(tmp_path / "out.png"), to16(samples))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_outputs_have_no_8bit_step_and_are_tagged_srgb(tmp_path, ext):
    samples = gradient()
    tensor = torch.from_numpy(samples.astype(np.float32)).permute(2, 0, 1)[None]
    out = tmp_path / f"out{ext}"
    save_image(tensor, out, bit_depth=16)
    back = read16(out)
    assert np.array_equal(back, to16(samples.astype(np.float32)))  # exactly round(x * 65535)
    assert levels(back) > 500
    profile = ImageCms.ImageCmsProfile(io.BytesIO(Image.open(out).info["icc_profile"]))
    assert "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", "")
    save_image(tensor, tmp_path / f"eight{ext}")  # a tensor's default: 8 bits
    assert np.asarray(Image.open(tmp_path / f"eight{ext}")).dtype == np.uint8


def test_a_16bit_file_keeps_16_bits_from_file_to_file_and_an_8bit_one_stays_8(tmp_path):
    write_png16(tmp_path / "deep.png", to16(gradient()))
    save_image(load_image(tmp_path / "deep.png"), tmp_path / "a.tif")  # a 16-bit source: 16 by default
    assert levels(read16(tmp_path / "a.tif")) > 500
    Image.fromarray((gradient() * 255).astype(np.uint8)).save(tmp_path / "flat.png")
    save_image(load_image(tmp_path / "flat.png"), tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "RGB" and source_bit_depth(tmp_path / "flat.png") == 8


def test_bit_depth_16_is_refused_for_formats_that_hold_8_and_other_depths_everywhere():
    image = torch.rand(1, 3, 8, 8)
    for fmt in ("JPEG", "WEBP"):
        with pytest.raises(InputError, match="PNG or TIFF"):
            encode_image(image, fmt, bit_depth=16)
        assert output_bit_depth(None, load_image(image), fmt) == 8
    for bad in (12, 0, True, "16"):
        with pytest.raises(InputError, match="bit_depth must be 8 or 16"):
            encode_image(image, "PNG", bit_depth=bad)
        with pytest.raises(InputError, match="bit_depth"):
            Recipe("optimize", {}, bad).check(1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_16bit_png_is_turned_upright_by_its_exif_orientation_as_pillow_turns_an_8bit_one(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    eight = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(eight).save(tmp_path / "eight.png", exif=exif.tobytes())
    write_png16(tmp_path / "deep.png", eight.astype(np.uint16) * 257, [(b"eXIf", exif.tobytes()[6:])])
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "eight.png")))
    got = load_image(tmp_path / "deep.png").rgb[0].permute(1, 2, 0).numpy()
    assert got.shape == expected.shape
    assert np.abs(got * 255 - expected).max() < 1e-3


def test_a_16bit_tiff_in_display_p3_is_converted_like_an_8bit_one_and_stays_smooth(tmp_path):
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    icc = display_p3_profile()
    tifffile.imwrite(tmp_path / "p3.tif", eight.astype(np.uint16) * 257, photometric="rgb", iccprofile=icc)
    Image.fromarray(eight).save(tmp_path / "p3.png", icc_profile=icc)
    deep, flat = load_image(tmp_path / "p3.tif"), load_image(tmp_path / "p3.png")
    assert (deep.rgb - flat.rgb).abs().max() * 255 < 0.01  # at 8-bit colours: littleCMS's own answer
    assert (deep.rgb - load_image(Image.fromarray(eight)).rgb).abs().mean() * 255 > 2  # and it was converted
    t = np.linspace(0.0, 1.0, 600)[None, :, None]
    muted = np.broadcast_to(np.array([0.2, 0.3, 0.5]) + t * np.array([0.6, 0.4, 0.0]), (8, 600, 3))  # in gamut
    tifffile.imwrite(tmp_path / "ramp.tif", to16(muted), photometric="rgb", iccprofile=icc)
    ramp = load_image(tmp_path / "ramp.tif").rgb[0].permute(1, 2, 0).numpy()
    assert levels(ramp) > 400  # between 8-bit colours, smooth: 0.6 of a ramp holds 154 8-bit levels


def test_a_16bit_tiff_in_a_compression_tifffile_cannot_decode_is_read_at_8_bits_with_a_warning(tmp_path):
    cv2 = pytest.importorskip("cv2")
    try:
        import imagecodecs  # noqa: F401
        pytest.skip("imagecodecs is installed: LZW decodes at 16 bits")
    except ImportError:
        pass
    cv2.imwrite(str(tmp_path / "lzw.tif"), to16(gradient())[..., ::-1])  # OpenCV writes LZW
    with pytest.warns(BitDepthWarning, match="imagecodecs"):
        loaded = load_image(tmp_path / "lzw.tif")
    assert loaded.bit_depth == 8
    assert np.abs(loaded.rgb[0].permute(1, 2, 0).numpy() - gradient()).max() < 1 / 255


def test_a_corrupt_16bit_png_is_a_one_line_image_error(tmp_path):
    write_png16(tmp_path / "deep.png", to16(gradient()))
    data = (tmp_path / "deep.png").read_bytes()
    idat = data.index(b"IDAT")
    (tmp_path / "cut.png").write_bytes(data[:idat + 40])
    with pytest.raises(ImageError, match="not a readable image") as info:
        load_image(tmp_path / "cut.png")
    assert "\n" not in str(info.value)
    broken = bytearray(data)
    broken[idat + 10: idat + 30] = zlib.compress(b"x")[:20].ljust(20, b"\0")
    (tmp_path / "broken.png").write_bytes(bytes(broken))
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "broken.png")


def test_as_output_gives_each_kind():
    rgb, alpha = torch.rand(1, 3, 4, 6), torch.rand(1, 1, 2, 3)
    assert as_output(rgb, None, "tensor") is rgb
    assert as_output(rgb, alpha, "pil").mode == "RGBA"
    loaded = as_output(rgb, alpha, "loaded", 16)
    assert loaded.bit_depth == 16 and loaded.alpha.shape == (1, 1, 4, 6)
    with pytest.raises(InputError, match="unknown output"):
        as_output(rgb, None, "jpeg")


# --- through the CLI, the batch runner and the service ---------------------------------------------

def test_stylize_writes_16_bits_for_a_16bit_photo_and_obeys_bit_depth(tmp_path, style_path, capsys):
    write_png16(tmp_path / "deep.png", to16(gradient(64, 512)))
    small = ["--size", "512", "--iterations", "2", "--quiet", "--seed", "0"]
    assert main(["stylize", str(tmp_path / "deep.png"), str(style_path), "-o", str(tmp_path / "o.png"),
                 "--strength", "0", *small]) == 0
    out = read16(tmp_path / "o.png")
    assert out.shape[:2] == (64, 512) and levels(out) > 256  # a smooth ramp, more levels than 8 bits hold
    assert main(["stylize", str(tmp_path / "deep.png"), str(style_path), "-o", str(tmp_path / "e.png"),
                 "--bit-depth", "8", *small]) == 0
    assert Image.open(tmp_path / "e.png").mode == "RGB" and np.asarray(Image.open(tmp_path / "e.png")).dtype == np.uint8
    capsys.readouterr()
    code = main(["stylize", str(tmp_path / "deep.png"), str(style_path), "-o", str(tmp_path / "x.jpg"),
                 "--bit-depth", "16", *small])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "PNG or TIFF" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.jpg").exists()


def test_apply_writes_16_bits_for_a_16bit_photo(tmp_path):
    write_png16(tmp_path / "deep.png", to16(gradient(64, 512)))
    assert main(["apply", "multistyle6", str(tmp_path / "deep.png"), "-o", str(tmp_path / "o.tif"),
                 "--size", "256", "--quiet"]) == 0
    assert read16(tmp_path / "o.tif").shape[:2] == (32, 256)


def test_batch_follows_each_photo_or_bit_depth(tmp_path):
    from impasto.jobs.batch import run_batch

    photos = tmp_path / "in"
    photos.mkdir()
    write_png16(photos / "deep.png", to16(gradient(32, 256)))
    Image.fromarray((gradient(32, 256) * 255).astype(np.uint8)).save(photos / "flat.png")
    run_batch(photos, [], tmp_path / "auto", Recipe("multistyle6", {"size": 128}))
    assert read16(tmp_path / "auto" / "deep.png").shape[:2] == (16, 128)
    assert Image.open(tmp_path / "auto" / "flat.png").mode == "RGB"
    run_batch(photos, [], tmp_path / "all16", Recipe("multistyle6", {"size": 128}, 16), fmt=".tif")
    assert read16(tmp_path / "all16" / "flat.tif").dtype == np.uint16
    with pytest.raises(InputError, match="PNG or TIFF"):
        run_batch(photos, [], tmp_path / "bad", Recipe("multistyle6", {"size": 128}, 16), fmt=".jpg")
    assert not (tmp_path / "bad").exists()


def test_the_service_returns_16_bits_for_a_16bit_photo_or_when_asked(tmp_path):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import make_client, run_queued

    write_png16(tmp_path / "deep.png", to16(gradient(32, 256)))
    deep = (tmp_path / "deep.png").read_bytes()
    flat = io.BytesIO()
    Image.fromarray((gradient(32, 256) * 255).astype(np.uint8)).save(flat, "PNG")
    with make_client(tmp_path) as client:
        def submit(data: bytes, **fields) -> str:
            response = client.post("/api/jobs", data={"method": "multistyle6", "size": "128", **fields},
                                   files=[("content", ("p.png", data, "image/png"))])
            assert response.status_code == 202, response.text
            return response.json()["id"]

        jobs = [submit(deep), submit(flat.getvalue()), submit(flat.getvalue(), bit_depth="16"),
                submit(deep, bit_depth="8")]
        bad = client.post("/api/jobs", data={"method": "multistyle6", "bit_depth": "12"},
                          files=[("content", ("p.png", deep, "image/png"))])
        assert bad.status_code == 422 and "bit_depth" in bad.json()["detail"]
        run_queued(client)
        depths = []
        for job in jobs:
            assert client.get(f"/api/jobs/{job}").json()["status"] == "done"
            (tmp_path / "r.png").write_bytes(client.get(f"/api/jobs/{job}/result").content)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                depths.append(source_bit_depth(tmp_path / "r.png"))
        assert depths == [16, 8, 16, 8]
        assert client.get(f"/api/jobs/{jobs[2]}").json()["bit_depth"] == 16
