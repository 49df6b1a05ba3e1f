"""The verifier names each kind of tampering by its position, on every backend.

The log is tampered with behind the ledger's back, as an attacker with database
access would: SQL on SQLite and PostgreSQL, the recorder's list in memory (where
positions are list indexes, so rows can be changed or swapped but not deleted
or inserted without renumbering the rest).
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from ledger.app import LOG_PAGE_MAX, LedgerApp
from ledger.transfer import export_log
from ledger.tree_head import TreeHead, TreeHeadError, TreeHeadSigner, TreeHeadVerifier, to_json
from projections import log_verifier
from projections.log_tree import LogTree, LogTreeRunner, open_log_tree
from projections.log_verifier import Report, load_heads, verify_export, verify_store
from tools.cli import main
from tools.scenario import run_scenario

SIGNED_AT = datetime(2026, 6, 1, tzinfo=UTC)
TREE_TABLES = ("nodes", "leaves", "tracking", "heads")


class Tamper:
    """Edits the stored log directly, below the ledger."""

    def __init__(self, url: str, app: LedgerApp) -> None:
        self.url = url
        self.app = app
        self.table: str = getattr(app.recorder, "events_table_name", "")

    @property
    def sql_backed(self) -> bool:
        return self.url != "memory:"

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``{t}`` for the events table and ``?`` marks."""
        if self.url.startswith("sqlite"):
            db = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                with db:
                    return db.execute(statement.format(t=self.table), params).fetchall()
            finally:
                db.close()
        schema = parse_qs(urlsplit(self.url).query)["schema"][0]
        query = sql.SQL(statement.replace("?", "%s")).format(t=sql.Identifier(schema, self.table))
        with psycopg.connect(self.url.split("?")[0], autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def _memory(self) -> list[StoredEvent]:
        events: list[StoredEvent] = self.app.recorder._stored_events  # type: ignore[attr-defined]
        return events

    def change_body(self, position: int) -> None:
        if not self.sql_backed:
            event = self._memory()[position - 1]
            self._memory()[position - 1] = StoredEvent(
                event.originator_id, event.originator_version, event.topic, event.state + b" "
            )
            return
        (state,) = self._execute("SELECT state FROM {t} WHERE notification_id = ?", (position,))[0]
        self._execute(
            "UPDATE {t} SET state = ? WHERE notification_id = ?", (bytes(state) + b" ", position)
        )

    def delete(self, position: int) -> None:
        self._execute("DELETE FROM {t} WHERE notification_id = ?", (position,))

    def insert_copy(self, position: int, of: int) -> None:
        """A new row at a free position: a copy of another under an unused version."""
        self._execute(
            "INSERT INTO {t} (notification_id, originator_id, originator_version, topic, state) "
            "SELECT ?, originator_id, originator_version + 1000, topic, state FROM {t} "
            "WHERE notification_id = ?",
            (position, of),
        )

    def swap(self, p: int, q: int) -> None:
        if not self.sql_backed:
            events = self._memory()
            events[p - 1], events[q - 1] = events[q - 1], events[p - 1]
            return
        columns = "originator_id, originator_version, topic, state"
        select = f"SELECT {columns} FROM {{t}} WHERE notification_id = ?"
        row_p, row_q = self._execute(select, (p,))[0], self._execute(select, (q,))[0]
        update = (
            "UPDATE {t} SET originator_id = ?, originator_version = ?, topic = ?, state = ? "
            "WHERE notification_id = ?"
        )
        # (originator_id, originator_version) is unique: park q's row on version -1 first.
        self._execute("UPDATE {t} SET originator_version = -1 WHERE notification_id = ?", (q,))
        self._execute(update, (*row_q, p))
        self._execute(update, (*row_p, q))

    def corrupt_node(self, tree: LogTree, level: int, index: int) -> None:
        """Overwrite one inner node of the tree, leaving its leaves alone."""
        if not self.sql_backed:
            tree._nodes._nodes[level, index] = bytes(32)  # type: ignore[attr-defined]
            return
        statement = "UPDATE log_tree_nodes SET hash = ? WHERE level = ? AND idx = ?"
        if self.url.startswith("sqlite"):
            db = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                with db:
                    db.execute(statement, (bytes(32), level, index))
            finally:
                db.close()
            return
        schema = parse_qs(urlsplit(self.url).query)["schema"][0]
        with psycopg.connect(self.url.split("?")[0], autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            conn.execute(statement.replace("?", "%s"), (bytes(32), level, index))

    def drop_tree(self, tree: LogTree) -> None:
        """Throw the tree away (all its tables) as an attacker covering their tracks."""
        tree.close()
        if self.url.startswith("sqlite"):
            db = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                for name in TREE_TABLES:
                    db.execute(f"DROP TABLE log_tree_{name}")
                db.commit()
            finally:
                db.close()
        elif self.sql_backed:
            schema = parse_qs(urlsplit(self.url).query)["schema"][0]
            with psycopg.connect(self.url.split("?")[0], autocommit=True) as conn:
                for name in TREE_TABLES:
                    conn.execute(
                        sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, f"log_tree_{name}"))
                    )


