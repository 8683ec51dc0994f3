"""``impasto models``: the shipped models and their styles."""

from __future__ import annotations

import argparse
import json

from .common import EXIT_OK, report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list the shipped fast models and their styles",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", action="store_true", help="a JSON list of {name, styles, file, training}")
    p.set_defaults(run=lambda args: report_errors(lambda: run(args), p))
    return p


def run(args: argparse.Namespace) -> int:
    from ..fast.model import read_model_file, shipped_models

    rows = []
    for name, path in sorted(shipped_models().items()):
        data = read_model_file(path)
        rows.append({"name": name, "styles": data["styles"], "file": str(path),
                     "architecture": data["architecture"], "training": data.get("training", {})})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['name']}: {', '.join(row['styles'])}")
    return EXIT_OK
