"""The service's routes: information (gallery, methods, limits, health) and jobs (submit, follow,
fetch, cancel). Each ``add_*`` function adds its routes to the app."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from ..jobs.store import JobStore, QueueFull
from ..methods import available, get_method
from .forms import HTTPProblem, build_recipe, content_info, image_extension, read_submission, video_work
from .settings import Settings
from .uploads import UploadSlots, read_body
from .workers import Workers
from .workers import health as worker_health

MEDIA_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
               ".webm": "video/webm"}
MIN_FREE_BYTES = 256 * 2**20
"""Free disk the data folder keeps beyond one upload; below it, submissions get 507."""
RETRY_AFTER = 30
"""Seconds a client told 429 (the queue is full) should wait before it tries again."""
SUBMIT_HELP = ("Multipart form: file `content` (an image, or a video for the video method); `style` one or more "
               "times, each a file or the name of a gallery painting (for a method that takes style images) or "
               "the name of one of the method's own styles; `method` (see /api/methods); and the method's options "
               "(size, strength, style_weight, preserve_color...). Answers 202 with {\"id\": ...}.")


def add_info_routes(app: FastAPI, auth: list[Any], settings: Settings, store: JobStore,
                    workers: Workers | None) -> None:
    @app.get("/api/gallery", dependencies=auth, summary="The gallery paintings, by name")
    def gallery() -> list[dict[str, str]]:
        from ..gallery import paintings

        return [{"name": name, "url": f"/api/gallery/{name}"} for name in paintings()]

    @app.get("/api/gallery/{name}", dependencies=auth, summary="A gallery painting")
    def gallery_image(name: str) -> FileResponse:
        from ..gallery import paintings

        found = paintings()
        if name not in found:
            raise HTTPProblem(404, f"no gallery painting {name!r}")
        return FileResponse(found[name], media_type="image/jpeg")

    @app.get("/api/methods", dependencies=auth, summary="The methods: optimize, each shipped fast model, plug-ins")
    def methods() -> list[dict[str, Any]]:
        return [method.describe() for method in available().values()]

    @app.get("/api/limits", dependencies=auth, summary="This server's limits")
    def get_limits() -> dict[str, Any]:
        return dict(settings.limits.__dict__)

    @app.get("/api/health", summary="Liveness, the workers, and how many jobs are in each state")
    def health() -> dict[str, Any]:
        listed = worker_health(workers, store.workers(), settings.lease)
        return {"ok": True, "queue": store.describe(), "jobs": store.counts(),
                "worker": any(w["alive"] for w in listed), "workers": listed}


def _job_or_404(store: JobStore, job_id: str) -> Any:
    job = store.get(job_id)
    if job is None:
        raise HTTPProblem(404, f"no job {job_id!r}")
    return job


def add_job_routes(app: FastAPI, auth: list[Any], settings: Settings, store: JobStore) -> None:
    _add_submit_route(app, auth, settings, store)
    _add_file_routes(app, auth, store)

    @app.get("/api/jobs", dependencies=auth, summary="Recent jobs, newest first")
    def list_jobs(limit: int = 50) -> list[dict[str, Any]]:
        return [j.public() for j in store.recent(max(1, min(limit, 500)))]

    @app.get("/api/jobs/{job_id}", dependencies=auth, summary="A job's status and progress")
    def get_job(job_id: str) -> dict[str, Any]:
        return _job_or_404(store, job_id).public()

    @app.delete("/api/jobs/{job_id}", dependencies=auth, summary="Cancel a job")
    def cancel_job(job_id: str) -> dict[str, Any]:
        _job_or_404(store, job_id)
        job = store.cancel(job_id)
        return job.public() if job is not None else {}

    @app.get("/api/jobs/{job_id}/events", dependencies=auth, summary="Server-sent events: the job's progress",
             description="`event: progress` with the job's JSON whenever it changes (its `preview` counter "
                         "bumps when a newer preview image is ready), then `event: end` when it is done, "
                         "failed or cancelled.")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        _job_or_404(store, job_id)
        return StreamingResponse(_job_events(store, job_id, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _add_submit_route(app: FastAPI, auth: list[Any], settings: Settings, store: JobStore) -> None:
    limits = settings.limits
    slots = UploadSlots()  # this app's

    @app.post("/api/jobs", dependencies=auth, status_code=202, summary="Submit a job", description=SUBMIT_HELP)
    async def submit(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        max_bytes = int(limits.max_upload_mb * 2**20)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise HTTPProblem(413, f"upload of {int(declared) / 2**20:.1f} MB is above the limit of "
                                   f"{limits.max_upload_mb:g} MB")
        free = shutil.disk_usage(store.root).free
        if free < max_bytes + MIN_FREE_BYTES:
            raise HTTPProblem(507, f"the server's disk is nearly full ({free / 2**20:.0f} MB free); try again later",
                              {"Retry-After": str(RETRY_AFTER)})
        await read_body(request, max_bytes, limits.max_upload_mb, slots)
        try:
            form = await request.form(max_files=limits.max_styles + 1, max_fields=64)
        except Exception as exc:  # malformed multipart, too many parts or files: the request is bad
            detail = str(getattr(exc, "detail", "") or exc)
            raise HTTPProblem(400, f"could not read the form: {detail}") from None
        try:
            got = await read_submission(form, max_bytes, limits)
        finally:
            await form.close()
        recipe = await asyncio.to_thread(build_recipe, got.fields, len(got.styles), got.names, limits)
        assert got.content is not None
        content_ext, size, frames = await asyncio.to_thread(content_info, got.content, limits)
        if size is None and (work := video_work(recipe, frames)) > limits.max_video_work:
            raise HTTPProblem(422, f"this video job asks for about {work:.0f} megapixel-iterations ({frames} frames), "
                                   f"above this server's limit of {limits.max_video_work:g}: lower size, or send a "
                                   "shorter clip")
        if size is not None:  # a photo too small for the method is a 422 now, not a failed job
            await asyncio.to_thread(get_method(recipe.method, model_files=False).check_content, recipe.options, size)
        style_files = [(await asyncio.to_thread(image_extension, s, f"style {i + 1}", limits), s)
                       for i, s in enumerate(got.styles)]
        styles: list[tuple[str, bytes] | str] = [*style_files, *(f"gallery:{n}" for n in got.names)] \
            if get_method(recipe.method, model_files=False).takes_styles else []
        try:
            job_id = await asyncio.to_thread(store.submit, recipe.to_json(), (content_ext, got.content), styles,
                                             limits.max_active)
        except QueueFull as exc:
            raise HTTPProblem(429, str(exc), {"Retry-After": str(RETRY_AFTER)}) from None
        return JSONResponse({"id": job_id, "status": "queued"}, status_code=202,
                            headers={"Location": f"/api/jobs/{job_id}"})


def _add_file_routes(app: FastAPI, auth: list[Any], store: JobStore) -> None:
    def job_or_404(job_id: str) -> Any:
        return _job_or_404(store, job_id)

    def job_file(job_id: str, name: str, media: str, what: str) -> FileResponse:
        job_or_404(job_id)
        path = store.folder(job_id) / name
        if not path.exists():
            raise HTTPProblem(404, f"job {job_id} has no {what} yet")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/result", dependencies=auth, summary="The finished image (PNG) or video")
    def result(job_id: str) -> Response:
        job = job_or_404(job_id)
        if job.status != "done":
            raise HTTPProblem(409 if job.status in ("queued", "running") else 404,
                              f"job {job_id} is {job.status}; no result")
        ext = Path(job.result_name).suffix
        return FileResponse(store.folder(job_id) / job.result_name, media_type=MEDIA_TYPES[ext],
                            filename=f"impasto-{job_id[:8]}{ext}")

    @app.get("/api/jobs/{job_id}/preview", dependencies=auth, summary="The image as it forms (JPEG)")
    def preview(job_id: str) -> FileResponse:
        return job_file(job_id, "preview.jpg", "image/jpeg", "preview")

    @app.get("/api/jobs/{job_id}/thumbnail", dependencies=auth, summary="A small copy of the result (JPEG)")
    def thumbnail(job_id: str) -> FileResponse:
        return job_file(job_id, "thumb.jpg", "image/jpeg", "thumbnail")


async def _job_events(store: JobStore, job_id: str, request: Request) -> AsyncIterator[str]:
    """A job's state whenever it changes, a keep-alive every 15 s, and its end."""
    last: dict[str, Any] | None = None
    beat = time.monotonic()
    while not await request.is_disconnected():
        job = await asyncio.to_thread(store.get, job_id)
        if job is None:
            return
        state = job.public()
        if state != last:
            last, beat = state, time.monotonic()
            yield f"event: progress\ndata: {json.dumps(state)}\n\n"
        if job.status not in ("queued", "running"):
            yield f"event: end\ndata: {json.dumps(state)}\n\n"
            return
        if time.monotonic() - beat > 15:
            beat = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(0.2)
