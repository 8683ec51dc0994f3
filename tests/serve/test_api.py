from __future__ import annotations

import io
import itertools
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from impasto.serve import Limits
from tests.conftest import EXAMPLES
from tests.serve.conftest import TINY_JOB, jpeg, make_client, run_queued


def submit(client, data=None, files=None, **kw):
    """A tiny optimize job (or, if data names a method, just data) with a gallery style."""
    files = files if files is not None else [("content", ("photo.jpg", jpeg(), "image/jpeg"))]
    base = {} if data and "method" in data else TINY_JOB
    return client.post("/api/jobs", data={**base, "style": "starry_night", **(data or {})}, files=files, **kw)


def test_a_job_goes_from_queued_to_done_with_a_result_and_events(client):
    response = submit(client, data={"preserve_color": "luminance"})
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "queued"
    assert client.get(f"/api/jobs/{job_id}/result").status_code == 409
    run_queued(client)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done" and job["progress"] == 1.0 and "error" not in job
    assert job["options"] == {"size": 32, "iterations": 1, "initial_iterations": 2, "scales": 1,
                              "preserve_color": "luminance"}
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(result.content)).size == (32, 27)
    assert client.get(f"/api/jobs/{job_id}/thumbnail").status_code == 200
    stream = client.get(f"/api/jobs/{job_id}/events").text
    assert stream.startswith("event: progress\n") and "event: end\n" in stream
    assert json.loads(stream.split("event: end\ndata: ")[1])["status"] == "done"
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job_id]


def test_uploaded_styles_and_a_fast_model(client):
    style = ("style", ("painting.jpg", jpeg("wave.jpg", (40, 40)), "image/jpeg"))
    photo = ("content", ("photo.jpg", jpeg(), "image/jpeg"))
    two = client.post("/api/jobs", data={**TINY_JOB, "style": ""}, files=[photo, style, style])
    fast = client.post("/api/jobs", data={"method": "multistyle6", "style": "the_scream", "size": "40"},
                       files=[photo])
    assert two.status_code == fast.status_code == 202, (two.text, fast.text)
    run_queued(client)
    for response in (two, fast):
        job = client.get(f"/api/jobs/{response.json()['id']}").json()
        assert job["status"] == "done", job
    result = client.get(f"/api/jobs/{fast.json()['id']}/result")
    got = Image.open(io.BytesIO(result.content))
    assert got.size == (40, 33)
    # the pixels are the model's own for that photo and style, not just an image of the right size
    import numpy as np

    from impasto.fast import load_model

    expected = load_model("multistyle6").stylize(Image.open(io.BytesIO(jpeg())), style="the_scream", size=40)
    diff = np.abs(np.asarray(got.convert("RGB"), np.int16) - np.asarray(expected, np.int16))
    assert diff.max() <= 2, diff.max()


def test_cancel_a_queued_and_a_running_job(client, monkeypatch):
    from impasto.jobs import worker
    from impasto.jobs.worker import Worker

    monkeypatch.setattr(worker, "PROGRESS_EVERY", 0.0)  # report every step

    store = client.app.state.store
    queued = submit(client).json()["id"]
    assert client.delete(f"/api/jobs/{queued}").json()["status"] == "cancelled"
    running = submit(client, data={"iterations": "4"}).json()["id"]
    job = store.claim()
    assert job.id == running
    update = store.update

    def cancel_at_step_2(job_id, progress, message, preview=None, steps=None):
        if message.startswith("step 2"):
            client.delete(f"/api/jobs/{running}")  # the API call, mid-run
        return update(job_id, progress, message, preview, steps)

    store.update = cancel_at_step_2
    Worker(store).run(job)  # sees the flag at its next progress report and stops
    assert store.get(running).message == "cancelled"
    assert client.get(f"/api/jobs/{running}").json()["status"] == "cancelled"
    assert client.get(f"/api/jobs/{running}/result").status_code == 404
    # a cancelled job keeps no files: a client cancelling its uploads cannot fill the disk
    assert not store.folder(queued).exists() and not store.folder(running).exists()
    assert client.get(f"/api/jobs/{queued}/thumbnail").status_code == 404


def test_unknown_ids_get_404(client):
    for method, path in [("get", ""), ("get", "/result"), ("get", "/events"), ("get", "/preview"), ("delete", "")]:
        response = getattr(client, method)(f"/api/jobs/nope{path}")
        assert response.status_code == 404 and "no job 'nope'" in response.json()["detail"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("data", "files", "status", "words"), [
    ({}, [("content", ("x.jpg", b"not an image", "image/jpeg"))], 415, "neither an image nor a video"),
    ({}, [("content", ("x.png", _png_header(60000, 60000), "image/png"))], 422, "too large"),
    ({}, [], 422, "no content image"),
    ({"size": "4096"}, None, 422, "above this server's limit of 2048"),
    ({"size": "big"}, None, 422, "size must be an integer"),
    ({"strength": "2"}, None, 422, "strength must be a number from 0 to 1"),
    ({"iterations": "100000"}, None, 422, "iterations 100000 is above"),
    ({"initial_iterations": "100000"}, None, 422, "initial_iterations 100000 is above"),
    ({"scales": "500"}, None, 422, "scales must be from 1 to 12"),
    ({"seed": str(2**64)}, None, 422, "seed must be an integer from 0 to 2**63-1"),
    ({"style_scale": "1e300"}, None, 422, "style_scale must be at most 8"),
    ({"size": "+64"}, None, 422, "size must be an integer"),
    ({"size": "8", "scales": "1"}, None, 422, "image too small"),
    ({"size": "2048", "iterations": "1000", "scales": "4"}, None, 422, "megapixel-iterations, above this server's"),
    ({"weights": "/etc/passwd"}, None, 422, "unknown option 'weights'"),
    ({"init": "/etc/passwd"}, None, 422, "init must be content, noise or one of wct"),
    ({"init": "multistyle6"}, None, 422, "init 'multistyle6' paints only its own styles"),
    ({"style": "mona_lisa"}, None, 422, "unknown gallery painting 'mona_lisa'"),
    ({"method": "pastiche"}, None, 422, "unknown method 'pastiche'"),
    ({"method": "multistyle6", "style": "nope"}, None, 422, "unknown style 'nope'"),
    ({"method": "multistyle6", "iterations": "3"}, None, 422, "unknown option 'iterations'"),
    ({"strength": "٠.٥"}, None, 422, "strength must be a number"),  # ASCII digits only, like integers
    ({"strength": "0.5\xa0"}, None, 422, "strength must be a number"),  # and ASCII spaces only
    ({"style_blend_weights": "1e308"}, None, 422, "style_blend_weights must be numbers from 0 to 1e+06"),
    ({"content_weight": "nan"}, None, 422, "content_weight must be a number"),
    ({"style_loss": "mrf", "mrf_stride": str(2**63)}, None, 422, "mrf_stride must be from 1 to 64"),
    ({"method": "multistyle6", "size": "1"}, None, 422, "image too small"),
    ({"method": "wct", "decoders": "/etc/passwd"}, None, 422, "unknown option 'decoders'"),
    ({"method": "wct", "iterations": "3"}, None, 422, "unknown option 'iterations'"),
])
def test_bad_requests_get_a_4xx_that_names_the_problem_and_the_server_stays_up(client, data, files, status, words):
    response = submit(client, data=data, files=files)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert client.get("/api/health").json()["jobs"]["queued"] == 0
    assert submit(client).status_code == 202  # still serving


