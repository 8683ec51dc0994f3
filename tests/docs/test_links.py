"""The README's links and images point at files that exist, and its anchors at its own headings (the
pages under docs/ are checked by ``mkdocs build --strict``, which CI runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def slug(heading: str) -> str:
    """GitHub's anchor of a README heading."""
    return re.sub(r"\s+", "-", re.sub(r"[^\w\- ]", "", heading.lower().strip()))


def mkdocs_slug(heading: str) -> str:
    """MkDocs' (Python-Markdown's toc) anchor of a page's heading: runs of spaces and hyphens are one hyphen."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


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
        elif anchor and path.endswith(".md") and anchor not in headings(ROOT / path):
            broken.append(link)  # a section of another page that is not (or no longer) there
    assert not broken, broken


def headings(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (outside code blocks), as MkDocs makes them."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {mkdocs_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
