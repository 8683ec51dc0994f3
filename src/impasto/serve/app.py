"""The web service: a page at ``/`` and a REST API under ``/api``, on FastAPI.

The web process only checks requests (:mod:`.forms`), stores jobs
(:class:`impasto.jobs.store.JobStore`) and streams their progress (:mod:`.routes`); worker
processes (:mod:`.workers`, :mod:`impasto.jobs.worker`) run them, so the page stays responsive
during a job. The app starts the workers and starts each again if it dies.

Every bad request gets a 4xx with ``{"detail": "one line naming the problem"}``: too large (413),
not an image (415), bad options or too many pixels (422), unknown job (404), queue full (429), no token (401).
Uploaded file names are never used: the store names every file itself.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import InputError
from ..jobs.database import redact
from ..jobs.store import JobStore
from .forms import HTTPProblem, cut
from .routes import add_info_routes, add_job_routes
from .settings import Settings
from .workers import Workers

STATIC = Path(__file__).with_name("static")


def create_app(settings: Settings) -> FastAPI:
    store = JobStore(settings.data, settings.queue, lease=settings.lease)
    workers = Workers(settings) if settings.worker and settings.workers > 0 else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        store.remove_orphans(60.0 if settings.queue else 0.0)  # a submit cut short by kill -9 left its upload
        if workers is not None:
            workers.start()
        yield
        if workers is not None:
            workers.stop()
        store.close()

    # With a token, the OpenAPI document and its pages are off: they would answer without it.
    open_docs = settings.token is None
    app = FastAPI(title="impasto", version="1", lifespan=lifespan, docs_url="/docs" if open_docs else None,
                  redoc_url="/redoc" if open_docs else None, openapi_url="/openapi.json" if open_docs else None,
                  description="Neural style transfer as a service: submit a photo and a painting, watch it "
                              "repaint, download the result.")
    app.add_middleware(HeadAsGet)
    app.state.store = store
    app.state.workers = workers
    _add_error_handlers(app, store.errors)
    auth = [Depends(_authorizer(settings.token))]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_info_routes(app, auth, settings, store, workers)
    add_job_routes(app, auth, settings, store)
    return app


def _add_error_handlers(app: FastAPI, store_errors: tuple[type[BaseException], ...]) -> None:
    @app.exception_handler(HTTPProblem)
    async def problem(_: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"detail": cut(exc.detail)}, status_code=exc.status, headers=exc.headers)

    async def store_broken(_: Request, exc: Exception) -> JSONResponse:
        # the job database cannot be read or written (a full disk, a database down or restarting): the
        # service is unavailable for now; the message never carries the database's URL or password
        line = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        return JSONResponse({"detail": cut(f"the job store cannot be used ({line}); try again later")},
                            status_code=503, headers={"Retry-After": "30"})

    for error in store_errors:
        app.add_exception_handler(error, store_broken)  # type: ignore[arg-type]

    @app.exception_handler(OSError)
    async def disk_error(_: Request, exc: OSError) -> JSONResponse:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return JSONResponse({"detail": "No space left on device: the server's disk is full; try again later"},
                                status_code=507, headers={"Retry-After": "30"})
        raise exc

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer is a list of error objects; every other 4xx here is one line naming the field
        first = (exc.errors() or [{}])[0]
        where = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body", "header")]
        field = where[-1] if where else "a parameter"
        expected = {"int_parsing": "an integer", "float_parsing": "a number", "bool_parsing": "true or false"}.get(
            str(first.get("type", "")), "valid")
        given = first.get("input")
        return JSONResponse({"detail": cut(f"{field} must be {expected}; got {given!r}"), "fields": where[-1:]},
                            status_code=422)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": cut(str(exc)), "fields": list(getattr(exc, "fields", ()))}, status_code=422)


QUERY_TOKEN_PATHS = re.compile(r"^/api/(jobs/[^/]+/(events|preview|thumbnail|result)|gallery/[^/]+)$")
"""What a browser loads without headers (an EventSource, an <img>, a download link): only these GETs
may carry the token as ``?token=``; every other call sends ``Authorization: Bearer TOKEN``."""


def _authorizer(token: str | None) -> Any:
    def authorized(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, sent = header.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
        else:
            query = request.query_params.get("token")
            ok = (query is not None and request.method in ("GET", "HEAD")
                  and QUERY_TOKEN_PATHS.match(request.url.path) is not None
                  and hmac.compare_digest(query.encode(), token.encode()))
        if not ok:
            raise HTTPProblem(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                              {"WWW-Authenticate": 'Bearer realm="impasto"'})

    return authorized


class HeadAsGet:
    """HEAD answers as GET would, without the body (FastAPI routes answer only the methods they name)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Any) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