@pytest.mark.parametrize("method", ["wct", "multistyle6", "optimize"])
@pytest.mark.parametrize("size", ["none", "", " None ", None])
def test_an_empty_or_none_size_is_the_default_size_never_the_photos_own(tmp_path, method, size):
    """size=none once lifted max_size for wct and the fast models: a 2600x1700 photo was painted at full
    size (a 6.7 GB worker) while size=2600 got 422. An absent size is the default, whatever the method."""
    with make_client(tmp_path, limits=Limits(max_size=64)) as client:
        tiny = {k: v for k, v in TINY_JOB.items() if k != "size"} if method == "optimize" else {}
        data = {"method": method, **tiny}
        if size is not None:
            data["size"] = size
        if method == "multistyle6":
            data["style"] = "the_scream"
        big = ("content", ("big.jpg", jpeg(size=(260, 170)), "image/jpeg"))
        response = submit(client, data=data, files=[big])
        assert response.status_code == 202, response.text
        job = client.get(f"/api/jobs/{response.json()['id']}").json()
        assert job["options"]["size"] == 64  # min(512, max_size), not the photo's 260
        assert submit(client, data={**data, "size": "65"}, files=[big]).status_code == 422


def test_a_method_whose_cost_names_no_size_is_refused_not_run_unbounded(monkeypatch):
    from impasto.errors import InputError
    from impasto.methods import get_method
    from impasto.serve.forms import build_recipe

    method = type(get_method("wct"))
    monkeypatch.setattr(method, "cost", lambda self, options: {})
    with pytest.raises(InputError, match="cannot say the size of its output"):
        build_recipe({"method": "wct", "size": "64"}, 1, [], Limits())


def test_uploads_over_the_limit_get_413(tmp_path):
    with make_client(tmp_path, limits=Limits(max_upload_mb=0.001)) as client:
        big = ("content", ("big.jpg", jpeg(size=(400, 300)), "image/jpeg"))
        response = submit(client, files=[big])
        assert response.status_code == 413 and "above the limit" in response.json()["detail"]


def test_a_full_queue_gets_429(tmp_path):
    with make_client(tmp_path, limits=Limits(max_active=2)) as client:
        assert [submit(client).status_code for _ in range(3)] == [202, 202, 429]
        refused = submit(client)
        assert "queue is full" in refused.json()["detail"] and int(refused.headers["Retry-After"]) > 0
        assert len(list((tmp_path / "data" / "jobs").iterdir())) == 2  # the refused job left no files


def test_uploaded_file_names_are_never_paths(client, tmp_path):
    evil = [("content", ("../../../evil.jpg", jpeg(), "image/jpeg"))]
    job_id = submit(client, files=evil).json()["id"]
    assert sorted(p.name for p in (tmp_path / "data" / "jobs" / job_id).iterdir()) == ["content.jpg"]
    assert not list(tmp_path.rglob("evil*"))


