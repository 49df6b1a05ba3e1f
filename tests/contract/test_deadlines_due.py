"""The deadline index as an operator sees it, on every store: how many trades
are due by the ledger's clock (counted up to a limit), the oldest due time
among them and the next one coming, agreeing with what the deadline worker
itself finds due."""

from __future__ import annotations

from datetime import timedelta

from tests.support import DAY, HOUR, T0, Market

MICROSECOND = timedelta(microseconds=1)


def two_shipped_trades(m: Market) -> None:
    """Two trades shipped a day apart: their confirmation timers fall due a day apart."""
    m.shipped_trade("T1")
    m.trade("T2", at=T0 + DAY + HOUR)
    m.pay("T2", at=T0 + DAY + 2 * HOUR)
    m.ship("T2", at=T0 + DAY + 3 * HOUR)


def test_nothing_due_names_the_next_deadline(market: Market) -> None:
    two_shipped_trades(market)
    market.clock.set(T0 + 2 * DAY)

    standing = market.app.deadlines_due()

    assert (standing.due, standing.more, standing.oldest_due_at) == (0, False, None)
    first = standing.next_due_at
    assert first is not None and first > T0 + 2 * DAY
    # The worker's own query agrees: nothing before it, one trade at it.
    recorder = market.app.ledger_recorder
    assert recorder.due_aggregates(first - MICROSECOND, 10) == []
    assert len(recorder.due_aggregates(first, 10)) == 1


def test_due_trades_are_counted_from_the_oldest_and_the_next_follows(market: Market) -> None:
    two_shipped_trades(market)
    market.clock.set(T0 + 2 * DAY)
    first = market.app.deadlines_due().next_due_at
    assert first is not None

    market.clock.set(first)
    one_due = market.app.deadlines_due()
    market.clock.set(first + DAY)
    both_due = market.app.deadlines_due()

    assert (one_due.due, one_due.oldest_due_at, one_due.next_due_at) == (1, first, first + DAY)
    assert (both_due.due, both_due.more, both_due.oldest_due_at) == (2, False, first)
    assert both_due.next_due_at is None or both_due.next_due_at > first + DAY


def test_the_count_stops_at_its_limit_and_says_there_are_more(market: Market) -> None:
    two_shipped_trades(market)
    market.clock.set(T0 + 60 * DAY)

    counted = market.app.deadlines_due(limit=1)

    assert (counted.due, counted.more) == (1, True)
    assert market.app.deadlines_due(limit=2).more is False


def test_fired_deadlines_are_no_longer_due(market: Market) -> None:
    two_shipped_trades(market)
    now = T0 + 60 * DAY
    market.clock.set(now)
    assert market.app.deadlines_due().due == 2

    market.app.run_deadlines(now)

    after = market.app.deadlines_due()
    assert (after.due, after.oldest_due_at) == (0, None)
    assert after.next_due_at is None or after.next_due_at > now
