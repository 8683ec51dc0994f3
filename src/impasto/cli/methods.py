"""``impasto methods``: every registered method, what it takes, and its options."""

from __future__ import annotations

import argparse
import json
import typing
from typing import Any

from .common import EXIT_OK, report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("methods", help="list the methods (optimize, wct, the fast models, plug-ins) and their options",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", action="store_true", help="a JSON list of {name, summary, takes_styles, styles, options}")
    p.set_defaults(run=lambda args: report_errors(lambda: run(args), p))
    return p


def type_name(kind: Any) -> str:
    """An option's type as a person reads it: 'int', 'float or none', 'list of str'."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    optional = type(None) in typing.get_args(kind)
    if typing.get_origin(kind) is tuple:
        text = f"list of {type_name(args[0]) if args else 'str'}"
    elif args and typing.get_origin(kind) is not tuple and (optional or len(args) > 1):
        text = " or ".join(type_name(a) for a in args)
    else:
        text = getattr(kind, "__name__", str(kind))
    return f"{text} or none" if optional else text


def run(args: argparse.Namespace) -> int:
    from ..methods import available

    rows = []
    for name, method in available().items():
        rows.append({**method.describe(), "all_options": {k: type_name(v) for k, v in method.option_types().items()}})
        del rows[-1]["options"]
        rows[-1]["web_options"] = list(method.web_options)
        rows[-1]["name"] = name
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        takes = "style images" if row["takes_styles"] else f"its own styles ({', '.join(row['styles'] or [])})"
        print(f"{row['name']}: {row['summary']}; takes {takes}")
        print("  options: " + ", ".join(f"{k} ({v})" for k, v in row["all_options"].items()))
    return EXIT_OK