def test_a_token_guards_every_api_call(tmp_path):
    with make_client(tmp_path, token="s3cret") as client:
        assert client.get("/").status_code == 200  # the page itself asks for the token
        assert submit(client).status_code == 401
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        job = submit(client, headers={"Authorization": "Bearer s3cret"})
        assert job.status_code == 202
        job_id = job.json()["id"]
        assert client.get(f"/api/jobs/{job_id}", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        refused = client.get("/api/jobs")
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        # EventSource and <img> cannot send headers: for them alone the token may come as ?token=
        assert client.get("/api/gallery/wave_crop?token=s3cret").status_code == 200
        assert client.get(f"/api/jobs/{job_id}/preview?token=s3cret").status_code in (200, 404)  # no preview yet
        assert client.get(f"/api/jobs/{job_id}/preview?token=wrong").status_code == 401
        for method, path in (("GET", f"/api/jobs/{job_id}"), ("GET", "/api/jobs"), ("DELETE", f"/api/jobs/{job_id}"),
                             ("GET", "/api/methods"), ("GET", "/api/limits")):
            assert client.request(method, path + "?token=s3cret").status_code == 401, (method, path)
        assert submit(client, params={"token": "s3cret"}).status_code == 401
        basic = {"Authorization": "Basic czNjcmV0"}  # a wrong scheme fails even with a right ?token=
        assert client.get(f"/api/jobs/{job_id}/preview?token=s3cret", headers=basic).status_code == 401
        for path in ("/docs", "/openapi.json", "/redoc"):  # no open back door to the API's description
            assert client.get(path).status_code == 404, path
        assert client.get("/api/health").status_code == 200  # liveness stays open (no job data in it)


def test_the_page_and_the_openapi_document(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="content"' in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result", "/api/jobs/{job_id}/events"):
        assert path in paths
    assert {g["name"] for g in client.get("/api/gallery").json()} >= {"starry_night", "the_scream"}
    assert client.get("/api/methods").json()[1]["name"] == "multistyle6"


def test_a_video_job_gets_the_video_method_and_its_sound(client, tmp_path):
    pytest.importorskip("av")
    from tests.video.clips import make_clip, streams

    clip = make_clip(tmp_path / "clip.mp4", frames=4, size=(32, 40)).read_bytes()
    response = submit(client, files=[("content", ("clip.mp4", clip, "video/mp4"))])
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    run_queued(client)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done" and job["kind"] == "video", job
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(result.content)
    got = streams(tmp_path / "out.mp4")
    assert got["frames"] == 4 and got["audio"] is not None and got["video"] == (26, 32)
    assert client.get(f"/api/jobs/{job_id}/thumbnail").status_code == 200
    assert not list((tmp_path / "data" / "jobs" / job_id).glob("*.frames"))  # the work folder is gone


def test_a_video_over_the_length_limit_gets_422(tmp_path):
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=4, size=(32, 40)).read_bytes()
    with make_client(tmp_path, limits=Limits(max_video_seconds=0.1)) as client:
        response = submit(client, files=[("content", ("clip.mp4", clip, "video/mp4"))])
        assert response.status_code == 422 and "longer than this server's limit" in response.json()["detail"]


def test_head_answers_like_get_without_a_body(client):
    for path in ("/", "/api/health", "/api/methods", "/static/app.js"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/api/jobs/nope").status_code == 404


def test_a_form_with_too_many_fields_is_a_bad_request_in_one_line(client):
    fields = {f"f{i}": "1" for i in range(80)}
    response = client.post("/api/jobs", data=fields, files={"content": ("c.jpg", jpeg(), "image/jpeg")})
    detail = response.json()["detail"]
    assert response.status_code == 400 and "Too many fields" in detail and "400" not in detail


def test_error_details_never_echo_a_long_input_in_full(client):
    response = submit(client, data={"style_loss": "x" * 5000})
    assert response.status_code == 422 and len(response.json()["detail"]) <= 300


def _small_files() -> dict[str, bytes]:
    """One small image per format Pillow writes, plus mp4 and mkv clips."""
    from PIL import Image as PILImage

    base = PILImage.open(EXAMPLES / "lighthouse.jpg").convert("RGB").resize((24, 16))
    files = {}
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"),
                      ("WEBP", "RGB"), ("ICO", "RGB"), ("IM", "RGB"), ("DDS", "RGBA"), ("SPIDER", "F"),
                      ("PPM", "RGB"), ("TGA", "RGB"), ("PCX", "RGB"), ("SGI", "RGB")):
        buffer = io.BytesIO()
        try:
            base.convert(mode).save(buffer, fmt)
        except (OSError, KeyError, ValueError):
            continue
        files[fmt] = buffer.getvalue()
    try:
        from tests.video.clips import make_clip
    except ImportError:
        return files
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for ext in (".mp4", ".mkv"):
            files[ext] = make_clip(Path(tmp) / f"c{ext}", frames=2, size=(16, 16), audio=False).read_bytes()
    return files


@pytest.mark.filterwarnings("ignore")  # Pillow's plug-ins warn about what they skip in broken headers
def test_fuzzed_headers_of_every_format_get_a_one_line_4xx(client):
    """Header bytes of one small file per format, changed: every answer is a 4xx with one line."""
    import random

    rng = random.Random(0)
    seen = set()
    for fmt, data in _small_files().items():
        for position in list(range(min(20, len(data)))) + [rng.randrange(len(data)) for _ in range(12)]:
            for value in (0x00, 0xFF, data[position] ^ 0x5A):
                mutated = bytearray(data)
                mutated[position] = value
                for field in ("content", "style") if position % 4 == 0 else ("content",):
                    files = [("content", ("c", bytes(mutated) if field == "content" else jpeg(), "x/y"))]
                    if field == "style":
                        files.append(("style", ("s", bytes(mutated), "x/y")))
                    response = client.post("/api/jobs", data={**TINY_JOB, "style": "wave_crop"}
                                           if field == "content" else TINY_JOB, files=files)
                    seen.add(response.status_code)
                    assert response.status_code < 500, (fmt, position, value, field, response.text)
                    if response.status_code >= 400:
                        detail = response.json()["detail"]
                        assert "\n" not in detail and len(detail) <= 300, (fmt, position, detail)
    files = _small_files()
    targeted = [files["IM"].replace(b"24*16", b"3.*24")]  # a size field Pillow parses into a float
    if ".mkv" in files and b"V_MPEG4/ISO/AVC" in files[".mkv"]:
        targeted.append(files[".mkv"].replace(b"V_MPEG4/ISO/AVC", b"V_MPEG9/ISO/XYZ"))  # a codec FFmpeg lacks
    for data in targeted:
        response = client.post("/api/jobs", data={**TINY_JOB, "style": "wave_crop"},
                               files={"content": ("c", data, "x/y")})
        assert response.status_code == 415 and "\n" not in response.json()["detail"], response.text
    assert 415 in seen and 202 in seen  # some mutations break a file, some leave it readable
    assert client.get("/api/health").json()["ok"]


def test_a_truncated_jpeg_is_judged_as_an_image_for_every_field(client):
    data = jpeg(size=(64, 48))
    truncated = data[: len(data) // 2]
    as_content = submit(client, files=[("content", ("c.jpg", truncated, "image/jpeg"))])
    as_style = submit(client, files=[("content", ("c.jpg", data, "image/jpeg")),
                                     ("style", ("s.jpg", truncated, "image/jpeg"))])
    assert as_content.status_code == as_style.status_code == 415
    assert "not a readable image" in as_content.json()["detail"]


def test_errors_shown_to_clients_never_contain_server_paths(tmp_path):
    """A job failing with a message that names its files (as FFmpeg's and Pillow's do) shows the
    files' own names only, in the job, the job list and the event stream."""
    from impasto.errors import ImpastoError
    from impasto.methods import Method, Painter, register, unregister

    class Failing(Method):
        name = "test-failing"
        def option_types(self):
            return {}
        def load(self, options, styles, *, cache=None, **inputs):
            return FailingPainter()

    class FailingPainter(Painter):
        def image(self, content, **kw):
            raise ImpastoError(f"cannot decode the video stream of {str(content)!r}: no frames in {content}")

    register(Failing(), replace=True)
    try:
        with make_client(tmp_path) as client:
            job_id = client.post("/api/jobs", data={"method": "test-failing"},
                                 files={"content": ("c.jpg", jpeg(), "image/jpeg")}).json()["id"]
            run_queued(client)
            shown = [client.get(f"/api/jobs/{job_id}").text, client.get("/api/jobs").text,
                     client.get(f"/api/jobs/{job_id}/events").text]
    finally:
        unregister("test-failing")
    assert "content.jpg" in shown[0] and "failed" in shown[0]
    for text in shown:
        assert str(tmp_path) not in text and "/jobs/" not in text, text


def test_a_chunked_upload_is_stopped_at_the_limit_and_a_full_disk_gets_507(tmp_path, monkeypatch):
    from impasto.serve import routes

    with make_client(tmp_path, limits=Limits(max_upload_mb=0.01)) as client:
        sent = []

        def chunks():  # no Content-Length: the body streams in pieces
            for _ in range(1000):
                sent.append(1)
                yield b"x" * 4096

        response = client.post("/api/jobs", content=chunks(), headers={"Content-Type": "multipart/form-data; b=x"})
        assert response.status_code == 413 and "above the limit" in response.json()["detail"]
        assert not list((tmp_path / "data" / "jobs").iterdir())
        full = type("Usage", (), {"free": 10 * 2**20})()
        monkeypatch.setattr(routes.shutil, "disk_usage", lambda path: full)
        refused = submit(client)
        assert refused.status_code == 507 and "disk is nearly full" in refused.json()["detail"]
        assert "Retry-After" in refused.headers


def test_a_video_with_too_many_frames_is_refused_at_submit(tmp_path):
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "fast.mp4", frames=40, fps=100, size=(32, 32), audio=False).read_bytes()  # 0.4 s
    with make_client(tmp_path, limits=Limits(max_video_frames=30)) as client:
        response = client.post("/api/jobs", data={"style": "wave_crop", "size": "32"},
                               files={"content": ("c.mp4", clip, "video/mp4")})
    assert response.status_code == 422
    assert "more than 30 frames is over this server's limit" in response.json()["detail"]


def test_a_videos_frames_are_counted_not_read_from_its_header(tmp_path):
    """The probe's MKV of 3,000 frames whose header said 1 s: here 40 frames at 10 fps (4 s) with the
    Matroska Duration rewritten to 1 ms. The frames are counted packet by packet at submit, so the
    header's claim changes nothing: over 30 frames, or over 2 s, it is refused."""
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "long.mkv", frames=40, fps=10, size=(32, 32), audio=False).read_bytes()
    at = clip.index(b"\x44\x89\x88")  # Segment Info's Duration: an 8-byte float, in milliseconds
    lying = clip[:at + 3] + struct.pack(">d", 1.0) + clip[at + 11:]
    for limits, message in ((Limits(max_video_frames=30), "more than 30 frames"),
                            (Limits(max_video_seconds=2), "longer than this server's limit of 2 s")):
        with make_client(tmp_path, limits=limits) as client:
            response = client.post("/api/jobs", data={"style": "wave_crop", "size": "32"},
                                   files={"content": ("c.mkv", lying, "video/x-matroska")})
        assert response.status_code == 422 and message in response.json()["detail"], response.json()


