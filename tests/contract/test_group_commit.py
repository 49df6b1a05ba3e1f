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


# --- Commands handed over without a waiting thread -----------------------------------


class Outcomes:
    """What each handed-over command was called back with, and when all were."""

    def __init__(self, expected: int) -> None:
        self.by_name: dict[str, Any] = {}
        self.threads: set[str] = set()
        self.expected = expected
        self.all_in = threading.Event()
        self.lock = threading.Lock()

    def done_for(self, name: str) -> Any:
        def done(pending: Any) -> None:
            with self.lock:
                self.by_name[name] = pending.error or pending.positions
                self.threads.add(threading.current_thread().name)
                if len(self.by_name) == self.expected:
                    self.all_in.set()

        return done


def hand_over(committer: GroupCommitter, store: FakeStore, names: list[str]) -> Outcomes:
    """Every command handed over from this thread while the first save is held."""
    outcomes = Outcomes(len(names))
    for name in names:
        committer.submit([name], [], [], outcomes.done_for(name))  # type: ignore[list-item]
    while not store.calls:
        threading.Event().wait(0.001)
    store.release.set()
    assert outcomes.all_in.wait(timeout=10)
    return outcomes


def test_handed_over_commands_are_saved_by_the_writer_in_groups() -> None:
    store = FakeStore(bad=set())
    committer = GroupCommitter(store.save)
    names = [f"c{i}" for i in range(10)]

    outcomes = hand_over(committer, store, names)

    assert len(store.calls) < len(names)  # shared transactions
    assert sorted(p for r in outcomes.by_name.values() for p in r) == list(range(1, 11))
    assert outcomes.threads == {"group-commit-writer"}
    committer.close()


def test_a_conflict_among_handed_over_commands_fails_only_its_own() -> None:
    store = FakeStore(bad={"c3"})
    committer = GroupCommitter(store.save)

    outcomes = hand_over(committer, store, [f"c{i}" for i in range(6)])

    assert isinstance(outcomes.by_name.pop("c3"), IntegrityError)
    assert sorted(p for r in outcomes.by_name.values() for p in r) == list(range(1, 6))
    committer.close()


def test_waiting_threads_and_handed_over_commands_share_the_line() -> None:
    store = FakeStore(bad=set())
    committer = GroupCommitter(store.save)
    outcomes = Outcomes(5)
    waited: dict[str, Any] = {}

    def wait_for(name: str) -> None:
        waited[name] = committer.commit([name], [], [])  # type: ignore[list-item]

    first = threading.Thread(target=wait_for, args=("w0",))
    first.start()
    while not store.calls:
        threading.Event().wait(0.001)
    for n in range(5):
        committer.submit([f"h{n}"], [], [], outcomes.done_for(f"h{n}"))  # type: ignore[list-item]
    later = threading.Thread(target=wait_for, args=("w1",))
    later.start()
    while len(committer._queue) < 6:
        threading.Event().wait(0.001)
    store.release.set()
    for thread in (first, later):
        thread.join(timeout=10)
    assert outcomes.all_in.wait(timeout=10)

    positions = [*waited.values(), *outcomes.by_name.values()]
    assert sorted(p for r in positions for p in r) == list(range(1, 8))
    committer.close()


def test_closing_saves_what_was_handed_over_first() -> None:
    store = FakeStore(bad=set())
    store.release.set()
    committer = GroupCommitter(store.save)
    outcomes = Outcomes(50)
    for n in range(50):
        committer.submit([f"c{n}"], [], [], outcomes.done_for(f"c{n}"))  # type: ignore[list-item]

    committer.close()

    assert len(outcomes.by_name) == 50
    with pytest.raises(RuntimeError):
        committer.submit(["late"], [], [], outcomes.done_for("late"))  # type: ignore[list-item]


def test_a_failing_callback_keeps_the_others_and_the_writer_going() -> None:
    store = FakeStore(bad=set())
    committer = GroupCommitter(store.save)
    outcomes = Outcomes(4)

    def broken(pending: Any) -> None:
        raise RuntimeError("the event loop is gone")

    committer.submit(["broken"], [], [], broken)  # type: ignore[list-item]
    for n in range(3):
        committer.submit([f"c{n}"], [], [], outcomes.done_for(f"c{n}"))  # type: ignore[list-item]
    store.release.set()
    committer.submit(["later"], [], [], outcomes.done_for("later"))  # type: ignore[list-item]

    assert outcomes.all_in.wait(timeout=10)
    assert sorted(p for r in outcomes.by_name.values() for p in r) == [2, 3, 4, 5]
    committer.close()
