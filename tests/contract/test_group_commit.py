"""Group commit: concurrent commands share transactions; one conflict fails no other."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.group_commit import GroupCommitter
from tests.support import Market


class FakeStore:
    """Saves by counting; the first save waits until released, so others queue up."""

    def __init__(self, bad: set[str], *, down: bool = False) -> None:
        self.bad = bad
        self.down = down  # every save after the first fails as an unreachable store does
        self.release = threading.Event()
        self.calls: list[list[str]] = []
        self.position = 0
        self.lock = threading.Lock()

    def save(
        self, events: Sequence[Any], idempotency: Sequence[Any], deadlines: Sequence[Any]
    ) -> list[int]:
        names = list(events)
        with self.lock:
            first = not self.calls
            self.calls.append(names)
        if first:
            self.release.wait(timeout=10)
        if self.bad & set(names):
            raise IntegrityError("version clash")
        if self.down and not first:
            raise OperationalError("the database went away")
        with self.lock:
            start = self.position
            self.position += len(names)
        return list(range(start + 1, start + len(names) + 1))


def run_threads(committer: GroupCommitter, store: FakeStore, names: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def submit(name: str) -> None:
        try:
            results[name] = committer.commit([name], [], [])  # type: ignore[list-item]
        except (IntegrityError, OperationalError) as error:
            results[name] = error

    first = threading.Thread(target=submit, args=(names[0],))
    first.start()
    while not store.calls:
        threading.Event().wait(0.001)
    others = [threading.Thread(target=submit, args=(n,)) for n in names[1:]]
    for thread in others:
        thread.start()
    while len(committer._queue) < len(others):
        threading.Event().wait(0.001)
    store.release.set()
    for thread in [first, *others]:
        thread.join(timeout=10)
    return results


def test_waiting_commands_are_saved_in_one_transaction() -> None:
    store = FakeStore(bad=set())
    committer = GroupCommitter(store.save)
    names = [f"c{i}" for i in range(10)]
    results = run_threads(committer, store, names)
    assert store.calls == [["c0"], names[1:]]
    assert sorted(p for r in results.values() for p in r) == list(range(1, 11))
    assert committer.groups == 2


def test_a_conflict_in_a_group_fails_only_its_own_command() -> None:
    store = FakeStore(bad={"c4"})
    committer = GroupCommitter(store.save)
    names = [f"c{i}" for i in range(8)]
    results = run_threads(committer, store, names)
    assert isinstance(results["c4"], IntegrityError)
    assert all(isinstance(results[n], list) and len(results[n]) == 1 for n in names if n != "c4")
    assert store.calls[1] == names[1:]  # the group was tried together first


def test_when_the_store_fails_a_group_every_command_of_it_gets_the_error() -> None:
    store = FakeStore(bad=set(), down=True)
    committer = GroupCommitter(store.save)
    names = [f"c{i}" for i in range(6)]
    results = run_threads(committer, store, names)
    assert results["c0"] == [1]
    assert all(isinstance(results[n], OperationalError) for n in names[1:])
    assert store.calls == [["c0"], names[1:]]  # not tried again one by one


def test_a_group_never_exceeds_its_limit() -> None:
    store = FakeStore(bad=set())
    committer = GroupCommitter(store.save, commands_max=3)
    names = [f"c{i}" for i in range(8)]
    run_threads(committer, store, names)
    assert max(len(call) for call in store.calls) == 3
    assert sum(len(call) for call in store.calls) == 8


@pytest.mark.postgres
def test_many_threads_on_postgres_share_transactions(postgres_url: str) -> None:
    market = Market.open(postgres_url)
    try:
        market.members("buyer-1", "seller-1")
        before = market.app._committer.groups
        errors: list[Exception] = []

        def create(worker: int) -> None:
            for i in range(15):
                try:
                    market.trade(f"W{worker}-{i}", register=False)
                except Exception as error:
                    errors.append(error)

        threads = [threading.Thread(target=create, args=(w,)) for w in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert market.log_size() == 2 + 16 * 15
        transactions = market.app._committer.groups - before
        assert transactions < 16 * 15  # commands shared transactions
    finally:
        market.app.close()
