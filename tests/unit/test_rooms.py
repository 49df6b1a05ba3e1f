"""Imports run one way between the rooms: tools → client → api → projections →
ledger (the client takes only the answers' shapes from api: no web framework).

The write side knows nothing of how it is read, served or operated; the read
side nothing of HTTP or the tools; HTTP nothing of the command line. Every
import counts, the ones inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "ledger": frozenset({"projections", "api", "client", "tools"}),
    "projections": frozenset({"api", "client", "tools"}),
    "api": frozenset({"client", "tools"}),
    "client": frozenset({"tools"}),
    "tools": frozenset(),
}


def imported_rooms(source: str) -> set[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module's source."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


def crossings(room: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / room).rglob("*.py"))
        for line, target in sorted(imported_rooms(path.read_text()))
        if target in FORBIDDEN[room]
    ]


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_only_the_rooms_beneath_it(room: str) -> None:
    assert (ROOT / room / "__init__.py").exists()
    assert crossings(room) == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import api.main\nfrom tools import cli\ndef f():\n    from projections.views import x\n"
    )
    assert imported_rooms(source) == {(1, "api"), (2, "tools"), (4, "projections")}
    assert imported_rooms("from . import sibling\nimport os.path\n") == {(2, "os")}


def test_the_client_takes_nothing_of_the_server_but_the_answers_shapes() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {node.module}"
        for path in sorted((ROOT / "client").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[0] == "api"
        and node.module != "api.answers"
    ]
    assert found == []