@dataclass
class Ledger:
    url: str
    app: LedgerApp
    tree: LogTree
    signer: TreeHeadSigner
    tamper: Tamper

    @property
    def verifier(self) -> TreeHeadVerifier:
        return TreeHeadVerifier.from_pem(self.signer.public_key_pem())

    def build_tree(self) -> TreeHead:
        """Hash the log into the tree and sign (and keep) its head."""
        LogTreeRunner(self.app, self.tree).catch_up()
        return self.tree.sign_head(self.signer, SIGNED_AT)

    def reopen_tree(self) -> None:
        """A fresh tree after ``drop_tree``; in memory a new, empty one."""
        self.tree = open_log_tree(self.url)

    def verify(self, heads: list[TreeHead] | None = None) -> Report:
        return verify_store(self.app, self.tree, heads=heads or [], verifier=self.verifier)


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    app = LedgerApp(database_url)
    run_scenario(app)
    tree = open_log_tree(database_url)
    state = Ledger(database_url, app, tree, TreeHeadSigner.generate(), Tamper(database_url, app))
    try:
        yield state
    finally:
        state.tree.close()
        app.close()


def kinds(report: Report) -> list[tuple[str, int | None]]:
    return [(problem.kind, problem.position) for problem in report.problems]


def needs_sql(ledger: Ledger) -> None:
    if not ledger.tamper.sql_backed:
        pytest.skip("in memory, positions are list indexes: no row can be deleted or inserted")


# --- The store -----------------------------------------------------------------------


def test_a_clean_store_verifies(ledger: Ledger) -> None:
    head = ledger.build_tree()
    report = ledger.verify([head])
    assert report.ok, report.problems
    assert report.events == report.tree_size == head.tree_size > 0
    assert (report.heads_checked, report.pending) == (1, 0)  # the witness copy is the kept head


def test_a_changed_body_is_named(ledger: Ledger) -> None:
    ledger.build_tree()
    ledger.tamper.change_body(5)
    report = ledger.verify()
    assert kinds(report) == [("changed", 5), ("head_mismatch", None)]
    assert "from the store" in report.problems[1].detail


def test_a_deleted_row_is_named(ledger: Ledger) -> None:
    needs_sql(ledger)
    ledger.build_tree()
    ledger.tamper.delete(7)
    # The log is now one event short of the signed head.
    assert kinds(ledger.verify()) == [("deleted", 7), ("head_beyond_log", None)]


def test_deleting_the_last_rows_is_named(ledger: Ledger) -> None:
    needs_sql(ledger)
    head = ledger.build_tree()
    ledger.tamper.delete(head.tree_size)
    ledger.tamper.delete(head.tree_size - 1)
    report = ledger.verify()
    assert kinds(report) == [
        ("deleted", head.tree_size - 1),
        ("deleted", head.tree_size),
        ("head_beyond_log", None),
    ]


