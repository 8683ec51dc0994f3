"""``impasto worker``: one worker of a shared queue, on any machine that reaches the database and
the jobs' folder. It opens no port."""

from __future__ import annotations

import argparse
import socket

from .common import report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..jobs.worker import add_arguments

    p = sub.add_parser(
        "worker", help="run the jobs of a shared queue on this machine (impasto serve --queue URL)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Claim jobs from the queue one at a time and run them on this machine, beside the "
                    "workers of other machines. Each claim is a lease its heartbeat renews: if this worker "
                    "dies, its job goes back to the queue and resumes from its snapshot elsewhere. See "
                    "docs/several-machines.md.",
    )
    add_arguments(p)
    p.add_argument("--name", default=None,
                   help="this worker's name, unique across machines; None: HOST-DEVICE")
    p.set_defaults(run=lambda args: run(args, p))
    return p


def _run(args: argparse.Namespace) -> int:
    from ..cli.serve import check_lease
    from ..jobs.worker import run_worker

    check_lease(args.lease)
    if args.device is not None:
        from ..runtime import resolve_device

        resolve_device(args.device)
    args.name = args.name or f"{args.host or socket.gethostname()}-{args.device or 'cpu'}".replace(":", "")
    return run_worker(args)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return report_errors(lambda: _run(args), parser)
