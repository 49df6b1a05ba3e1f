"""The log tree contract, on memory, SQLite and PostgreSQL: it follows the log,
its roots and proofs agree with a tree recomputed from the stored rows, and a
batch is written whole or not at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import merkle
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.errors import NotFoundError
from ledger.tree_head import TreeHeadSigner, TreeHeadVerifier
from projections import log_tree
from projections.log_tree import (
    LogTree,
    LogTreeRunner,
    TreeConflictError,
    head_key,
    leaf_of,
    open_log_tree,
)
from tools.scenario import SCENARIO_END, run_scenario


@pytest.fixture
def story_app(database_url: str) -> Iterator[LedgerApp]:
    app = LedgerApp(database_url, clock=FixedClock(SCENARIO_END + timedelta(days=1000)))
    run_scenario(app)
    yield app
    app.close()


@pytest.fixture
def tree(database_url: str) -> Iterator[LogTree]:
    """The backend's log tree, closed after the test."""
    opened = open_log_tree(database_url)
    yield opened
    opened.close()


def leaves(app: LedgerApp) -> list[bytes]:
    return [leaf_of(entry) for entry in app.read_stored(0, 10_000)]


def test_the_tree_follows_the_log_and_its_roots_and_proofs_verify(
    story_app: LedgerApp, tree: LogTree
) -> None:
    hashed = LogTreeRunner(story_app, tree, batch_events=7).catch_up()
    expected = leaves(story_app)
    assert hashed == tree.size == len(expected)
    assert tree.tracked()[0] == story_app.read_stored(0, 10_000)[-1][0]
    positions = [entry[0] for entry in story_app.read_stored(0, 10_000)]
    for size in range(1, tree.size + 1):
        root = tree.root(size)
        assert root == merkle.root_of_leaves(expected[:size])
        for index in range(size):
            proof = tree.inclusion(positions[index], size)
            assert proof.leaf_hash == expected[index]
            assert merkle.verify_inclusion(proof.leaf_hash, index, size, proof.proof, root)
        for first in range(size + 1):
            consistency = tree.consistency(first, size)
            assert merkle.verify_consistency(first, size, tree.root(first), root, consistency.proof)


def test_a_resumed_tree_continues_after_its_last_committed_batch(
    story_app: LedgerApp, stored_url: str
) -> None:
    first = open_log_tree(stored_url)
    first.append(story_app.read_stored(0, 10))
    first.close()  # the process dies here
    resumed = open_log_tree(stored_url)
    assert resumed.size == 10
    LogTreeRunner(story_app, resumed).catch_up()
    assert resumed.root() == merkle.root_of_leaves(leaves(story_app))
    resumed.close()


def test_a_second_writer_cannot_extend_the_same_tree_twice(
    story_app: LedgerApp, stored_url: str
) -> None:
    first, second = open_log_tree(stored_url), open_log_tree(stored_url)
    rows = story_app.read_stored(0, 10)
    first.append(rows[:5])

    # The second writer read the tracking row before the first committed.
    class Stale(type(second)):  # type: ignore[misc]
        def tracked(self) -> tuple[int, int]:
            return (0, 0)

    second.__class__ = Stale
    with pytest.raises(TreeConflictError):
        second.append(rows[:5])
    assert first.size == 5
    assert first.root() == merkle.root_of_leaves(leaves(story_app)[:5])
    first.close()
    second.close()


def test_rows_out_of_log_order_are_refused(story_app: LedgerApp, tree: LogTree) -> None:
    rows = story_app.read_stored(0, 10)
    tree.append(rows[:3])
    with pytest.raises(ValueError, match="not after"):
        tree.append(rows[2:5])
    with pytest.raises(ValueError, match="not after"):
        tree.append([rows[4], rows[3]])
    assert tree.size == 3


def test_unknown_positions_and_future_sizes_are_not_found(
    story_app: LedgerApp, tree: LogTree
) -> None:
    LogTreeRunner(story_app, tree).catch_up()
    with pytest.raises(NotFoundError) as missing:
        tree.inclusion(10_000, tree.size)
    assert missing.value.code == "unknown_position"
    with pytest.raises(NotFoundError) as future:
        tree.inclusion(1, tree.size + 1)
    assert future.value.code == "unknown_tree_size"
    with pytest.raises(NotFoundError):
        tree.consistency(3, tree.size + 1)
    with pytest.raises(NotFoundError):
        tree.consistency(5, 3)


