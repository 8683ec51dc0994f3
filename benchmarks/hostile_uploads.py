"""How long a real server's web process spends refusing hostile image uploads.

    python benchmarks/hostile_uploads.py [--chunks 1600000] [--scans 15000]

Starts `impasto serve` on localhost and submits, as the content image, files whose structure no
real encoder writes: 8- and 16-bit PNGs with empty chunks before or after their image data, and
a progressive JPEG with thousands of repeated scans. Each is refused from a bounded walk of its
headers (:mod:`impasto.io.guards`) before any decoder reads it; the target is 2 s each, for 8-
and 16-bit files alike (issue 42, item 1: a 16-bit flood held the web process 15-40 s when
Pillow's EXIF read walked it first). Prints the status, the detail and the seconds per file, then
that an ordinary photo is still accepted, with the machine's CPU.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from common import EXAMPLES, ROOT, cpu_name

sys.path.insert(0, str(ROOT))
from tests.serve.server import Server


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_flood(deep: bool, before: bool, count: int) -> bytes:
    import png

    buffer = io.BytesIO()
    rows = np.random.default_rng(0).integers(0, 255 if not deep else 65535, (400, 600 * 3))
    png.Writer(600, 400, greyscale=False, bitdepth=16 if deep else 8).write(buffer, rows.tolist())
    data = buffer.getvalue()
    at = data.index(b"IDAT" if before else b"IEND") - 4
    return data[:at] + _chunk(b"tEXt") * count + data[at:]


def jpeg_scans(extra: int) -> bytes:
    image = Image.open(EXAMPLES / "lighthouse.jpg").convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    starts = [i for i in range(data.index(b"\xff\xda"), len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    smallest = min((data[a:b] for a, b in zip(starts, [*starts[1:], len(data) - 2])), key=len)
    return data[:-2] + smallest * extra + b"\xff\xd9"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1_600_000, help="empty chunks in each PNG flood")
    parser.add_argument("--scans", type=int, default=15_000, help="repeated scans in the JPEG")
    args = parser.parse_args()
    files = {f"{bits}-bit PNG, {args.chunks:,} empty chunks {where} its image data":
             png_flood(bits == 16, where == "before", args.chunks)
             for bits in (8, 16) for where in ("before", "after")}
    files[f"progressive JPEG, {args.scans:,} extra scans"] = jpeg_scans(args.scans)
    files["an ordinary photo (accepted)"] = (EXAMPLES / "lighthouse.jpg").read_bytes()
    print(f"CPU: {cpu_name()} (`python benchmarks/hostile_uploads.py`)\n")
    print("| upload | MB | status | seconds | detail |\n|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp), args=("--max-upload-mb", "64")) as server, \
            httpx.Client(timeout=120) as http:
        for name, data in files.items():
            start = time.perf_counter()
            r = http.post(server.url + "/api/jobs", data={"style": "starry_night", "size": "64"},
                          files={"content": ("upload", data, "application/octet-stream")})
            took = time.perf_counter() - start
            detail = r.json().get("detail", "") if r.status_code != 202 else "queued"
            print(f"| {name} | {len(data) / 1e6:.1f} | {r.status_code} | {took:.2f} | {detail} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
