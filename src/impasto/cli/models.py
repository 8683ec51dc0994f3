"""``impasto models``: every shipped model file (the fast models and the wct decoders) with its card."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from .common import EXIT_OK, report_errors


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list the shipped model files (fast models, wct decoders) and their cards",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Every model file shipped with impasto: what it is (a fast model and its "
                                   "styles, or the decoders of --method wct), its file and SHA-256, and its card: "
                                   "the data that trained it and under which terms, the steps, the device.")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of {name, kind, method, file, sha256, styles or levels, data, training}")
    p.set_defaults(run=lambda args: report_errors(lambda: run(args), p))
    return p


def rows() -> list[dict[str, Any]]:
    """One row per shipped model file, the fast models first."""
    from ..fast.model import read_model_file, shipped_models
    from ..universal.model import load_decoders, shipped_decoders

    out = []
    for name, path in sorted(shipped_models().items()):
        data = read_model_file(path)
        out.append(_row(name, "fast model", name, path, data.get("training", {}),
                        styles=list(data["styles"]), architecture=data["architecture"]))
    found = shipped_decoders()
    if found is not None:
        decoders = load_decoders(found)
        out.append(_row(found.stem, "decoders", "wct", found, decoders.training_record,
                        levels=list(decoders.levels), width=decoders.width))
    return out


def _row(name: str, kind: str, method: str, path: str | Path, training: dict[str, Any], **what: Any) -> dict[str, Any]:
    from ..training import last_leg, trained_steps

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"name": name, "kind": kind, "method": method, "file": str(path), "sha256": digest, **what,
            "data": training.get("data"), "style_images": training.get("style_images"),
            "steps": trained_steps(training), "device": last_leg(training).get("device"), "training": training}


def run(args: argparse.Namespace) -> int:
    found = rows()
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    for row in found:
        if row["kind"] == "fast model":
            print(f"{row['name']} (fast model, --method {row['method']}): styles {', '.join(row['styles'])}")
        else:
            print(f"{row['name']} (decoders of --method {row['method']}): {', '.join(row['levels'])}, "
                  f"width {row['width']:g}")
        data = row["data"] or {}
        photos = (f"{data['images']} photos ({', '.join(data['folders'])}, list {data['list_sha256']})"
                  if data else "photos not recorded")
        print(f"  trained {row['steps']:,} steps on {photos}, last on {row['device'] or 'an unrecorded device'}")
        print(f"  data terms: {data.get('terms', 'not recorded')}")
        if row["style_images"]:
            print(f"  style images: {row['style_images']}")
        print(f"  file: {row['file']} (sha256 {row['sha256'][:16]})")
    return EXIT_OK
