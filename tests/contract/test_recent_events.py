"""Remembered aggregate histories are a hint, never the truth: two ledgers on one
store (two processes) each decide on what the store holds, whatever the other
wrote meanwhile."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from ledger import commands as c
from ledger.app import LedgerApp
from ledger.errors import ConcurrentUpdateError, ErrorCode, StateConflictError
from ledger.events import Event, MemberRegistered, RefundAgreed
from ledger.reading import Reading
from ledger.recent_events import RecentEvents
from tests.support import DAY, HOUR, T0, Market, new_trade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_ledgers(
    request: pytest.FixtureRequest, tmp_path: object
) -> Iterator[tuple[Market, Market]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.db"
    else:
        url = request.getfixturevalue("postgres_url")
    first, second = Market.open(url), Market.open(url)
    second._keys = itertools.count(100_000)  # two services: their idempotency keys differ
    yield first, second
    first.app.close()
    second.app.close()


def test_a_refusal_on_a_stale_memory_is_decided_again_on_the_store(
    two_ledgers: tuple[Market, Market],
) -> None:
    first, second = two_ledgers
    first.trade()  # the first ledger remembers T1 unpaid
    second.pay()  # the second pays it
    # Unpaid, as remembered, shipping would be refused; the store says paid.
    first.ship()
    trade = first.app.trade("T1")
    assert trade is not None and trade.shipped_at is not None


def test_a_save_on_a_stale_memory_conflicts_and_the_retry_reads_the_store(
    two_ledgers: tuple[Market, Market],
) -> None:
    first, second = two_ledgers
    first.trade()
    second.pay()
    pay = c.PayIntoEscrow(trade_id="T1", occurred_at=T0 + 2 * HOUR)
    with pytest.raises(ConcurrentUpdateError):
        first.run(first.app.pay_into_escrow, pay)  # decided on "unpaid", refused by the store
    with pytest.raises(StateConflictError) as again:
        first.run(first.app.pay_into_escrow, pay)
    assert again.value.code == ErrorCode.ALREADY_PAID


def test_deadlines_fired_elsewhere_are_not_fired_again(
    two_ledgers: tuple[Market, Market],
) -> None:
    first, second = two_ledgers
    first.shipped_trade()
    due = T0 + timedelta(days=30)
    fired = second.app.run_deadlines(due).positions
    assert fired
    assert first.app.run_deadlines(due).positions == ()


def test_a_deadline_a_remembered_history_lacks_is_still_fired(
    two_ledgers: tuple[Market, Market],
) -> None:
    first, second = two_ledgers
    first.shipped_trade()  # the first remembers T1 shipped, confirmation due in 10 days
    second.refund(at=T0 + 4 * HOUR)  # the seller has 5 days to answer, or it is agreed
    run = first.app.run_deadlines(T0 + 4 * HOUR + 5 * DAY)
    assert run.positions
    assert any(isinstance(e, RefundAgreed) and e.by == "silence" for e in first.events())


# --- Each attempt at a command reads through a reading of its own --------------------


class Readings:
    """Every reading a ledger makes, with the thread it was made for."""

    def __init__(self, app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[tuple[str, Reading]] = []
        make = app.reading

        def reading(*, fresh: bool, remembered_only: bool = False) -> Reading:
            made = make(fresh=fresh, remembered_only=remembered_only)
            self.made.append((threading.current_thread().name, made))
            self.on_made(made)
            return made

        monkeypatch.setattr(app, "reading", reading)

    def on_made(self, reading: Reading) -> None:
        pass

    def of(self, thread: str | None = None) -> list[tuple[bool, bool]]:
        """(fresh, remembered) of each reading made for a thread (this one unless told)."""
        thread = thread or threading.current_thread().name
        return [(r.fresh, r.remembered) for name, r in self.made if name == thread]


@pytest.fixture
def stale(two_ledgers: tuple[Market, Market]) -> Market:
    """The first ledger, remembering T1 unpaid while the store has it paid."""
    first, second = two_ledgers
    first.trade()
    second.pay()
    return first


def test_a_reading_says_when_it_used_a_remembered_history(stale: Market) -> None:
    remembered = stale.app.reading(fresh=False)
    assert remembered.trade("T1").paid_at is None
    assert remembered.remembered
    fresh = stale.app.reading(fresh=True)
    assert fresh.trade("T1").paid_at is not None
    assert not fresh.remembered


def test_a_refusal_on_a_remembered_history_is_decided_again_on_a_fresh_reading(
    stale: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = Readings(stale.app, monkeypatch)
    stale.ship()  # refused as unpaid on memory, accepted on the store
    assert readings.of() == [(False, True), (True, False)]


def test_a_conflicting_save_is_not_decided_again(
    stale: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = Readings(stale.app, monkeypatch)
    with pytest.raises(ConcurrentUpdateError):
        stale.pay()  # decided on "unpaid" in memory; the store refuses the save
    assert readings.of() == [(False, True)]


def test_a_refusal_on_the_store_is_not_decided_again(
    two_ledgers: tuple[Market, Market], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_ledgers
    second.trade()
    readings = Readings(first.app, monkeypatch)
    with pytest.raises(StateConflictError):
        first.ship()  # read from the store (never remembered): not paid
    assert readings.of() == [(False, False)]


# --- An id to be created is taken as free; the store's first-event rule decides ----


def test_creating_an_id_another_ledger_took_is_refused_as_the_rules_say(
    two_ledgers: tuple[Market, Market], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_ledgers
    second.trade()
    first.members("buyer-2", "seller-2")
    readings = Readings(first.app, monkeypatch)
    with pytest.raises(StateConflictError) as refused:
        first.trade(buyer="buyer-2", seller="seller-2", register=False)
    assert refused.value.code == ErrorCode.TRADE_EXISTS
    # Taken as free, the save clashed; decided again on the store, refused.
    assert [(r.fresh, r.assumed_new) for _, r in readings.made] == [(False, True), (True, False)]
    with pytest.raises(StateConflictError) as again:
        first.members("buyer-1")  # registered by the other ledger
    assert again.value.code == ErrorCode.MEMBER_EXISTS


def test_a_repeat_of_a_create_elsewhere_is_answered_from_its_record(
    two_ledgers: tuple[Market, Market],
) -> None:
    first, second = two_ledgers
    second.members("buyer-1", "seller-1")
    first.members("buyer-2")  # the first remembers members, not T1
    command = new_trade()
    created = second.run(second.app.create_trade, command, key="create-T1")
    replayed = first.run(first.app.create_trade, command, key="create-T1")
    assert replayed.replayed and replayed.positions == created.positions


def test_creating_reads_nothing_from_the_store_once_the_members_are_remembered(
    two_ledgers: tuple[Market, Market], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = two_ledgers
    first.trade()
    read: list[uuid.UUID] = []
    get = first.app.events.get

    def counted(aggregate_id: uuid.UUID, *args: object, **kwargs: object) -> object:
        read.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(first.app.events, "get", counted)
    first.trade("T2", register=False)
    assert read == []
    assert first.app.trade("T2") is not None


def test_a_command_retried_in_one_thread_leaves_another_threads_reading_alone(
    stale: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale.trade("T2", register=False)  # remembered, and as the store has it
    retrying, other_done = threading.Event(), threading.Event()

    class Paused(Readings):
        def on_made(self, reading: Reading) -> None:
            if reading.fresh and threading.current_thread().name == "stale":
                retrying.set()  # hold the retry until the other command is done
                other_done.wait(timeout=10)

    readings = Paused(stale.app, monkeypatch)

    def pay_t2() -> None:
        retrying.wait(timeout=10)
        stale.pay("T2")
        other_done.set()

    threads = [
        threading.Thread(target=stale.ship, args=("T1",), name="stale"),
        threading.Thread(target=pay_t2, name="other"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert readings.of("stale") == [(False, True), (True, False)]
    assert readings.of("other") == [(False, True)]  # its memory, while the retry read the store
    t1, t2 = stale.app.trade("T1"), stale.app.trade("T2")
    assert t1 is not None and t1.shipped_at is not None
    assert t2 is not None and t2.paid_at is not None


def registered(member: str, version: int = 1) -> Event:
    return MemberRegistered(
        originator_id=uuid.uuid5(uuid.NAMESPACE_URL, member),
        originator_version=version,
        occurred_at=T0,
        recorded_at=T0,
        policy_version="test",
        member_id=member,
    )


def test_only_whole_histories_are_kept() -> None:
    recent = RecentEvents(10)
    first = registered("m1")
    recent.extend([first])
    assert recent.history(first.originator_id) == (first,)
    gap = registered("m1", version=3)
    recent.extend([gap])  # version 2 never seen: forget rather than guess
    assert recent.history(first.originator_id) is None
    later = registered("m2", version=4)
    recent.extend([later])
    assert recent.history(later.originator_id) is None


def test_a_shorter_history_never_replaces_a_longer_one() -> None:
    recent = RecentEvents(10)
    one = registered("m1")
    two = registered("m1", version=2)
    recent.keep(one.originator_id, [one, two])
    recent.keep(one.originator_id, [one])
    assert recent.history(one.originator_id) == (one, two)


def test_the_least_recently_used_are_forgotten_first() -> None:
    recent = RecentEvents(2)
    a, b, d = registered("a"), registered("b"), registered("d")
    recent.extend([a, b])
    assert recent.history(a.originator_id) == (a,)  # a is now the most recent
    recent.extend([d])
    assert recent.history(b.originator_id) is None
    assert recent.history(a.originator_id) == (a,)
    assert recent.history(d.originator_id) == (d,)
