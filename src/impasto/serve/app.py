"""The web service: a page at ``/`` and a REST API under ``/api``, on FastAPI.

The web process only checks requests, stores jobs (:class:`impasto.jobs.store.JobStore`) and
streams their progress; a worker process (:mod:`impasto.jobs.worker`) runs them, so the page stays
responsive during a job. The app starts that worker and starts it again if it dies.

Every bad request gets a 4xx with ``{"detail": "one line naming the problem"}``: too large (413),
not an image (415), bad options or too many pixels (422), unknown job (404), queue full (429), no token (401).
Uploaded file names are never used: the store names every file itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import PIL.Image
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from ..errors import ImageError, InputError
from ..jobs.recipe import MODEL_OPTIONS, OPTIMIZE, Recipe, options_from_text
from ..jobs.store import JobStore, QueueFull
from .settings import Limits, Settings

STATIC = Path(__file__).with_name("static")

# Options a web client may set for the optimize method. Paths (weights, init images), devices and
# memory settings stay the operator's: a client never names a file on the server.
WEB_OPTIONS = (
    "size", "iterations", "initial_iterations", "scales", "start_size", "scale_ratio", "upsample_detail",
    "style_scale", "content_weight", "style_weight", "strength", "tv_weight", "content_layers", "style_layers",
    "style_layer_weights", "style_blend_weights", "normalization", "style_loss", "mrf_stride", "style_rotations",
    "style_scales", "optimizer", "learning_rate", "ema_decay", "init", "seed", "preserve_color", "pooling",
)
WEB_MODEL_OPTIONS = tuple(o for o in MODEL_OPTIONS if o not in ("tile", "device"))


class HTTPProblem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _image_extension(data: bytes, what: str, limits: Limits) -> str:
    """Check that ``data`` is an image Pillow can decode within the pixel limit; its file extension."""
    from ..io.image import decode_image

    try:
        decode_image(data, what, max_pixels=limits.max_input_pixels)
    except ImageError as exc:
        # over the pixel limit (a decompression bomb, or just too big): 422; not an image at all: 415
        raise HTTPProblem(422 if "too large" in str(exc) else 415, str(exc)) from None
    with PIL.Image.open(io.BytesIO(data)) as img:  # decoded fine above; only its format is read here
        fmt = img.format or ""
    return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
            "GIF": ".gif"}.get(fmt, ".img")


@functools.lru_cache(maxsize=8)
def _model(name: str) -> Any:
    """A shipped model, loaded once per web process (only to check style names and blends)."""
    from ..fast.model import load_model

    return load_model(name)


VIDEO_CONTAINERS = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}
MEDIA_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
               ".webm": "video/webm"}


def _content_extension(data: bytes, limits: Limits) -> str:
    """The content is an image, or else a video (the video method); its file extension."""
    try:
        return _image_extension(data, "content", limits)
    except HTTPProblem as problem:
        if problem.status != 415:
            raise
    try:
        import av
    except ImportError:
        raise HTTPProblem(415, "content is not an image (videos need impasto[video] on the server)") from None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise HTTPProblem(415, "content is neither an image nor a video")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            seconds = (container.duration or 0) / 1_000_000 or float((stream.duration or 0) * (stream.time_base or 0))
            names = container.format.name.split(",")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise HTTPProblem(415, "content is neither an image nor a video Pillow or FFmpeg can read") from None
    if width * height > limits.max_input_pixels:
        raise HTTPProblem(422, f"video frames of {width}x{height} are over the limit of "
                               f"{limits.max_input_pixels / 1e6:.0f} Mpx")
    if seconds > limits.max_video_seconds:
        raise HTTPProblem(422, f"video of {seconds:.1f} s is longer than this server's limit of "
                               f"{limits.max_video_seconds:g} s")
    return next((ext for name, ext in VIDEO_CONTAINERS.items() if name in names), ".mp4")  # mp4 before mov


def _at_most(name: str, value: int, limit: int) -> None:
    if value > limit:
        raise InputError(f"{name} {value} is above this server's limit of {limit}", fields=(name,))


def build_recipe(fields: dict[str, str], n_style_files: int, style_names: list[str], limits: Limits) -> Recipe:
    """The recipe the form describes, checked against the limits; InputError names the field."""
    from ..fast.model import shipped_models
    from ..gallery import painting

    method = fields.pop("method", OPTIMIZE) or OPTIMIZE
    if method != OPTIMIZE and method not in shipped_models():
        raise InputError(f"unknown method {method!r}; valid: {', '.join([OPTIMIZE, *sorted(shipped_models())])}",
                         fields=("method",))
    if method == OPTIMIZE:
        options = options_from_text(fields, WEB_OPTIONS)
        if options.get("init", "content") not in ("content", "noise"):
            raise InputError("init must be content or noise", fields=("init",))
        for name in style_names:
            painting(name)
        recipe = Recipe(OPTIMIZE, options)
        recipe.check(n_style_files + len(style_names))
        cfg = recipe.config()
        _at_most("size", cfg.optimize.size, limits.max_size)
        _at_most("iterations", max(cfg.optimize.iterations, cfg.optimize.initial_iterations or 0),
                 limits.max_iterations)
        return recipe
    options = options_from_text(fields, WEB_MODEL_OPTIONS)
    if len(style_names) > 1:
        raise InputError("a fast model takes one style name (or style_blend_weights)", fields=("style",))
    if style_names:
        options["style"] = style_names[0]
    options.setdefault("size", min(512, limits.max_size))
    recipe = Recipe(method, options)
    recipe.check(n_style_files)
    _at_most("size", options["size"], limits.max_size)
    _model(method).style_vector(options.get("style"), options.get("style_blend_weights"))
    if options.get("preserve_color") not in (None, "luminance"):
        raise InputError("a fast model preserves color with luminance only", fields=("preserve_color",))
    return recipe


class WorkerProcess:
    """The worker subprocess, started again if it exits while the service runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True, name="impasto-worker-supervisor")

    def _start(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "impasto.jobs.worker", "--data", str(self.settings.data),
               "--parent", str(os.getpid())]
        if self.settings.device:
            cmd += ["--device", self.settings.device]
        cmd += ["--keep-days", str(self.settings.keep_days)]
        return subprocess.Popen(cmd)

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            self.proc = self._start()
            while self.proc.poll() is None and not self.stopping.wait(0.5):
                pass
            if self.proc.returncode == 0:  # asked to stop (SIGTERM, as on shutdown): not a crash
                return
            if not self.stopping.is_set():
                print(f"impasto: the worker exited ({self.proc.returncode}); starting it again", file=sys.stderr)
                self.stopping.wait(1.0)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def create_app(settings: Settings) -> FastAPI:
    store = JobStore(settings.data)
    limits = settings.limits
    worker = WorkerProcess(settings) if settings.worker else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            worker.stop()

    app = FastAPI(title="impasto", version="1", lifespan=lifespan,
                  description="Neural style transfer as a service: submit a photo and a painting, watch it "
                              "repaint, download the result.")
    app.state.store = store

    @app.exception_handler(HTTPProblem)
    async def problem(_: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "fields": list(getattr(exc, "fields", ()))}, status_code=422)

    def authorized(request: Request) -> None:
        if settings.token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), settings.token.encode()):
            raise HTTPProblem(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'")

    def job_or_404(job_id: str) -> Any:
        job = store.get(job_id)
        if job is None:
            raise HTTPProblem(404, f"no job {job_id!r}")
        return job

    auth = [Depends(authorized)]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

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

    @app.get("/api/methods", dependencies=auth, summary="The methods: optimize, and each shipped fast model")
    def methods() -> list[dict[str, Any]]:
        from ..fast.model import read_model_file, shipped_models

        out: list[dict[str, Any]] = [{"name": OPTIMIZE, "styles": None, "options": list(WEB_OPTIONS)}]
        for name, path in sorted(shipped_models().items()):
            out.append({"name": name, "styles": read_model_file(path)["styles"], "options": list(WEB_MODEL_OPTIONS)})
        return out

    @app.get("/api/limits", dependencies=auth, summary="This server's limits")
    def get_limits() -> dict[str, Any]:
        return dict(limits.__dict__)

    @app.post("/api/jobs", dependencies=auth, status_code=202, summary="Submit a job",
              description="Multipart form: file `content` (an image, or a video for the video method); `style` "
                          "one or more times, each a file or the "
                          "name of a gallery painting; `method` (optimize or a shipped model); and options "
                          "named like the config fields (size, strength, style_weight, preserve_color...). "
                          "Answers 202 with {\"id\": ...}.")
    async def submit(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        max_bytes = int(limits.max_upload_mb * 2**20)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise HTTPProblem(413, f"upload of {int(declared) / 2**20:.1f} MB is above the limit of "
                                   f"{limits.max_upload_mb:g} MB")
        try:
            form = await request.form(max_files=limits.max_styles + 1, max_fields=64)
        except Exception as exc:  # malformed multipart, too many parts
            raise HTTPProblem(400 if "multipart" in str(exc).lower() else 422,
                              f"could not read the form: {exc}") from None
        try:
            content, styles, names, fields = None, [], [], {}
            total = 0
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read(max_bytes + 1)
                    total += len(data)
                    if total > max_bytes:
                        raise HTTPProblem(413, f"upload is above the limit of {limits.max_upload_mb:g} MB")
                    if key == "content":
                        if content is not None:
                            raise InputError("give one content image", fields=("content",))
                        content = data
                    elif key == "style":
                        styles.append(data)
                    else:
                        raise InputError(f"unexpected file field {key!r}; files go in 'content' and 'style'",
                                         fields=(key,))
                elif key == "style":
                    if value.strip():  # an empty field (an unset form input) is no style
                        names.append(value.strip())
                elif key == "content":
                    raise InputError("content must be an image file", fields=("content",))
                elif key in fields:
                    raise InputError(f"option {key!r} given twice", fields=(key,))
                else:
                    fields[key] = value
        finally:
            await form.close()
        if content is None:
            raise InputError("no content image: send the photo as the file field 'content'", fields=("content",))
        if len(styles) + len(names) > limits.max_styles:
            raise InputError(f"at most {limits.max_styles} styles", fields=("style",))
        recipe = await asyncio.to_thread(build_recipe, fields, len(styles), names, limits)
        content_ext = await asyncio.to_thread(_content_extension, content, limits)
        style_files = [(await asyncio.to_thread(_image_extension, s, f"style {i + 1}", limits), s)
                       for i, s in enumerate(styles)]
        try:
            job_id = await asyncio.to_thread(store.submit, recipe.to_json(), (content_ext, content),
                                             [*style_files, *(f"gallery:{n}" for n in names)]
                                             if not recipe.is_model else [], limits.max_active)
        except QueueFull as exc:
            raise HTTPProblem(429, str(exc)) from None
        return JSONResponse({"id": job_id, "status": "queued"}, status_code=202,
                            headers={"Location": f"/api/jobs/{job_id}"})

    @app.get("/api/jobs", dependencies=auth, summary="Recent jobs, newest first")
    def list_jobs(limit: int = 50) -> list[dict[str, Any]]:
        return [j.public() for j in store.recent(max(1, min(limit, 500)))]

    @app.get("/api/jobs/{job_id}", dependencies=auth, summary="A job's status and progress")
    def get_job(job_id: str) -> dict[str, Any]:
        return job_or_404(job_id).public()

    @app.delete("/api/jobs/{job_id}", dependencies=auth, summary="Cancel a job")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job_or_404(job_id)
        job = store.cancel(job_id)
        return job.public() if job is not None else {}

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

    @app.get("/api/jobs/{job_id}/events", dependencies=auth, summary="Server-sent events: the job's progress",
             description="`event: progress` with the job's JSON whenever it changes (its `preview` counter "
                         "bumps when a newer preview image is ready), then `event: end` when it is done, "
                         "failed or cancelled.")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        job_or_404(job_id)

        async def stream() -> AsyncIterator[str]:
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

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/health", summary="Liveness, and how many jobs are in each state")
    def health() -> dict[str, Any]:
        return {"ok": True, "jobs": store.counts(),
                "worker": worker is not None and worker.proc is not None and worker.proc.poll() is None}

    return app