def test_a_video_job_is_bounded_by_its_work_over_all_frames(tmp_path):
    """Frames x pixels x iterations, as an image's work is bounded: 600 frames at 2048 px were
    accepted before (457 s and 4.7 GB for the first frame alone)."""
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=8, size=(32, 32), audio=False).read_bytes()
    with make_client(tmp_path, limits=Limits(max_video_work=10)) as client:
        small = client.post("/api/jobs", data={"style": "wave_crop", "size": "64"},
                            files={"content": ("c.mp4", clip, "video/mp4")})
        big = client.post("/api/jobs", data={"style": "wave_crop", "size": "1024"},
                          files={"content": ("c.mp4", clip, "video/mp4")})
    assert small.status_code == 202, small.json()
    assert big.status_code == 422 and "(8 frames), above this server's limit of 10" in big.json()["detail"]


def test_a_client_can_never_name_a_server_file_as_the_method(client, tmp_path, monkeypatch):
    """A method is a registered name: a server path (that exists or not, a real model file or
    /etc/passwd) gets the same 422, and nothing on the server is opened, in the web process or
    the worker."""
    import shutil

    import torch

    from impasto.fast.model import shipped_models
    from impasto.jobs.recipe import Recipe

    model = tmp_path / "model.pt"
    shutil.copy(shipped_models()["multistyle6"], model)
    opened: list[str] = []
    real_load = torch.load

    def spy(f, *a, **kw):
        opened.append(str(f))
        return real_load(f, *a, **kw)

    monkeypatch.setattr(torch, "load", spy)
    answers = []
    for path in (str(model), "/etc/passwd", str(tmp_path / "missing.pt")):
        for extra in ({}, {"style": "udnie"}):
            response = client.post("/api/jobs", data={"method": path, "size": "64", **extra},
                                   files=[("content", ("photo.jpg", jpeg(), "image/jpeg"))])
            assert response.status_code == 422, response.text
            answers.append(response.json()["detail"].replace(path, "PATH"))
    assert len(set(answers)) == 1 and "unknown method" in answers[0], answers  # no oracle for existence
    assert opened == []
    # a queued job that names a file (a store written by an older server, or by hand) fails, unloaded
    store = client.app.state.store
    job_id = store.submit(Recipe(str(model), {"size": 32}).to_json(), (".jpg", jpeg()), [], 10)
    run_queued(client)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "failed" and "unknown method" in job["error"], job
    assert opened == []