def test_an_inserted_row_is_named(ledger: Ledger) -> None:
    needs_sql(ledger)
    # A position the log never held before the tree was built, as a rolled-back append leaves.
    ledger.tamper.delete(9)
    ledger.build_tree()
    assert ledger.verify().ok
    ledger.tamper.insert_copy(9, of=3)
    assert kinds(ledger.verify()) == [("inserted", 9), ("head_mismatch", None)]


def test_two_swapped_rows_are_one_problem(ledger: Ledger) -> None:
    ledger.build_tree()
    ledger.tamper.swap(4, 11)
    report = ledger.verify()
    assert kinds(report) == [("swapped", 4), ("head_mismatch", None)]
    assert "positions 4 and 11" in report.problems[0].detail


def test_an_altered_inner_node_is_a_tree_mismatch(ledger: Ledger) -> None:
    head = ledger.build_tree()
    # The left perfect subtree under the root: the largest power of two below the size.
    level = (head.tree_size - 1).bit_length() - 1
    ledger.tamper.corrupt_node(ledger.tree, level, 0)
    report = ledger.verify([head])
    # Every leaf still matches the log, and so does the head: only the tree is wrong.
    assert kinds(report) == [("tree_mismatch", None)]
    assert f"first {head.tree_size} events" in report.problems[0].detail


@pytest.mark.parametrize("page", [LOG_PAGE_MAX, 4])
def test_many_tamperings_at_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    needs_sql(ledger)
    ledger.tamper.delete(20)
    head = ledger.build_tree()
    monkeypatch.setattr(log_verifier, "LOG_PAGE_MAX", page)
    monkeypatch.setattr(log_verifier, "LEAF_LOOKUP_MAX", 3)
    ledger.tamper.change_body(2)
    ledger.tamper.swap(5, 9)
    ledger.tamper.delete(12)
    ledger.tamper.delete(13)
    ledger.tamper.insert_copy(20, of=3)
    ledger.tamper.delete(head.tree_size + 1)  # the last position: 20 was never in the tree
    assert kinds(ledger.verify()) == [
        ("changed", 2),
        ("swapped", 5),
        ("deleted", 12),
        ("deleted", 13),
        ("inserted", 20),
        ("deleted", head.tree_size + 1),
        ("head_beyond_log", None),
    ]


