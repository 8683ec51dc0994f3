"""What every command shares: the parser class, value parsers, exit codes, error wording, progress bar.

Exit codes: 0 success; 1 runtime failure (divergence, out of memory, write error); 2 usage error
(bad option, bad or missing input file, bad output path); 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130



class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def integer(text: str) -> int:
    """An integer flag: plain ASCII digits only."""
    from ..config import parse_int

    try:
        return parse_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None


def positive_int(text: str) -> int:
    try:
        value = integer(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text[:40]!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = integer(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer of 0 or more, got {text[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def number(text: str) -> float:
    from ..config import parse_float

    try:
        return parse_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number in ASCII digits, got {text[:40]!r}") from None


def names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def numbers(text: str) -> tuple[float, ...]:
    from ..config import parse_float

    try:
        return tuple(parse_float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text[:40]!r}") from None


def add_precision(group: Any, default: str = "auto", where: str = "") -> None:
    """The --precision flag, the same for every command that runs a network."""
    from ..config import PRECISIONS

    group.add_argument("--precision", choices=PRECISIONS, default=default,
                       help="auto: bfloat16 mixed precision on CUDA GPUs and on CPUs with bfloat16 units (AMX, "
                            "AVX512-BF16, Arm BF16), float32 elsewhere; Grams, losses and the optimizer stay "
                            f"float32{where}")


def add_bit_depth(group: Any) -> None:
    group.add_argument("--bit-depth", type=integer, choices=(8, 16), default=None,
                       help="bits per sample of PNG and TIFF outputs (default: 16 for a 16-bit photo, else 8)")


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def word_for_cli(exc: BaseException, parser: argparse.ArgumentParser | None = None) -> str:
    """The library's message with the config fields it names written as this command's flags."""
    message = str(exc)
    known = _flags(parser) if parser is not None else None
    for field in getattr(exc, "fields", ()):
        if known is None or flag(field) in known:
            message = re.sub(rf"(?<![\w-]){re.escape(field)}(?![\w-])", flag(field), message)
    return message


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def report_errors(run: Callable[[], int], parser: argparse.ArgumentParser | None = None,
                  on_interrupt: Callable[[Any], int] | None = None) -> int:
    """Run a command, mapping impasto's exceptions to a one-line message and an exit code."""
    from ..errors import ImpastoError, InputError, StylizeInterrupted

    try:
        return run()
    except StylizeInterrupted as stop:
        if on_interrupt is not None:
            return on_interrupt(stop)
        print("\nimpasto: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before the first iteration: nothing to save
        print("\nimpasto: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as exc:
        print(f"impasto: error: {word_for_cli(exc, parser)}", file=sys.stderr)
        return EXIT_USAGE
    except ImpastoError as exc:
        print(f"impasto: error: {word_for_cli(exc, parser)}", file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # writing the output failed (disk full, permissions)
        print(f"impasto: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"impasto: error: {first}", file=sys.stderr)
        return EXIT_FAILURE


class ProgressBar:
    """The one progress bar of every command: a tqdm bar over a 0..1 work fraction (so the ETA
    accounts for uneven steps), made on first use. Call it with any method's event
    (:class:`impasto.progress.Event`), or :meth:`update` it with a fraction and a text."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        losses = format_losses(event.losses)
        self.update(event.work, f"{event.message}, {losses}" if losses else event.message)

    def write(self, line: str) -> None:
        """A line above the bar (or alone, when there is no bar)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def update(self, work: float, postfix: str) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=100.0, dynamic_ncols=True, file=sys.stderr,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(round(100.0 * work - self.bar.n, 4))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_losses(losses: dict[str, float]) -> str:
    """Every named term but the total, as 'content 0.12, style 0.034, tv 0.005'."""
    return ", ".join(f"{k} {v:.3g}" for k, v in losses.items() if k != "total")


def add_method_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="method_options", action="append", default=[], metavar="NAME=VALUE",
                   help="an option of --method that has no flag of its own (--set levels=relu4_1,relu3_1; "
                        "`impasto methods` lists every method's options)")


def method_options(args: argparse.Namespace, parser: argparse.ArgumentParser, method: Any,
                   own: frozenset[str]) -> dict[str, Any]:
    """The options of ``method`` that the command line sets, asked of the method (its
    ``option_types``): each flag given (a value other than its default) whose name is one of its
    options, ``--size`` always where it has one (the command's size is never dropped), and each
    ``--set NAME=VALUE`` parsed as that option's type. A flag it does not take is refused, naming
    what it takes; ``own`` are the command's own flags (paths, output, quiet...)."""
    from ..errors import InputError
    from ..jobs.recipe import parse_option

    types = method.option_types()
    defaults = {a.dest: a.default for a in parser._actions}
    given = {k: v for k, v in vars(args).items()
             if k not in own and k not in ("run", "command", "method_options") and k in defaults and v != defaults[k]}
    refused = sorted(k for k in given if k not in types)
    if refused:
        flags = ", ".join("--" + k.replace("_", "-") for k in refused)
        raise InputError(f"the method {method.name!r} takes only {', '.join(types) or 'no options'}; not {flags}",
                         fields=tuple(refused))
    options = dict(given)
    if "size" in types and getattr(args, "size", None) is not None:
        options["size"] = args.size
    for item in args.method_options:
        name, sep, text = item.partition("=")
        if not sep or name.strip() not in types:
            raise InputError(f"--set takes NAME=VALUE with NAME one of {', '.join(types)}; got {item!r}",
                             fields=("set",))
        options[name.strip()] = parse_option(name.strip(), text, types[name.strip()])
    return options
