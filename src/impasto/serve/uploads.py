"""Receiving upload bodies: a bounded number at once, a share of them per client, and no client
that stalls or trickles may hold one.

The web process holds each body in memory while it arrives (at most ``--max-upload-mb`` each), so
the number received at once is bounded (:data:`UPLOADS_AT_ONCE`, beyond which the next gets 503).
Within that bound one client address may hold at most :data:`UPLOADS_PER_CLIENT` (half), beyond
which it gets 429: eight idle connections from one client, re-opened every 15 s, locked every
other client out before. A body must start within :data:`FIRST_BYTE_SECONDS` and may then pause
at most :data:`UPLOAD_IDLE_SECONDS`, and average at least :data:`UPLOAD_MIN_BYTES_PER_SECOND`
after that; otherwise 408.

The client is the connection's address. Behind a reverse proxy every client has the proxy's: run
uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so the address is the client's
(impasto's own ``serve`` binds the app directly, with no proxy in front).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import ClientDisconnect, Request

from .forms import HTTPProblem

UPLOADS_AT_ONCE = 8
"""Bodies being received at once; more get 503 with Retry-After (at most 8 x --max-upload-mb in memory)."""
UPLOADS_PER_CLIENT = 4
"""Bodies one client address may be sending at once (half of :data:`UPLOADS_AT_ONCE`); more get 429."""
FIRST_BYTE_SECONDS = 5.0
"""An upload whose body has not started this long after its request is dropped (408): an idle
connection must not hold a slot for the whole :data:`UPLOAD_IDLE_SECONDS`."""
UPLOAD_IDLE_SECONDS = 15.0
"""An upload that sends nothing for this long is dropped (408): a stalled or trickling client must
not hold its buffer and its connection."""
UPLOAD_MIN_BYTES_PER_SECOND = 64 * 1024
"""The slowest an upload may be on average, after its first UPLOAD_IDLE_SECONDS (a 25 MB upload has
6.7 minutes)."""
RETRY_SECONDS = 5


class UploadSlots:
    """Who is sending a body now, by client address. One per app: its event loop is the only
    writer, and no await falls between a check and its count, so no lock is needed."""

    def __init__(self) -> None:
        self.by_client: Counter[str] = Counter()

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """A slot for ``client`` while the body arrives; 503 when every slot is taken, 429 when
        this client holds its share. The limits are read at each call (tests lower them)."""
        busy = sum(self.by_client.values())
        if busy >= UPLOADS_AT_ONCE:
            raise HTTPProblem(503, f"the server is receiving {UPLOADS_AT_ONCE} uploads; try again shortly",
                              {"Retry-After": str(RETRY_SECONDS)})
        if self.by_client[client] >= min(UPLOADS_PER_CLIENT, UPLOADS_AT_ONCE):
            raise HTTPProblem(429, f"this client is already sending {self.by_client[client]} uploads, the most "
                                   "one client may; wait for one to finish", {"Retry-After": str(RETRY_SECONDS)})
        self.by_client[client] += 1
        try:
            yield
        finally:
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def read_body(request: Request, max_bytes: int, max_mb: float, slots: UploadSlots) -> None:
    """Read the body into ``request`` under a slot of ``slots``, counting as it streams, and stop
    at the limit: a chunked upload (no Content-Length) is refused at ``max_bytes``, not after it
    is spooled in full."""
    with slots.hold(client_address(request)):
        chunks: list[bytes] = []
        total, started = 0, time.monotonic()
        stream = request.stream().__aiter__()
        while True:
            wait = UPLOAD_IDLE_SECONDS if chunks else min(FIRST_BYTE_SECONDS, UPLOAD_IDLE_SECONDS)
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), wait)
            except StopAsyncIteration:
                break
            except ClientDisconnect:  # the client gave up mid-upload: one line in the log, no traceback
                raise HTTPProblem(400, "the client closed the connection before its upload ended") from None
            except asyncio.TimeoutError:  # on Python 3.10 not the builtin TimeoutError
                what = "upload stalled" if chunks else "upload did not start"
                raise HTTPProblem(408, f"{what}: nothing for {wait:g} s") from None
            total += len(chunk)
            if total > max_bytes:
                raise HTTPProblem(413, f"upload is above the limit of {max_mb:g} MB")
            elapsed = time.monotonic() - started
            if elapsed > UPLOAD_IDLE_SECONDS and total < UPLOAD_MIN_BYTES_PER_SECOND * elapsed:
                raise HTTPProblem(408, f"upload too slow: {total / elapsed / 1024:.0f} KB/s, under "
                                       f"{UPLOAD_MIN_BYTES_PER_SECOND // 1024} KB/s")
            chunks.append(chunk)
        request._body = b"".join(chunks)  # what request.form() parses from now on
