"""The README's links and images point at files that exist, and its anchors at its own headings (the
pages under docs/ are checked by ``mkdocs build --strict``, which CI runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def slug(heading: str) -> str:
    return re.sub(r"\s+", "-", re.sub(r"[^\w\- ]", "", heading.lower().strip()))


def test_every_link_in_the_readme_resolves():
    text = (ROOT / "README.md").read_text()
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) > 20
    broken = []
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(link)
        elif not (ROOT / path).exists():
            broken.append(link)
    assert not broken, broken