def test_a_gap_too_wide_to_look_up_is_reported_as_a_range(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sql(ledger)
    ledger.build_tree()
    monkeypatch.setattr(log_verifier, "GAP_PROBE_MAX", 1)
    ledger.tamper.delete(12)
    ledger.tamper.delete(13)
    report = ledger.verify()
    assert kinds(report)[0] == ("deleted", None)
    assert "2 of the tree's leaves 11-12 belong to positions between 11 and 14" in (
        report.problems[0].detail
    )


def test_the_swap_search_is_bounded(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.build_tree()
    monkeypatch.setattr(log_verifier, "SWAP_CANDIDATES_MAX", 1)
    ledger.tamper.change_body(2)
    ledger.tamper.swap(5, 9)
    assert kinds(ledger.verify())[:3] == [("changed", 2), ("changed", 5), ("changed", 9)]


def test_rows_after_the_tree_are_pending_not_problems(ledger: Ledger) -> None:
    ledger.build_tree()
    events = len(ledger.app.read_stored(0, 10_000))
    assert ledger.verify().pending == 0
    ledger.tamper.drop_tree(ledger.tree)
    ledger.reopen_tree()
    report = ledger.verify()
    assert report.ok
    assert (report.tree_size, report.pending, report.events) == (0, events, events)


def test_stored_values_of_the_wrong_type_are_named_problems(ledger: Ledger) -> None:
    if not ledger.url.startswith("sqlite"):
        pytest.skip("only SQLite keeps a value of another type in a typed column")
    ledger.build_tree()
    db = sqlite3.connect(ledger.url.removeprefix("sqlite:///"))
    try:
        with db:
            table = ledger.tamper.table
            for column, value, position in (
                ("originator_version", "x", 3),
                ("state", 123, 5),
                ("originator_id", "not-a-uuid", 7),
                ("topic", b"\x00bytes", 9),
            ):
                db.execute(
                    f"UPDATE {table} SET {column} = ? WHERE notification_id = ?", (value, position)
                )
    finally:
        db.close()
    report = ledger.verify()
    assert [(kind, position) for kind, position in kinds(report) if kind == "bad_row"] == [
        ("bad_row", 3),
        ("bad_row", 5),
        ("bad_row", 7),
        ("bad_row", 9),
    ]
    assert "originator_version is str 'x', not int" in report.problems[0].detail
    assert report.events == len(ledger.app.read_stored(0, 10_000))


def test_a_forged_root_fails_its_head(ledger: Ledger) -> None:
    head = ledger.build_tree()
    forged = ledger.signer.sign(head.tree_size, bytes(32), SIGNED_AT)
    report = ledger.verify([forged])
    assert kinds(report) == [("head_mismatch", None)]
    assert "witness file" in report.problems[0].detail
    assert f"tree_size {head.tree_size}" in report.problems[0].detail


def test_a_head_signed_by_another_key_fails(ledger: Ledger) -> None:
    head = ledger.build_tree()
    other = TreeHeadSigner.generate().sign(head.tree_size, head.root_hash, SIGNED_AT)
    assert kinds(ledger.verify([other])) == [("bad_signature", None)]


def test_a_witness_head_catches_a_rebuilt_tree(ledger: Ledger) -> None:
    witness = ledger.build_tree()
    ledger.tamper.change_body(3)
    ledger.tamper.drop_tree(ledger.tree)
    ledger.reopen_tree()
    ledger.build_tree()
    assert ledger.verify().ok  # the rewritten log, its rebuilt tree and new head agree...
    report = ledger.verify([witness])  # ...but not with the head a witness kept
    assert kinds(report) == [("head_mismatch", None)]
    assert "from the witness file" in report.problems[0].detail


def test_heads_without_a_public_key_are_a_problem(ledger: Ledger) -> None:
    ledger.build_tree()
    report = verify_store(ledger.app, ledger.tree, heads=[], verifier=None)
    assert kinds(report) == [("no_public_key", None)]


def test_problems_are_bounded(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.build_tree()
    monkeypatch.setattr(log_verifier, "PROBLEMS_MAX", 3)
    for position in (2, 4, 6, 8, 10):
        ledger.tamper.change_body(position)
    report = ledger.verify()
    # The head's problem is kept first; then as many position problems as fit.
    assert kinds(report) == [
        ("changed", 2),
        ("changed", 4),
        ("head_mismatch", None),
        ("truncated", None),
    ]
    assert report.problems[-1].detail.startswith("3 more problems")


# --- Exports ---------------------------------------------------------------------------


def _export(ledger: Ledger) -> bytes:
    out = io.BytesIO()
    export_log(ledger.app, out)
    return out.getvalue()


def test_an_export_verifies_against_the_stores_head(ledger: Ledger) -> None:
    head = ledger.build_tree()
    report = verify_export(io.BytesIO(_export(ledger)), heads=[head], verifier=ledger.verifier)
    assert report.ok, report.problems
    assert (report.events, report.tree_size, report.heads_checked) == (head.tree_size, None, 1)


def test_a_changed_byte_in_an_export_fails_its_head(ledger: Ledger) -> None:
    head = ledger.build_tree()
    lines = _export(ledger).splitlines(keepends=True)
    body = lines[4].index(b'"body":')
    digit = lines[4].index(b'"occurred_at":"20', body) + len(b'"occurred_at":"20')
    lines[4] = lines[4][:digit] + b"3" + lines[4][digit + 1 :]
    report = verify_export(io.BytesIO(b"".join(lines)), heads=[head], verifier=ledger.verifier)
    assert kinds(report) == [("head_mismatch", None)]


def test_export_lines_out_of_order_and_undecodable() -> None:
    good = _line(2) + b"\n" + _line(1) + b"\n\n" + b"{not json\n" + _line(3) + b"\n"
    report = verify_export(io.BytesIO(good), heads=[], verifier=None)
    assert kinds(report) == [("out_of_order", 1), ("bad_line", None)]
    assert report.problems[1].detail.startswith("line 4:")
    assert report.events == 2


def _line(position: int) -> bytes:
    return msgspec.json.encode(
        {
            "position": position,
            "originator_id": "85f0044b-7ee7-54a2-8ac6-0702aae784c8",
            "originator_version": position,
            "topic": "t",
            "body": {"n": position},
        }
    )


# --- Witness files -------------------------------------------------------------------


def _head(size: int) -> TreeHead:
    return TreeHeadSigner.generate().sign(size, bytes(32), SIGNED_AT)


def test_witness_heads_load_skipping_blank_lines() -> None:
    heads = [_head(1), _head(2)]
    data = to_json(heads[0]) + b"\n\n" + to_json(heads[1]) + b"\n"
    assert load_heads(io.BytesIO(data)) == heads


def test_a_bad_witness_line_names_its_number() -> None:
    data = to_json(_head(1)) + b"\n" + b'{"tree_size": 1}\n'
    with pytest.raises(TreeHeadError, match=r"^line 2: "):
        load_heads(io.BytesIO(data))


# --- The command ---------------------------------------------------------------------


def _run(url: str, *argv: str) -> int:
    return main(["--database-url", url, "verify", *argv])


def test_the_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = LedgerApp(url)
    tree = open_log_tree(url)
    signer = TreeHeadSigner.generate()
    try:
        run_scenario(app)
        LogTreeRunner(app, tree).catch_up()
        head = tree.sign_head(signer, SIGNED_AT)
    finally:
        tree.close()
        app.close()
    key = tmp_path / "key.pem"
    key.write_bytes(signer.public_key_pem())
    witness = tmp_path / "heads.jsonl"
    witness.write_bytes(to_json(head) + b"\n")

    assert _run(url, "--public-key", str(key), "--tree-heads", str(witness)) == 0
    assert ": ok" in capsys.readouterr().out
    export = tmp_path / "log.ndjson"
    app = LedgerApp(url)
    try:
        with export.open("wb") as file:
            export_log(app, file)
    finally:
        app.close()
    assert (
        _run(url, "--export", str(export), "--public-key", str(key), "--tree-heads", str(witness))
        == 0
    )
    assert "against an export and 1 signed heads: ok" in capsys.readouterr().out

    app = LedgerApp(url)
    try:
        Tamper(url, app).change_body(2)
    finally:
        app.close()
    assert _run(url, "--public-key", str(key)) == 1
    out = capsys.readouterr().out
    assert out.startswith("position 2: changed: ")
    assert "head_mismatch: the head of tree_size" in out

    assert _run(url, "--public-key", str(tmp_path / "missing.pem")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_events_not_yet_in_the_tree_fail_the_command_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = LedgerApp(url)
    tree = open_log_tree(url)
    try:
        run_scenario(app)
        tree.append(app.read_stored(0, 5))  # the tree holds the first five events
        total = len(app.read_stored(0, 10_000))
    finally:
        tree.close()
        app.close()
    assert _run(url) == 3
    assert f"{total - 5:,} events unverified" in capsys.readouterr().out
    assert _run(url, "--allow-pending") == 0
    assert f"{total - 5:,} events after the tree's last position" in capsys.readouterr().out
