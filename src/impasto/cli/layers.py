"""``impasto layers``: the layer names of the networks."""

from __future__ import annotations

import argparse

from .common import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="list the layer names of the network",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..nets.vgg import ARCHS, layer_names

    for arch in ARCHS:
        print(f"{arch}: {' '.join(layer_names(arch))}")
    return EXIT_OK
