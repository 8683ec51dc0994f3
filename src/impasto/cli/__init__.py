"""Command-line interface: one module per command; argv -> config -> library -> exit code.

Each command module has ``add_parser(sub)``, which registers its flags and sets ``run``, and
``run(args, parser) -> exit code``. The library is imported only once a command runs, so
``impasto --help`` is instant.
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

from . import apply, batch, export, jobs, layers, methods, models, serve, stylize, train, video, worker
from .common import EXIT_USAGE, Parser

COMMANDS = (stylize, video, batch, train, apply, methods, models, export, layers, serve, worker, jobs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("impasto")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    parser = Parser(prog="impasto", description="Neural style transfer: repaint photos in the style of paintings.")
    parser.add_argument("--version", action="version", version=f"impasto {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: TextIO | None = None, line: str | None = None) -> None:
    """impasto's own warnings as one line, without the source line Python would quote."""
    if category.__module__.startswith("impasto"):
        print(f"impasto: warning: {message}", file=sys.stderr)
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (never calls sys.exit itself)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "preset", None):  # its values become the defaults: the flags given still win
            from ..optimize.config import PRESETS

            args.preset_parser.set_defaults(**PRESETS[args.preset])
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _one_line
        return int(args.run(args))


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
