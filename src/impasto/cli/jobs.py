"""``impasto jobs migrate``: a single machine's SQLite queue moved into a PostgreSQL queue."""

from __future__ import annotations

import argparse
import fcntl
import sys
from pathlib import Path

from .common import EXIT_OK, report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("jobs", help="manage the service's job queue (migrate SQLite to PostgreSQL)",
                       description="Manage the service's job queue.")
    what = p.add_subparsers(dest="action", metavar="ACTION")
    what.required = True
    m = what.add_parser(
        "migrate", help="copy a data folder's SQLite queue into a PostgreSQL queue",
        description="Copy every job of DATA's SQLite queue into the PostgreSQL queue at URL, for "
                    "'impasto serve --queue URL --data DATA'. The jobs' files stay in DATA (nothing is "
                    "copied); a running job goes in queued and resumes from its snapshot; a rerun changes "
                    "nothing. Stop the server on DATA first.")
    m.add_argument("--from", dest="source", required=True, metavar="DATA", help="the data folder of the SQLite queue")
    m.add_argument("--to", dest="target", required=True, metavar="URL", help="postgresql://user@host/db")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..jobs.database import redact
    from ..jobs.store import JobStore, migrate_jobs

    data = Path(args.source)
    if not (data / "jobs.sqlite").is_file():
        raise InputError(f"no SQLite queue in {str(data)!r} (no jobs.sqlite)")
    with open(data / "server.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no server may take jobs while they move
        except OSError:
            raise InputError(f"an impasto serve is using {str(data)!r}; stop it first") from None
        source, target = JobStore(data), JobStore(data, args.target)
        try:
            copied, there = migrate_jobs(source, target)
        finally:
            source.close()
            target.close()
    print(f"copied {copied} job(s) to {redact(args.target)}; {there} already there; files left in {data}",
          file=sys.stderr)
    return EXIT_OK


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return report_errors(lambda: _run(args), parser)