def test_an_upload_that_names_other_files_is_never_followed(client, tmp_path, monkeypatch):
    """An ffconcat (or playlist) upload would make FFmpeg open the files it names, relative to the
    web process: only container demuxers read uploads, so it is refused as not a video."""
    pytest.importorskip("av")
    from tests.video.clips import make_clip

    make_clip(tmp_path / "secret.mp4", frames=4)
    monkeypatch.chdir(tmp_path)  # where a relative path in the upload would resolve
    upload = b"ffconcat version 1.0\nfile 'secret.mp4'\n"
    response = client.post("/api/jobs", data={**TINY_JOB, "style": "starry_night"},
                           files=[("content", ("clip.mp4", upload, "video/mp4"))])
    assert response.status_code == 415 and "neither an image nor a video" in response.json()["detail"]


def test_methods_list_the_fields_the_page_shows_for_them():
    """The page builds a method's own fields (wct's levels and transform) from /api/methods alone."""
    from impasto.methods.registry import get_method

    fields = get_method("wct").describe()["fields"]
    assert fields["levels"]["default"] == "relu4_1,relu3_1,relu2_1,relu1_1" and fields["levels"]["choices"] is None
    assert fields["transform"] == {**fields["transform"], "default": "ost",
                                   "choices": ["ost", "wct", "adain", "efdm", "histogram"]}
    assert fields["structure"]["default"] == "0.7"
    assert set(fields) <= set(get_method("wct").web_options)
    optimize = get_method("optimize").describe()["fields"]
    assert set(optimize) == {"preset", "init"} and set(optimize) <= set(get_method("optimize").web_options)
    assert optimize["init"]["default"] == "" and "wct" in optimize["init"]["choices"]  # "": the preset's init
    # the page's strength slider starts at the method's own default (wct: the whole way)
    from impasto.universal.stylize import UniversalConfig

    assert get_method("wct").describe()["default_strength"] == UniversalConfig.strength
    assert get_method("optimize").describe()["default_strength"] is None


def _png16(width: int, height: int, *, interlace: bool = False) -> bytes:
    import png

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 65535, (height, width * 3), dtype=np.uint16)
    buffer = io.BytesIO()
    png.Writer(width, height, greyscale=False, bitdepth=16, interlace=interlace).write(buffer, rows.tolist())
    return buffer.getvalue()


