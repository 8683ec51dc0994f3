"""Colour profiles: inputs are converted to sRGB on load, outputs are tagged sRGB."""

import io
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from impasto.io.image import ColorProfileWarning, encode_image, load_image, open_pil, srgb_profile

ADOBE_RGB_PHOTO = Path(__file__).resolve().parents[2].parent / "shared" / "images" / "content" / "rocket.jpg"


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def display_p3_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with Display P3's primaries (D50-adapted, as
    Apple's profile lists them) and a 2.2 gamma: written here, so the tests ship no ICC file."""
    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)

    text = b"Display P3 (impasto test)\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", round(2.2 * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
            (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)), (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _gradient() -> Image.Image:
    x = np.linspace(0, 255, 64)
    rgb = np.stack([np.tile(x, (48, 1)), np.tile(x[::-1], (48, 1)), np.full((48, 64), 128)], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def _tagged(tmp_path, profile: bytes, name: str = "tagged.png") -> Path:
    path = tmp_path / name
    _gradient().save(path, icc_profile=profile)
    return path


def test_a_photo_in_another_colour_space_is_converted_to_srgb_on_load(tmp_path):
    other = display_p3_profile()
    path = _tagged(tmp_path, other)
    loaded = np.asarray(open_pil(path), float)
    want = ImageCms.profileToProfile(Image.open(path), ImageCms.ImageCmsProfile(io.BytesIO(other)),
                                     ImageCms.createProfile("sRGB"), outputMode="RGB")
    assert np.abs(loaded - np.asarray(want, float)).max() <= 1
    assert np.abs(loaded - np.asarray(_gradient(), float)).mean() > 3  # P3's wider colours, moved into sRGB
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(other)))
    assert "Display P3" in description


def test_an_srgb_photo_and_a_photo_without_a_profile_are_left_as_they_are(tmp_path):
    for path in (_tagged(tmp_path, srgb_profile()), tmp_path / "plain.png"):
        if not path.exists():
            _gradient().save(path)
        assert np.array_equal(np.asarray(open_pil(path)), np.asarray(_gradient()))


def test_a_broken_profile_warns_in_one_line_and_reads_as_srgb(tmp_path):
    path = _tagged(tmp_path, b"not an icc profile at all" * 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = open_pil(path)
    assert np.array_equal(np.asarray(image), np.asarray(_gradient()))
    (w,) = [w for w in caught if issubclass(w.category, ColorProfileWarning)]
    assert "colour profile cannot be used" in str(w.message) and "\n" not in str(w.message)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_every_output_that_can_hold_a_profile_is_tagged_srgb(fmt):
    data = encode_image(_gradient(), fmt)
    profile = Image.open(io.BytesIO(data)).info.get("icc_profile")
    assert profile is not None
    assert "srgb" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).lower()


@pytest.mark.skipif(not ADOBE_RGB_PHOTO.exists(), reason="needs ../shared/images (an Adobe RGB photo)")
def test_the_adobe_rgb_photo_reads_as_its_srgb_copy(tmp_path):
    raw = Image.open(ADOBE_RGB_PHOTO)
    srgb_copy = ImageCms.profileToProfile(raw, ImageCms.ImageCmsProfile(io.BytesIO(raw.info["icc_profile"])),
                                          ImageCms.createProfile("sRGB"), outputMode="RGB")
    copy_path = tmp_path / "copy.png"
    srgb_copy.save(copy_path)
    got, want = load_image(ADOBE_RGB_PHOTO).rgb, load_image(copy_path).rgb
    assert (got - want).abs().mean() * 255 < 2


@pytest.mark.skipif(not ADOBE_RGB_PHOTO.exists(), reason="needs ../shared/images (the Adobe RGB photo)")
@pytest.mark.parametrize("command", [["stylize"], ["apply", "multistyle6"]])
def test_stylize_and_apply_give_the_adobe_rgb_photo_the_colours_of_its_srgb_copy(tmp_path, command, capsys):
    from impasto.cli import main

    raw = Image.open(ADOBE_RGB_PHOTO)
    srgb_copy = ImageCms.profileToProfile(raw, ImageCms.ImageCmsProfile(io.BytesIO(raw.info["icc_profile"])),
                                          ImageCms.createProfile("sRGB"), outputMode="RGB")
    srgb_copy.save(tmp_path / "copy.png")
    ignored = raw.convert("RGB")  # the Adobe RGB numbers read as sRGB: what ignoring the profile gives
    ignored.info.pop("icc_profile", None)
    ignored.save(tmp_path / "ignored.png")
    style = [str(Path(__file__).resolve().parents[2] / "examples" / "starry_night.jpg")]
    flags = ["--size", "256", "--quiet"] + (["--strength", "0", "--iterations", "5", "--seed", "0"]
                                            if command == ["stylize"] else [])
    outs = []
    photos = (("adobe", ADOBE_RGB_PHOTO), ("copy", tmp_path / "copy.png"), ("ignored", tmp_path / "ignored.png"))
    for name, photo in photos:
        out = tmp_path / f"{name}-painted.png"
        argv = [*command, str(photo), *(style if command == ["stylize"] else []), "-o", str(out), *flags]
        assert main(argv) == 0, capsys.readouterr().err
        outs.append(out)
    a, b, ignored = (np.asarray(Image.open(p).convert("RGB"), float) for p in outs)
    # The same colours, within 2.5/255 (a network passes on the 8-bit rounding of the two conversions,
    # a little amplified), and far from what ignoring the profile gives (16/255 for multistyle6).
    assert np.abs(a - b).mean() < 2.5
    assert np.abs(a - b).mean() < 0.3 * np.abs(ignored - b).mean()
    profile = ImageCms.ImageCmsProfile(io.BytesIO(Image.open(outs[0]).info["icc_profile"]))
    description = ImageCms.getProfileDescription(profile)
    assert "srgb" in description.lower().replace(" ", "")
