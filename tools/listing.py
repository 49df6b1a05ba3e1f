"""How the ``trustledger`` commands print listings: for people or for programs.

A listing is a table (rich) when stdout is a terminal, plain lines when it is
not (a pipe or a file: the format scripts have always read), and JSON with
``--json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

F = TypeVar("F", bound=Callable[..., object])


def json_option(what: str) -> Callable[[F], F]:
    """The ``--json`` flag of a listing, passed as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=f"{what} as JSON")


def is_terminal() -> bool:
    """Whether people read stdout (so a table), not a program (so plain lines)."""
    return sys.stdout.isatty()


def print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str | None = None
) -> None:
    # Cells are Text, not markup: a value such as ["a"] is printed as it is.
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    Console(highlight=False).print(table)