@pytest.mark.parametrize("interlace", [False, True])
def test_a_16_bit_png_is_checked_at_submit_without_its_slow_decode(interlace, monkeypatch):
    """The probe's bomb: a 16-bit PNG is decoded by pypng in pure Python (52 s and 1.4 GB for its
    6400x6250, holding the web process). At submit it is only checked (header, declared size,
    inflated length, filter bytes), in C; a corrupt one is still refused."""
    from impasto.io import image
    from impasto.serve.forms import HTTPProblem, image_info
    from impasto.serve.settings import Limits

    def never(*args, **kwargs):
        raise AssertionError("the pure-Python 16-bit decode ran at submit")

    monkeypatch.setattr(image, "_read_png16", never)
    data = _png16(40, 30, interlace=interlace)
    assert image_info(data, "content", Limits()) == (".png", (30, 40))
    with pytest.raises(HTTPProblem) as big:
        image_info(data, "content", Limits(max_input_pixels=1000))
    assert big.value.status == 422 and "40x30" in str(big.value)
    for broken in (data[: len(data) // 2], data.replace(b"IDAT", b"IDAX", 1)):
        with pytest.raises(HTTPProblem) as bad:
            image_info(broken, "content", Limits())
        assert bad.value.status == 415 and "not a readable image" in str(bad.value)


def _with_chunks(data: bytes, before_idat=(), before_iend=()) -> bytes:
    """A PNG with extra chunks inserted before its first IDAT and before its IEND."""
    import png

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    out, seen_idat = b"\x89PNG\r\n\x1a\n", False
    for kind, body in png.Reader(bytes=data).chunks():
        if kind == b"IDAT" and not seen_idat:
            out += b"".join(chunk(k, b) for k, b in before_idat)
            seen_idat = True
        if kind == b"IEND":
            out += b"".join(chunk(k, b) for k, b in before_iend)
        out += chunk(kind, body)
    return out


_BOMB = zlib.compress(bytes(20_000_000), 9)
_DEEP_PNG_ODDITIES = {
    "sBIT over the bit depth": ([(b"sBIT", bytes([17, 17, 17]))], ()),
    "sBIT of 0": ([(b"sBIT", bytes([0, 16, 16]))], ()),
    "sBIT of the wrong length": ([(b"sBIT", bytes([8, 8]))], ()),
    "iCCP bomb": ([(b"iCCP", b"p\0\0" + _BOMB)], ()),
    "zTXt bomb": ([(b"zTXt", b"k\0\0" + _BOMB)], ()),
    "iTXt bomb": ([(b"iTXt", b"k\0\1\0\0\0" + _BOMB)], ()),
    "sBIT of 12 (fine)": ([(b"sBIT", bytes([12, 12, 12]))], ()),
    "zTXt bomb after the image data (never read)": ((), [(b"zTXt", b"k\0\0" + _BOMB)]),
}


@pytest.mark.parametrize("oddity", list(_DEEP_PNG_ODDITIES))
def test_a_16_bit_png_the_worker_cannot_read_is_refused_at_submit(oddity, tmp_path):
    """The probe's bad sBIT, iCCP and zTXt 16-bit PNGs passed the submit check and failed in the
    worker, one with "not all arguments converted during string formatting". Submit now refuses
    exactly what the worker's decode refuses, with the same one-line reason."""
    from impasto.errors import ImageError
    from impasto.io.image import load_image
    from impasto.serve.forms import HTTPProblem, image_info

    data = _with_chunks(_png16(8, 6), *_DEEP_PNG_ODDITIES[oddity])
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    try:
        load_image(path)
        worker = None
    except ImageError as exc:
        worker = str(exc)
    try:
        assert image_info(data, "content", Limits()) == (".png", (6, 8))
        submit = None
    except HTTPProblem as exc:
        assert exc.status == 415
        submit = str(exc)
    assert (submit is None) == (worker is None), (submit, worker)
    assert (submit is None) == oddity.endswith(")")
    if submit is not None:
        assert submit.split("(", 1)[1] == worker.split("(", 1)[1]  # the same reason
        assert "string formatting" not in submit and len(submit.splitlines()) == 1


def test_a_zlib_bomb_in_a_16_bit_png_is_refused_without_inflating_it():
    """Image data that inflates past what the header declares stops at that length."""
    from impasto.errors import ImageError
    from impasto.io.image import check_deep_png

    z = zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", z.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0)
    bomb = z.compress(bytes(50_000_000), 9)  # 50 MB of zeros for an image of 8 rows of 49 bytes
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bomb) + chunk(b"IEND", b"")
    with pytest.raises(ImageError, match="its header says 392"):
        check_deep_png(data, "bomb")


def _body(pause: float, pieces: int = 2, first_pause: float = 0.0):
    """An upload body of ``pieces`` 1000-byte pieces, ``pause`` s after each (``first_pause`` before the first)."""
    import asyncio

    async def gen():
        await asyncio.sleep(first_pause)
        for _ in range(pieces):
            yield b"x" * 1000
            await asyncio.sleep(pause)
    return gen()


def _posts(app, clients_and_bodies, extra_gets=("/api/health",)):
    """POST each (client address, body) to /api/jobs at once; then GET ``extra_gets``."""
    import asyncio

    import httpx

    async def scenario():
        headers = {"content-type": "multipart/form-data; boundary=x"}
        clients = {addr: httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(addr, 1234)),
                                           base_url="http://test", timeout=30)
                   for addr in {addr for addr, _ in clients_and_bodies}}
        try:
            posts = await asyncio.gather(*(clients[addr].post("/api/jobs", content=body, headers=headers)
                                           for addr, body in clients_and_bodies))
            gets = [await next(iter(clients.values())).get(path) for path in extra_gets]
        finally:
            for client in clients.values():
                await client.aclose()
        return posts, gets

    return asyncio.run(scenario())


def test_a_stalled_or_trickling_upload_is_dropped_and_uploads_at_once_are_bounded(tmp_path, monkeypatch):
    """The probe held 960 MB with 40 sockets that sent 24 MiB and stopped, and 300 trickling uploads
    were still open after 75 s. A body that sends nothing for UPLOAD_IDLE_SECONDS, or too slowly on
    average after that, gets 408; beyond UPLOADS_AT_ONCE bodies in flight, 503 with Retry-After."""
    from impasto.serve import Settings, create_app, uploads

    monkeypatch.setattr(uploads, "UPLOAD_IDLE_SECONDS", 0.3)
    monkeypatch.setattr(uploads, "UPLOADS_AT_ONCE", 2)
    app = create_app(Settings(data=tmp_path / "data", limits=Limits(), worker=False))
    (stalled,), _ = _posts(app, [("10.0.0.1", _body(1.0))])
    (trickle,), _ = _posts(app, [("10.0.0.1", _body(0.2, pieces=6))])
    three, (health,) = _posts(app, [(f"10.0.0.{i}", _body(0.25)) for i in range(3)])
    assert stalled.status_code == 408 and "stalled" in stalled.json()["detail"]
    assert trickle.status_code == 408 and "too slow" in trickle.json()["detail"]
    assert sorted(r.status_code for r in three)[-1] == 503 and health.status_code == 200
    assert next(r for r in three if r.status_code == 503).headers["Retry-After"] == "5"


def test_one_client_holds_at_most_half_the_upload_slots(tmp_path, monkeypatch):
    """The probe's eight idle connections, re-opened every 15 s, took all eight slots and every
    other client got 503. One address now holds at most UPLOADS_PER_CLIENT (half): its next gets
    429, and another client's upload is still received while the first holds its share."""
    from impasto.serve import Settings, create_app, uploads

    assert uploads.UPLOADS_PER_CLIENT <= uploads.UPLOADS_AT_ONCE // 2
    monkeypatch.setattr(uploads, "UPLOAD_IDLE_SECONDS", 5.0)
    app = create_app(Settings(data=tmp_path / "data", limits=Limits(), worker=False))
    hog = [("10.0.0.66", _body(0.5, pieces=2)) for _ in range(uploads.UPLOADS_AT_ONCE)]
    other = [("10.0.0.7", _body(0.1, pieces=1, first_pause=0.2))]
    posts, (health,) = _posts(app, hog + other)
    hogs, mine = posts[:-1], posts[-1]
    refused = [r for r in hogs if r.status_code == 429]
    assert len(refused) == uploads.UPLOADS_AT_ONCE - uploads.UPLOADS_PER_CLIENT, [r.status_code for r in hogs]
    assert "this client is already sending" in refused[0].json()["detail"] and refused[0].headers["Retry-After"]
    # the other client's body was received: its form is then refused as a form (400), not for want of a slot
    assert mine.status_code == 400, mine.text
    assert health.status_code == 200


