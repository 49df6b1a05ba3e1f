"""`trustledger verify`: check the log against its Merkle tree and signed heads.

The tree is not caught up first: rows written after it was last extended are
hashed for the head checks and reported as not yet in the tree, never added to
it (an attacker's rows would otherwise be blessed by the check itself).

Exit status: 0 when every event verifies, 1 when a problem is found, 2 when
the command cannot run (an unreadable key, witness file or export), 3 when no
problem is found but some events are not yet in the tree and so were not
checked against it (``--allow-pending`` accepts that: 0).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click

from ledger.app import LedgerApp
from ledger.database import DatabaseUrlError
from ledger.tree_head import TreeHead, TreeHeadError, TreeHeadVerifier
from projections.log_tree import open_log_tree
from projections.log_verifier import Problem, Report, load_heads, verify_export, verify_store
from tools.arguments import GlobalOptions, pass_global_options
from tools.progress import Progress, count_lines


class _UsageError(Exception):
    """Input the command cannot use; exit status 2."""


def register(group: click.Group) -> None:
    group.add_command(verify)


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(help="check the log against its Merkle tree and signed tree heads")
@click.option(
    "--tree-heads", type=_FILE, default=None, help="a witness file: signed heads as JSON lines"
)
@click.option(
    "--public-key", type=_FILE, default=None, help="the operator's Ed25519 public key (PEM)"
)
@click.option(
    "--export",
    type=_FILE,
    default=None,
    help="verify this NDJSON export (of the whole log) offline instead of the database",
)
@click.option(
    "--allow-pending",
    is_flag=True,
    help="exit 0 although events after the tree's last position were not checked",
)
@pass_global_options
def verify(
    options: GlobalOptions,
    *,
    tree_heads: Path | None,
    public_key: Path | None,
    export: Path | None,
    allow_pending: bool,
) -> int:
    return run(options.url, tree_heads, public_key, export, allow_pending=allow_pending)


def run(
    database_url: str,
    tree_heads: Path | None,
    public_key: Path | None,
    export: Path | None,
    *,
    allow_pending: bool,
) -> int:
    try:
        verifier = _verifier(public_key)
        heads = _heads(tree_heads)
        if export is not None:
            report = _verify_export(export, heads, verifier)
        else:
            report = _verify_store(database_url, heads, verifier)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return 2
    _print(report, allow_pending=allow_pending)
    if not report.ok:
        return 1
    return 3 if report.pending and not allow_pending else 0


def _verifier(path: Path | None) -> TreeHeadVerifier | None:
    if path is None:
        return None
    try:
        return TreeHeadVerifier.from_pem(path.read_bytes())
    except OSError as error:
        raise _UsageError(f"cannot read {path}: {error.strerror or error}") from error
    except TreeHeadError as error:
        raise _UsageError(f"{path}: {error}") from error


def _heads(path: Path | None) -> list[TreeHead]:
    if path is None:
        return []
    try:
        with path.open("rb") as file:
            return load_heads(file)
    except OSError as error:
        raise _UsageError(f"cannot read {path}: {error.strerror or error}") from error
    except TreeHeadError as error:
        raise _UsageError(f"{path}: {error}") from error


def _verify_store(
    database_url: str, heads: list[TreeHead], verifier: TreeHeadVerifier | None
) -> Report:
    try:
        app = LedgerApp(database_url)
    except DatabaseUrlError as error:
        raise _UsageError(str(error)) from error
    tree = open_log_tree(database_url)
    try:
        progress = Progress("verify", app.recorder.max_notification_id() or 0)
        reached = [0]

        def update(position: int, _events: int) -> None:
            reached[0] = position
            progress.update(position)

        report = verify_store(app, tree, heads=heads, verifier=verifier, progress=update)
        progress.finish(reached[0])
        return report
    finally:
        tree.close()
        app.close()


def _verify_export(path: Path, heads: list[TreeHead], verifier: TreeHeadVerifier | None) -> Report:
    try:
        total = count_lines(path)
        source: IO[bytes] = path.open("rb")
    except OSError as error:
        raise _UsageError(f"cannot read {path}: {error.strerror or error}") from error
    progress = Progress("verify", total)
    with source:
        report = verify_export(
            source,
            heads=heads,
            verifier=verifier,
            progress=lambda _position, events: progress.update(events),
        )
    progress.finish(report.events)
    return report


def describe(problem: Problem) -> str:
    """One line per problem: ``position P: kind: detail`` (no prefix without a position)."""
    where = f"position {problem.position}: " if problem.position is not None else ""
    return f"{where}{problem.kind}: {problem.detail}"


def _print(report: Report, *, allow_pending: bool) -> None:
    for problem in report.problems:
        print(describe(problem))
    tree = "an export" if report.tree_size is None else f"a tree of {report.tree_size:,} leaves"
    verdict = "ok" if report.ok else f"{len(report.problems):,} problems"
    print(
        f"verified {report.events:,} events against {tree} and "
        f"{report.heads_checked:,} signed heads: {verdict}"
    )
    if report.pending:
        unverified = "" if allow_pending else f"{report.pending:,} events unverified: "
        print(
            f"{unverified}{report.pending:,} events after the tree's last position are not yet "
            "in the tree (hashed for the heads, not compared with the tree); "
            + ("allowed by --allow-pending" if allow_pending else "--allow-pending accepts them")
        )