def test_signed_heads_are_kept_and_verify(story_app: LedgerApp, tree: LogTree) -> None:
    signer = TreeHeadSigner.generate()
    tree.append(story_app.read_stored(0, 10))
    early = tree.sign_head(signer, datetime(2026, 1, 1, tzinfo=UTC))
    LogTreeRunner(story_app, tree).catch_up()
    late = tree.sign_head(signer, datetime(2026, 1, 2, tzinfo=UTC))
    assert tree.heads() == [early, late]
    assert tree.heads(after=head_key(early)) == [late]
    assert tree.heads(limit=1) == [early]
    assert list(tree.all_heads()) == [early, late]
    assert tree.heads_before(10) == [late, early]
    assert tree.heads_before(1) == [late]
    assert tree.heads_before(10, before=head_key(late)) == [early]
    assert tree.heads_before(10, before=head_key(early)) == []
    assert tree.latest_head() == late
    verifier = TreeHeadVerifier.from_pem(signer.public_key_pem())
    assert verifier.verify(early)
    assert verifier.verify(late)
    assert late.root_hash == merkle.root_of_leaves(leaves(story_app))


def test_sqlite_positions_survive_vacuum(tmp_path: object) -> None:
    # Positions are stable for the life of the store, and
    # SQLite's VACUUM may renumber implicit rowids (not INTEGER PRIMARY KEYs).
    path = f"{tmp_path}/ledger.db"
    url = f"sqlite:///{path}"
    app = LedgerApp(url, clock=FixedClock(SCENARIO_END + timedelta(days=1000)))
    run_scenario(app)
    before = app.read_stored(0, 10_000)
    db = sqlite3.connect(path)
    table = "stored_events"
    middle = before[len(before) // 2][0]
    db.execute(f"DELETE FROM {table} WHERE notification_id = ?", (middle,))
    db.commit()
    db.execute("VACUUM")
    db.close()
    after = app.read_stored(0, 10_000)
    assert after == [row for row in before if row[0] != middle]
    app.close()


def test_every_kept_head_is_read_page_by_page(
    story_app: LedgerApp, tree: LogTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_tree, "HEADS_PAGE_MAX", 2)
    signer = TreeHeadSigner.generate()
    signed = []
    for day, rows in enumerate((3, 2, 4, 1, 5), start=1):
        tree.append(story_app.read_stored(tree.tracked()[0], rows))
        signed.append(tree.sign_head(signer, datetime(2026, 1, day, tzinfo=UTC)))
    assert list(tree.all_heads()) == signed


@pytest.fixture
def two_trees(stored_url: str) -> Iterator[tuple[LogTree, LogTree]]:
    """This process's tree and another process's, over one database."""
    here, elsewhere = open_log_tree(stored_url), open_log_tree(stored_url)
    yield here, elsewhere
    here.close()
    elsewhere.close()


def assert_whole(tree: LogTree, app: LedgerApp) -> None:
    assert tree.size == len(app.read_stored(0, 10_000))
    assert tree.root() == merkle.root_of_leaves(leaves(app))


def test_a_runner_goes_on_after_another_process_extended_the_tree(
    story_app: LedgerApp, two_trees: tuple[LogTree, LogTree], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = two_trees
    rows = story_app.read_stored(0, 1000)
    read_stored = story_app.read_stored
    calls = 0

    def racing(after: int, limit: int) -> list[Any]:
        nonlocal calls
        calls += 1
        found = read_stored(after, limit)
        if calls == 1:  # another process commits between this read and the append
            elsewhere.append(rows[:4])
        return found

    monkeypatch.setattr(story_app, "read_stored", racing)
    hashed = LogTreeRunner(story_app, here, batch_events=3).catch_up()
    assert hashed == len(rows) - 4
    assert_whole(here, story_app)


def test_a_runner_goes_on_after_its_commit_is_refused_for_a_grown_tree(
    story_app: LedgerApp, two_trees: tuple[LogTree, LogTree], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = two_trees
    rows = story_app.read_stored(0, 1000)
    commit = here._commit
    refused = 0

    def racing(*args: Any) -> None:
        nonlocal refused
        if elsewhere.size == 0:  # another process commits first, inside this one's append
            elsewhere.append(rows[:2])
            refused += 1
        commit(*args)

    monkeypatch.setattr(here, "_commit", racing)
    LogTreeRunner(story_app, here, batch_events=3).catch_up()
    assert refused == 1
    assert_whole(here, story_app)
