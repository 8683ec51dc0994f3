"""Guards on untrusted image bytes run before any decoder (issue 42, item 1): a 16-bit PNG of 1.6
million empty chunks held the web process 15-40 s, because Pillow read its EXIF (walking every
chunk) before the bounded chunk walk ran. Every reader of untrusted bytes now walks first."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import PIL.Image
import pytest
from PIL import Image

from impasto.errors import ImageTooComplex
from impasto.io.guards import MAX_PNG_CHUNKS, check_file_structure, check_structure
from impasto.serve import Limits
from tests.serve.conftest import make_client


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(deep: bool) -> bytes:
    """A small 8-bit or 16-bit RGB PNG."""
    buffer = io.BytesIO()
    if deep:
        import png

        rows = np.random.default_rng(0).integers(0, 65535, (40, 48 * 3), dtype=np.uint16)
        png.Writer(48, 40, greyscale=False, bitdepth=16).write(buffer, rows.tolist())
    else:
        Image.new("RGB", (48, 40), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def flood(deep: bool, where: str, count: int = 1_600_000) -> bytes:
    """``count`` empty tEXt chunks before the image data or after it (before IEND)."""
    data = _png(deep)
    head = data[:33]  # the signature and IHDR
    idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    if where == "before the image data":
        return head + data[33:idat] + _chunk(b"tEXt") * count + data[idat:]
    return data[:iend] + _chunk(b"tEXt") * count + data[iend:]


CASES = [(deep, where) for deep in (False, True) for where in ("before the image data", "after the image data")]


@pytest.fixture
def no_decoder(monkeypatch):
    """Any Pillow or pypng read of the bytes fails the test: the walk must come first."""
    def never(*args, **kwargs):
        pytest.fail("a decoder read the bytes before the bounded walk refused them")

    import png

    monkeypatch.setattr(PIL.Image, "open", never)
    monkeypatch.setattr(png, "Reader", never)


@pytest.mark.parametrize(("deep", "where"), CASES)
def test_a_chunk_flood_is_refused_before_any_decoder_reads_it(deep, where, no_decoder, tmp_path):
    from impasto.io.image import decode_image, load_image
    from impasto.serve.forms import HTTPProblem, content_info, image_extension

    bomb = flood(deep, where)
    for check in (lambda: content_info(bomb, Limits()), lambda: image_extension(bomb, "style 1", Limits())):
        with pytest.raises(HTTPProblem) as refused:
            check()
        assert refused.value.status == 422 and f"more than {MAX_PNG_CHUNKS} chunks" in refused.value.detail
    with pytest.raises(ImageTooComplex, match="'upload' is a PNG of more than"):
        decode_image(bomb)  # the worker's and the batch's decode of bytes
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(ImageTooComplex, match=r"bomb\.png' is a PNG of more than"):
        load_image(path)  # every file a command reads


@pytest.mark.parametrize(("deep", "where"), CASES)
def test_the_service_refuses_a_chunk_flood_as_content_or_style_with_a_422(deep, where, tmp_path):
    client = make_client(tmp_path)
    with client:
        bomb = flood(deep, where, count=MAX_PNG_CHUNKS + 10)
        fine = _png(deep)
        for files, style in (([("content", ("bomb.png", bomb, "image/png"))], {"style": "starry_night"}),
                             ([("content", ("fine.png", fine, "image/png")),
                               ("style", ("bomb.png", bomb, "image/png"))], {})):
            response = client.post("/api/jobs", files=files, data={"size": "32", "iterations": "2", **style})
            assert response.status_code == 422, response.text
            assert f"more than {MAX_PNG_CHUNKS} chunks" in response.json()["detail"]
        ordinary = flood(deep, where, count=100)
        response = client.post("/api/jobs", files=[("content", ("ok.png", ordinary, "image/png"))],
                               data={"size": "32", "iterations": "2", "style": "starry_night"})
        assert response.status_code == 202, response.text


def test_the_walks_take_bytes_views_and_files_alike(tmp_path):
    bomb = flood(False, "after the image data", count=MAX_PNG_CHUNKS + 1)
    for view in (bomb, bytearray(bomb), memoryview(bomb)):
        with pytest.raises(ImageTooComplex):
            check_structure(view, "x")
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageTooComplex):
        check_file_structure(tmp_path / "bomb.png", "x")
    (tmp_path / "empty.png").write_bytes(b"")
    check_file_structure(tmp_path / "empty.png", "x")  # nothing to walk: the decoder says what is wrong
    check_structure(flood(True, "before the image data", count=MAX_PNG_CHUNKS - 10), "x")
    check_structure(b"\x89PNG\r\n\x1a\n\x00\x00", "x")  # a PNG cut short is left to the decoder
