"""``impasto serve``: the web page and REST API, with a worker process and a persistent queue."""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import logging
import os
from pathlib import Path

from ..config import LOG_LEVELS
from ..jobs.database import BEAT_EVERY, LEASE
from ..serve.settings import QUEUE_ENV
from .common import EXIT_OK, non_negative_int, number, positive_int, report_errors

TOKEN_ENV = "IMPASTO_TOKEN"
log = logging.getLogger("impasto.serve")


def port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {value}")
    return value


def _default_data() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "impasto", "serve")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..serve.settings import Limits

    d = Limits()
    p = sub.add_parser(
        "serve", help="web page and REST API (jobs survive restarts)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve the impasto page at http://HOST:PORT/ and the API under /api (OpenAPI docs at /docs). "
                    "Jobs and their files are kept under --data; --workers processes run them, each started "
                    "again if it dies, and a job interrupted by a crash or kill is run again by a worker. "
                    "Binding to anything but localhost requires a token, which "
                    "every API call must then send as 'Authorization: Bearer TOKEN'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=port, default=8000, help="port (1-65535)")
    p.add_argument("--data", default=_default_data(),
                   help="folder for the jobs' files (and the queue, without --queue); shared by every machine "
                        "with --queue")
    p.add_argument("--queue", default=None, metavar="URL",
                   help=f"the job queue on PostgreSQL (postgresql://user@host/db), shared by web processes and "
                        f"workers on any machine; None: ${QUEUE_ENV} if set, else SQLite in --data")
    p.add_argument("--lease", type=number, default=LEASE, metavar="SECONDS",
                   help="a worker's claim holds its job this long between heartbeats; a job whose worker died "
                        "goes back to the queue after it")
    p.add_argument("--token", default=None,
                   help=f"bearer token every API call must carry; None: ${TOKEN_ENV} if set")
    p.add_argument("--keep-days", type=number, default=30.0,
                   help="delete finished jobs (their files and records) this many days after they end; 0 = never")
    p.add_argument("--snapshot-every", type=number, default=5.0, metavar="SECONDS",
                   help="an optimize job saves where it is this often (and at each scale's end), so a crash or "
                        "restart resumes it from there; 0 = at scale ends only")
    p.add_argument("--device", default=None,
                   help="device for the jobs: cpu, cuda, cuda:N or auto, or a comma-separated list that the "
                        "workers take in turn (--workers 2 --device cuda:0,cuda:1); None: the CPU")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="what the server and its workers log to stderr: each job's start and end and each "
                        "worker's restart at info, problems at warning (default: info)")
    p.add_argument("--workers", type=non_negative_int, default=1,
                   help="worker processes running jobs side by side (one per GPU; CPU workers share the cores); "
                        "0: the web process alone, with 'impasto worker' processes on the same --queue")
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=number, default=d.max_upload_mb, help="largest upload (413 above)")
    g.add_argument("--max-size", type=positive_int, default=d.max_size, help="largest output long edge")
    g.add_argument("--max-iterations", type=positive_int, default=d.max_iterations, help="most iterations per scale")
    g.add_argument("--max-video-seconds", type=number, default=d.max_video_seconds, help="longest video a job takes")
    g.add_argument("--max-video-frames", type=positive_int, default=d.max_video_frames,
                   help="most frames a video job may have")
    g.add_argument("--max-work", type=number, default=d.max_work,
                   help="most megapixel-iterations one job may ask for, summed over its scales")
    g.add_argument("--max-video-work", type=number, default=d.max_video_work,
                   help="most megapixel-iterations one video job may ask for, over all its frames")
    g.add_argument("--max-queue", type=positive_int, default=d.max_active,
                   help="most jobs waiting or running (429 above)")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_SNAPSHOT_EVERY = 0.5
"""The shortest pause between an optimize job's snapshots (each is the whole image written to disk)."""


def check_limits(args: argparse.Namespace) -> None:
    """Limits that make no sense are refused at the start, one line each, before anything is made:
    a negative --max-work or --max-video-seconds refused every job, and --snapshot-every 0.0001
    wrote a snapshot at every step."""
    from ..errors import InputError

    for flag in ("max_upload_mb", "max_work", "max_video_work", "max_video_seconds"):
        if getattr(args, flag) <= 0:
            raise InputError(f"--{flag.replace('_', '-')} must be positive; got {getattr(args, flag):g}")
    if args.keep_days < 0:
        raise InputError("--keep-days must be 0 (never delete) or more")
    if args.snapshot_every != 0 and not args.snapshot_every >= MIN_SNAPSHOT_EVERY:
        raise InputError(f"--snapshot-every must be 0 (at scale ends only) or at least {MIN_SNAPSHOT_EVERY:g} "
                         f"seconds; got {args.snapshot_every:g}")
    check_lease(args.lease)


def check_lease(seconds: float) -> None:
    from ..errors import InputError

    if not 2.0 <= seconds <= 3600.0:
        raise InputError(f"--lease must be from 2 to 3600 seconds (heartbeats come every "
                         f"{BEAT_EVERY:g} s or sooner); got {seconds:g}")


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is taken now, with one line (uvicorn would log a traceback-like error)."""
    import socket

    from ..errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InputError(f"unknown --host {host!r}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _run(args: argparse.Namespace) -> int:
    from ..config import configure_logging
    from ..errors import InputError
    from ..runtime import require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    require("python_multipart", "serve")
    from ..serve.app import create_app
    from ..serve.settings import Limits, Settings

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_local(args.host) and token is None:
        raise InputError(f"--host {args.host} is reachable from other machines: give --token (or set "
                         f"${TOKEN_ENV}) so that only your clients can submit jobs")
    if args.device is not None:  # checked once here: a device no worker can use failed every job
        from ..runtime import resolve_devices

        resolve_devices(args.device)
    check_limits(args)
    queue = args.queue or os.environ.get(QUEUE_ENV) or None
    if queue:  # a URL it cannot use, in one line before anything is made (opened only once the app starts)
        from ..jobs.database import check_queue_url

        check_queue_url(queue)
    data = Path(args.data)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the data folder {str(data)!r}: {exc.strerror}") from None
    lock = open(data / "server.lock", "w")  # noqa: SIM115 - held for the life of the server
    try:  # SQLite in one folder: one server; a shared queue has as many web processes as you like
        if queue is None:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise InputError(f"another impasto serve is using {str(data)!r}; stop it or give another --data") from None
    _check_port(args.host, args.port)
    limits = Limits(max_upload_mb=args.max_upload_mb, max_size=args.max_size, max_iterations=args.max_iterations,
                    max_video_seconds=args.max_video_seconds, max_video_frames=args.max_video_frames,
                    max_work=args.max_work, max_video_work=args.max_video_work,
                    max_active=args.max_queue)
    configure_logging(args.log_level)
    app = create_app(Settings(data=data, token=token, queue=queue, lease=args.lease, limits=limits,
                              device=args.device, keep_days=args.keep_days, workers=args.workers,
                              snapshot_every=args.snapshot_every, log_level=args.log_level))
    log.info("serving http://%s:%d/ (data in %s, queue: %s)", args.host, args.port, data,
             app.state.store.describe())
    try:  # uvicorn's own lines (its access log among them) only at debug
        uvicorn.run(app, host=args.host, port=args.port, log_level="debug" if args.log_level == "debug" else "warning")
    finally:
        lock.close()
    return EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return report_errors(lambda: _run(args), parser)
