"""Remembered aggregate histories are a hint, never the truth: two ledgers on one
store (two processes) each decide on what the store holds, whatever the other
wrote meanwhile."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from ledger import commands as c
from ledger.errors import ConcurrentUpdateError, ErrorCode, StateConflictError
from ledger.events import Event, MemberRegistered
from ledger.recent_events import RecentEvents
from tests.support import HOUR, T0, Market


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