def test_an_upload_whose_body_never_starts_gives_its_slot_back_sooner(tmp_path, monkeypatch):
    """An idle connection held a slot for the whole 15 s idle wait; a body that has not started
    after FIRST_BYTE_SECONDS is dropped with 408, and a body that has started keeps the longer wait."""
    from impasto.serve import Settings, create_app, uploads

    assert uploads.FIRST_BYTE_SECONDS < uploads.UPLOAD_IDLE_SECONDS
    monkeypatch.setattr(uploads, "FIRST_BYTE_SECONDS", 0.2)
    monkeypatch.setattr(uploads, "UPLOAD_IDLE_SECONDS", 3.0)
    app = create_app(Settings(data=tmp_path / "data", limits=Limits(), worker=False))
    (idle, slow_but_started), _ = _posts(app, [("10.0.0.1", _body(0.0, pieces=1, first_pause=0.5)),
                                               ("10.0.0.2", _body(0.5, pieces=2))])
    assert idle.status_code == 408 and idle.json()["detail"] == "upload did not start: nothing for 0.2 s"
    assert slow_but_started.status_code == 400, slow_but_started.text  # received in full; the form is bad


def test_a_cancelled_video_job_keeps_no_frames(client, tmp_path, monkeypatch):
    """The probe found a cancelled video's frames left in its folder: only a crash's restart needs
    them, and a cancelled (or failed) job has none."""
    pytest.importorskip("av")
    from impasto.jobs.worker import Worker
    from tests.video.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=6, size=(32, 40), audio=False).read_bytes()
    job_id = submit(client, data={"style": "wave_crop", "size": "32", "iterations": "1",
                                  "initial_iterations": "1", "scales": "1"},
                    files=[("content", ("clip.mp4", clip, "video/mp4"))]).json()["id"]
    store = client.app.state.store
    real_update, calls = store.update, []

    def update(*args, **kwargs):  # the client cancels once two frames are done
        calls.append(1)
        frames = store.folder(job_id).joinpath("result-a1.mp4.frames")  # the attempt's own
        return real_update(*args, **kwargs) or (frames.exists() and len(list(frames.glob("*.png"))) >= 2)

    monkeypatch.setattr(store, "update", update)
    Worker(store).run(store.claim())
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert not list(store.folder(job_id).glob("*.frames")) and not list(store.folder(job_id).glob("result*.mp4"))


def test_an_upload_cut_off_mid_way_is_one_line_not_a_traceback(tmp_path, caplog):
    """The probe's aborted uploads logged a 60-line traceback each. The body's end never comes: the
    submit answers 400 (to nobody), logs nothing more, and the server goes on."""
    import asyncio
    import logging

    from impasto.serve import Settings, create_app

    app = create_app(Settings(data=tmp_path / "data", limits=Limits(), worker=False))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/jobs", "raw_path": b"/api/jobs", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"multipart/form-data; boundary=x"), (b"host", b"test")],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    incoming = [{"type": "http.request", "body": b"--x\r\n" + b"y" * 1000, "more_body": True},
                {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    with caplog.at_level(logging.ERROR):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert b"closed the connection" in b"".join(m.get("body", b"") for m in sent[1:])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_full_disk_is_a_503_or_507_with_one_line_never_a_500(sqlite_client, monkeypatch):
    """The probe filled the data disk: /api/health and job status answered 500. SQLite's "database or
    disk is full" is a 503 with Retry-After; a write that finds no space, a 507."""
    client = sqlite_client
    import errno
    import sqlite3

    store = client.app.state.store
    job_id = submit(client).json()["id"]

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "counts", full)
    monkeypatch.setattr(store, "get", full)
    for path in ("/api/health", f"/api/jobs/{job_id}"):
        got = client.get(path)
        assert got.status_code == 503 and got.headers["Retry-After"] == "30", (path, got.text)
        assert got.json()["detail"] == "the job store cannot be used (database or disk is full); try again later"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "submit", no_space)
    refused = submit(client)
    assert refused.status_code == 507 and "No space left on device" in refused.json()["detail"]


