"""The README and docs/ link only inside the repository, and every link resolves:
to a file that exists and, with a ``#fragment``, to a heading of that file. A
page of docs/ links to its sibling pages only; a file elsewhere in the
repository is named, not linked with ``../``, which a copy of docs/ alone
(a published site, say) would leave dangling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code spans and fenced blocks; images too.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _links(document: Path) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", document.read_text()))
    return LINK.findall(text)


def _anchors(document: Path) -> set[str]:
    """The fragments a Markdown renderer gives the document's headings."""
    anchors = set()
    for line in FENCE.sub("", document.read_text()).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            title = re.sub(r"[^\w\- ]", "", title.replace("`", ""))
            anchors.add(title.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_link_stays_in_the_repository_and_resolves(document: Path) -> None:
    broken = []
    for target in _links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            broken.append(f"{target}: leaves the repository")
            continue
        if target.startswith("../"):
            broken.append(f"{target}: climbs out of its folder (name the file instead)")
            continue
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.is_relative_to(ROOT) or not linked.exists():
            broken.append(f"{target}: no such file in the repository")
        elif fragment and linked.suffix == ".md" and fragment not in _anchors(linked):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_checker_finds_links_and_headings(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Signed tree heads\n\nSee [the rules](rules.md#levels), [here](#signed-tree-heads),"
        " `[not](a-link.md)` and [out](https://example.org).\n\n```\n[fenced](x.md)\n```\n"
    )
    assert _links(page) == ["rules.md#levels", "#signed-tree-heads", "https://example.org"]
    assert _anchors(page) == {"signed-tree-heads"}


def test_every_document_links_somewhere_or_is_linked() -> None:
    """No page of docs/ is an orphan: the README links each one."""
    readme_links = {Path(target.partition("#")[0]).name for target in _links(ROOT / "README.md")}
    orphans = [d.name for d in DOCUMENTS[1:] if d.name not in readme_links]
    assert orphans == []
