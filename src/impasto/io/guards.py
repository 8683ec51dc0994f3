"""Guards on untrusted image bytes: bounded walks of a file's structure, run before any decoder.

Pillow and libjpeg walk whatever structure a file holds, in Python or without a bound: a PNG of
1.6 million empty chunks holds Pillow 11-40 s (its open walks the chunks before the image data,
its EXIF read every chunk after them), and a progressive JPEG of 15,000 tiny scans holds libjpeg
7 s. Real encoders write a few dozen chunks, or a few thousand image-data chunks, and 10 to a few
dozen scans. Each walk here reads only headers and markers, stops at its bound, and runs before
every other reader of the bytes (:func:`check_structure`): the web process's submit checks and
every decode (:func:`impasto.io.image.open_pil`, :func:`impasto.io.image.decode_image`).
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from typing import Union

from ..errors import ImageTooComplex

Bytes = Union[bytes, bytearray, memoryview, mmap.mmap]  # noqa: UP007 - a runtime alias, must work on 3.10

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_CHUNKS = 20_000
"""The most chunks a PNG may have. Real files have a few dozen, or a few thousand IDAT chunks for a
large image written in small ones (25 MB in 8 KB chunks is 3,200)."""
MAX_JPEG_SCANS = 100
"""The most scans a JPEG may have. Each scan of a progressive JPEG is a pass over the whole image's
coefficients, and libjpeg decodes as many as the file holds. Encoders write 10 (libjpeg's
progressive default) to a few dozen (mozjpeg); a baseline JPEG has one per colour component at most."""
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
"""The next marker after a scan's entropy-coded data (0xFF00 is a stuffed byte, 0xFFD0-D7 restarts)."""


def check_png_chunks(data: Bytes, name: str) -> None:
    """Refuse a PNG of more than :data:`MAX_PNG_CHUNKS` chunks, walking only the chunks' 8-byte
    headers (stopping at the bound). Other files, and a PNG that ends early, are left to the decoder."""
    if data[:8] != PNG_SIGNATURE:
        return
    offset, count, end = 8, 0, len(data)
    while offset + 8 <= end:
        (length,) = struct.unpack_from(">I", data, offset)
        count += 1
        if count > MAX_PNG_CHUNKS:
            raise ImageTooComplex(f"{name} is a PNG of more than {MAX_PNG_CHUNKS} chunks; save it again with an "
                                  "ordinary encoder")
        if data[offset + 4:offset + 8] == b"IEND":
            return
        offset += 12 + length  # header, data, CRC


def check_jpeg_scans(data: Bytes, name: str) -> None:
    """Refuse a JPEG of more than :data:`MAX_JPEG_SCANS` scans, walking its markers only (each
    segment by its length, each scan's data by a search in C for the next marker). A file that is
    not a well-formed JPEG is left to the decoder to judge."""
    if data[:2] != b"\xff\xd8":
        return
    pos, scans, end = 2, 0, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ImageTooComplex(f"{name} is a JPEG of more than {MAX_JPEG_SCANS} scans; save it again "
                                      "with an ordinary encoder")
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return
            pos = found.start()


def check_structure(data: Bytes, name: str) -> None:
    """Every bounded walk, in the order a reader must run them: before Pillow, pypng or libjpeg
    sees the bytes. Raises :class:`ImageTooComplex` (one line naming ``name``)."""
    check_png_chunks(data, name)
    check_jpeg_scans(data, name)


def check_file_structure(path: str | os.PathLike, name: str) -> None:
    """:func:`check_structure` over a file, mapped rather than read (the walks touch its headers)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            check_structure(data, name)