def test_a_worker_waits_out_a_full_disk_instead_of_crashing(tmp_path, monkeypatch, caplog):
    """The probe's worker crash-looped (21 restarts in 60 s) on a full disk. It now says so once,
    backs off, and goes on when the disk has room."""
    import sqlite3

    from impasto.jobs import worker as worker_module
    from impasto.jobs.store import JobStore
    from impasto.jobs.worker import Worker

    store = JobStore(tmp_path / "data")
    worker = Worker(store)
    claims, pauses = [], []

    def claim(name=None, host=None):
        claims.append(1)
        if len(claims) <= 3:
            raise sqlite3.OperationalError("database or disk is full")
        return None

    monkeypatch.setattr(store, "claim", claim)
    monkeypatch.setattr(worker_module.time, "sleep", pauses.append)
    monkeypatch.setattr(worker, "parent_alive", lambda: len(claims) < 5)
    worker.serve_forever(poll=0.2)
    assert len(claims) == 5 and pauses[:3] == [0.4, 0.8, 1.6] and pauses[3] == 0.2
    said = [r for r in caplog.records if "the job store cannot be used (database or disk is full)" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING" and said[0].name == "impasto.worker"


def test_a_job_cut_off_by_a_full_disk_resumes_from_its_snapshot(sqlite_client, monkeypatch):
    """The probe's job restarted from zero after a full disk: the worker's store.fail removed the
    snapshot, failed to record the end, and the row was requeued. The job in hand now goes back to
    the queue once the store takes writes, keeps its snapshot, and resumes from it."""
    client = sqlite_client
    import sqlite3

    from impasto.jobs import worker as worker_module
    from impasto.jobs.worker import Worker

    store = client.app.state.store
    job_id = submit(client, data={"style": "wave_crop", "size": "32", "iterations": "30",
                                  "initial_iterations": "30", "scales": "1"}).json()["id"]
    worker = Worker(store, snapshot_every=1e-6)  # a snapshot at every step
    full = {"now": False, "happened": False}
    real_update, real_requeue, real_fail = store.update, store.requeue_interrupted, store.fail

    def update(job, progress, *args, **kwargs):
        snapshot = store.snapshot_path(job.job, job.attempt)
        if full["now"] or (not full["happened"] and progress > 0.4 and snapshot.exists()):
            full["now"] = full["happened"] = True
            raise sqlite3.OperationalError("database or disk is full")
        return real_update(job, progress, *args, **kwargs)

    def while_not_full(real):
        def call(*args, **kwargs):
            if full["now"]:
                raise sqlite3.OperationalError("database or disk is full")
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(store, "update", update)
    monkeypatch.setattr(store, "requeue_interrupted", while_not_full(real_requeue))
    monkeypatch.setattr(store, "fail", while_not_full(real_fail))
    pauses = []

    def sleep(seconds):  # the disk has room again after the worker's second pause
        pauses.append(seconds)
        full["now"] = full["now"] and len(pauses) < 2

    monkeypatch.setattr(worker_module.time, "sleep", sleep)
    monkeypatch.setattr(worker, "parent_alive", lambda: store.get(job_id).status not in ("done", "failed")
                        and len(pauses) < 50)
    worker.serve_forever(poll=0.01)
    job = store.get(job_id)
    assert full["happened"] and job.status == "done", (job.status, job.error)
    assert job.attempts == 2 and job.resumed_from is not None and job.resumed_from > 0.4
    assert not store.snapshot_path(job_id).exists()


def test_a_bad_query_parameter_is_one_line_naming_it(client):
    """?limit=abc answered with FastAPI's list of error objects; every 4xx here is one line."""
    response = client.get("/api/jobs?limit=abc")
    assert response.status_code == 422
    assert response.json() == {"detail": "limit must be an integer; got 'abc'", "fields": ["limit"]}


def test_a_method_that_needs_style_images_names_the_field():
    from impasto.errors import InputError
    from impasto.methods import get_method

    for name in ("optimize", "wct"):
        with pytest.raises(InputError, match="needs at least one style image") as refused:
            get_method(name).check({}, 0)
        assert refused.value.fields == ("styles",)  # the library's name (stylize(content, styles)), the CLI's


def _progressive_jpeg(extra_scans: int, **save) -> bytes:
    """A progressive JPEG with its smallest scan repeated ``extra_scans`` more times (libjpeg
    decodes every one: a pass over the whole image each)."""
    g = np.random.default_rng(0)
    image = Image.fromarray((g.random((24, 24, 3)) * 255).astype(np.uint8)).resize((400, 300))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True, **save)
    data = buffer.getvalue()
    first = data.index(b"\xff\xda")
    starts = [i for i in range(first, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA] + [len(data) - 2]
    scans = [data[a:b] for a, b in itertools.pairwise(starts)]
    return data[:-2] + min(scans, key=len) * extra_scans + b"\xff\xd9"


def test_a_jpeg_of_thousands_of_scans_is_refused_from_its_markers(client, monkeypatch):
    """A 22 MB progressive JPEG of 15,000 tiny scans took libjpeg 7.3 s of the web process to decode
    at submit (issue 35, item 2, beyond PNG): the scans are counted from the markers first, in C
    between them, and counting stops at the bound; ordinary JPEGs (progressive, optimized, with an
    EXIF block holding marker-like bytes) pass."""
    from impasto.io.guards import MAX_JPEG_SCANS
    from impasto.serve import forms
    from impasto.serve.forms import HTTPProblem, image_info

    bomb = _progressive_jpeg(3000)
    with pytest.raises(HTTPProblem) as refused, monkeypatch.context() as never:
        never.setattr(forms, "DECODES", None)  # refused before any decode (which takes that lock)
        image_info(bomb, "content", Limits())
    assert refused.value.status == 422 and f"more than {MAX_JPEG_SCANS} scans" in refused.value.detail
    response = submit(client, files=[("content", ("bomb.jpg", bomb, "image/jpeg"))])
    assert response.status_code == 422 and "scans" in response.json()["detail"]
    for fine in (_progressive_jpeg(MAX_JPEG_SCANS - 12), _progressive_jpeg(0, optimize=True),
                 _progressive_jpeg(0, exif=b"Exif\0\0" + b"\xff\xda" * 500)):
        assert image_info(fine, "content", Limits()) == (".jpg", (300, 400))


def test_a_png_of_a_million_empty_chunks_is_refused_at_once(client):
    """A 20 MB PNG of 1.6 million empty chunks took 11 s of the web process (issue 35, item 2): the
    chunk headers are counted first, and counting stops at the bound."""
    def chunk(kind: bytes, data: bytes = b"") -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    image = Image.new("RGB", (48, 40), (200, 30, 30))
    ordinary = io.BytesIO()
    image.save(ordinary, "PNG")
    head, rest = ordinary.getvalue()[:33], ordinary.getvalue()[33:]  # the signature and IHDR, then the rest
    bomb = head + chunk(b"tEXt") * 1_600_000 + rest
    response = submit(client, files=[("content", ("bomb.png", bomb, "image/png"))])
    assert response.status_code == 422 and "more than 20000 chunks" in response.json()["detail"]
    fine = head + chunk(b"tEXt") * 100 + rest
    assert submit(client, files=[("content", ("fine.png", fine, "image/png"))]).status_code == 202
