"""Concurrent commands on one aggregate, with real threads against PostgreSQL.

A barrier holds every thread between deciding and saving, so each run really
races: all threads decided from the same version of the trade.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from ledger import commands as c
from ledger.aggregate import Aggregate
from ledger.app import Appended, LedgerApp, Origin
from ledger.errors import ConcurrentUpdateError, LedgerError
from ledger.store import IdempotencyRecord
from tests.support import DAY, T0, Market

pytestmark = pytest.mark.postgres


class RacingLedgerApp(LedgerApp):
    """Waits at a barrier after deciding, just before saving."""

    barrier: threading.Barrier | None = None

    def write(
        self,
        aggregates: Sequence[Aggregate],
        *,
        idempotency: Sequence[IdempotencyRecord],
        events: Any = None,
    ) -> list[int]:
        if self.barrier is not None:
            self.barrier.wait(timeout=10)
        return super().write(aggregates, idempotency=idempotency, events=events)


@pytest.fixture
def racing(postgres_url: str) -> Iterator[Market]:
    m = Market.open(postgres_url)
    m.app.close()
    app = RacingLedgerApp(postgres_url, clock=m.clock)
    m.app = app
    try:
        yield m
    finally:
        app.close()


def race(app: RacingLedgerApp, calls: list[Any]) -> list[Appended | LedgerError]:
    app.barrier = threading.Barrier(len(calls))
    results: list[Appended | LedgerError] = [None] * len(calls)  # type: ignore[list-item]

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except LedgerError as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    app.barrier = None
    return results


def test_conflicting_commands_one_wins_the_other_gets_a_retryable_conflict(
    racing: Market,
) -> None:
    racing.shipped_trade()
    app = racing.app
    assert isinstance(app, RacingLedgerApp)
    size = racing.log_size()
    ship_refund = c.RequestRefund(
        trade_id="T1",
        refund_id="R1",
        amount_minor=100,
        reason="damaged",
        with_return=False,
        occurred_at=T0 + DAY,
    )
    confirm = c.ConfirmReceipt(trade_id="T1", occurred_at=T0 + DAY)

    results = race(
        app,
        [
            lambda: app.request_refund(ship_refund, Origin("svc", "a")),
            lambda: app.confirm_receipt(confirm, Origin("svc", "b")),
        ],
    )

    wins = [r for r in results if isinstance(r, Appended)]
    conflicts = [r for r in results if isinstance(r, ConcurrentUpdateError)]
    assert len(wins) == 1 and len(conflicts) == 1
    assert conflicts[0].retryable
    assert racing.log_size() == size + len(wins[0].positions)


def test_the_loser_can_retry_and_is_then_decided_on_the_new_state(racing: Market) -> None:
    racing.shipped_trade()
    app = racing.app
    assert isinstance(app, RacingLedgerApp)
    extend = c.ExtendConfirmTimer(trade_id="T1", days=3, occurred_at=T0 + DAY)
    results = race(
        app,
        [
            lambda: app.extend_confirm_timer(extend, Origin("svc", "x1")),
            lambda: app.extend_confirm_timer(extend, Origin("svc", "x2")),
        ],
    )
    assert sum(isinstance(r, ConcurrentUpdateError) for r in results) == 1
    retried = app.extend_confirm_timer(extend, Origin("svc", "x3"))
    assert len(retried.positions) == 1
    trade = app.trade("T1")
    assert trade is not None and trade.extensions == 2


def test_the_same_key_racing_itself_writes_once_and_both_get_the_same_positions(
    racing: Market,
) -> None:
    racing.shipped_trade()
    app = racing.app
    assert isinstance(app, RacingLedgerApp)
    confirm = c.ConfirmReceipt(trade_id="T1", occurred_at=T0 + DAY)
    size = racing.log_size()

    results = race(
        app,
        [
            lambda: app.confirm_receipt(confirm, Origin("svc", "same")),
            lambda: app.confirm_receipt(confirm, Origin("svc", "same")),
        ],
    )

    assert all(isinstance(r, Appended) for r in results)
    first, second = results
    assert isinstance(first, Appended) and isinstance(second, Appended)
    assert first.positions == second.positions
    assert racing.log_size() == size + 2


def test_lost_races_leave_no_broken_connection_behind(postgres_url: str) -> None:
    """A conflict fails a pipelined write part-way; the connection it used must
    not go back to the pool with psycopg's prepared statements out of step with
    the server's, or later unrelated writes fail on it."""
    narrow = f"{postgres_url}&pool_size=1&max_overflow=1"
    m = Market.open(narrow)
    m.app.close()
    app = RacingLedgerApp(narrow, clock=m.clock)
    m.app = app
    try:
        for i in range(12):
            m.succeeded_trade(f"T{i}")
            results = race(
                app,
                [
                    lambda i=i, rater=rater: app.give_rating(
                        c.GiveRating(
                            trade_id=f"T{i}",
                            rater=rater,
                            score="positive",
                            occurred_at=T0 + 2 * DAY,
                        ),
                        Origin("svc", f"rate-{i}-{rater}"),
                    )
                    for rater in ("buyer", "seller")
                ],
            )
            assert all(isinstance(r, Appended | ConcurrentUpdateError) for r in results), results
        failed: list[Exception] = []
        for i in range(12, 40):
            try:
                m.succeeded_trade(f"T{i}", register=False)
            except Exception as error:  # every failure is the finding
                failed.append(error)
        assert failed == []
    finally:
        app.close()


def test_many_trades_in_parallel_lose_nothing(postgres_url: str) -> None:
    m = Market.open(postgres_url)
    try:
        m.members("buyer-1", "seller-1")
        errors: list[Exception] = []

        def create_many(worker: int) -> None:
            for i in range(10):
                try:
                    m.trade(f"W{worker}-{i}", register=False)
                except Exception as error:
                    errors.append(error)

        threads = [threading.Thread(target=create_many, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        positions = [n.id for n in m.app.iter_log()]
        assert len(positions) == 2 + 60
        assert positions == sorted(positions)
    finally:
        m.app.close()


def test_deadline_workers_running_at_once_fire_each_deadline_once(postgres_url: str) -> None:
    m = Market.open(postgres_url)
    try:
        for i in range(20):
            m.shipped_trade(f"T{i}")
        apps = [LedgerApp(postgres_url, clock=m.clock) for _ in range(3)]
        runs: list[Any] = []
        barrier = threading.Barrier(len(apps))

        def work(app: LedgerApp) -> None:
            barrier.wait(timeout=10)
            runs.append(app.run_deadlines(T0 + 30 * DAY))

        threads = [threading.Thread(target=work, args=(app,)) for app in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for app in apps:
            app.close()

        fired = sorted(p for run in runs for p in run.positions)
        assert len(fired) == len(set(fired)) == 20 * 2  # confirmation + release each
        confirmations = [t for t in m.topics() if t == "trade.receipt_confirmed.v1"]
        assert len(confirmations) == 20
        assert m.app.run_deadlines(T0 + 30 * DAY).positions == ()
    finally:
        m.app.close()
