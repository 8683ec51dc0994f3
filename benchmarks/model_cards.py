"""Give the shipped model files' cards their data section: ``python benchmarks/model_cards.py``.

The shipped fast model and decoders were trained before the cards named their data. This writes,
into each shipped file's ``training`` record, the section :func:`impasto.training.data_card` gives
a new run: the photos' folder, count, list hash (from ``../shared/training`` when present, else
kept) and terms, and for the fast model the style images' source. The weights are not touched
(the file is loaded raw and saved with the same tensors); run it again and nothing changes.
"""

from __future__ import annotations

import argparse
import sys

import torch

from common import IMAGENET_SAMPLE_TERMS, SHARED
from impasto.fast.model import shipped_models
from impasto.io.atomic import atomic_path
from impasto.io.photos import find_images
from impasto.training import data_card
from impasto.universal.model import shipped_decoders

STYLE_IMAGES = ("impasto's gallery paintings of the same names, all public domain "
                "(src/impasto/gallery/SOURCES.md)")


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    folder = SHARED / "training" / "imagenet-sample"
    files = find_images([folder])[0] if folder.is_dir() else None
    targets = [(path, True) for path in shipped_models().values()] + [(shipped_decoders(), False)]
    for path, styles in targets:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        record = raw["training"]
        before = dict(record)
        data = data_card([folder], files, IMAGENET_SAMPLE_TERMS) if files is not None else dict(record["data"])
        record["data"] = data
        if styles:
            record["style_images"] = STYLE_IMAGES
        if record != before:
            with atomic_path(path) as tmp:
                torch.save(raw, tmp)
        print(f"{path.name}: data {data['images']} photos ({', '.join(data['folders'])}, list {data['list_sha256']})"
              f"{' (changed)' if record != before else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
