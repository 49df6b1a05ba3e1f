"""Penalties served from snapshots on every backend: right after new facts and as time passes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import commands as c
from ledger.clock import FixedClock
from projections.queries import Reputation
from projections.runner import Runner
from projections.views import ReputationView, open_view
from tests.support import DAY, HOUR, T0, Market


@pytest.fixture
def setup(market: Market, database_url: str) -> Iterator[tuple[Market, ReputationView, FixedClock]]:
    view = open_view(database_url)
    clock = FixedClock(T0 + 2 * DAY)
    yield market, view, clock
    view.close()


def violation(market: Market, at: object, points: int = 12, violation_id: str = "V1") -> None:
    market.run(
        market.app.record_violation,
        c.RecordViolation(
            seller_id="seller-1",
            violation_id=violation_id,
            category="serious",
            points=points,
            reason="counterfeit listings",
            occurred_at=at,  # type: ignore[arg-type]
        ),
    )


def test_a_new_fact_invalidates_the_snapshot(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    runner = Runner(market.app, view)
    runner.catch_up()
    reputation = Reputation(view, clock)
    first = reputation.penalties(["seller-1"])[0][0]
    assert first is not None and first.searchable
    assert view.snapshots("taobao-classic@1", ["seller-1"])  # kept
    violation(market, T0 + DAY)
    runner.catch_up()
    after = reputation.penalties(["seller-1"])[0][0]
    assert after is not None
    assert not after.searchable


def test_a_snapshot_expires_when_the_ban_ends(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    market.succeeded_trade()
    violation(market, T0 + DAY)
    Runner(market.app, view).catch_up()
    reputation = Reputation(view, clock)
    banned = reputation.penalty("seller-1").figure
    assert not banned.searchable
    clock.set(T0 + DAY + 7 * DAY - HOUR)
    assert not reputation.penalty("seller-1").figure.searchable
    clock.set(T0 + DAY + 7 * DAY)
    assert reputation.penalty("seller-1").figure.searchable
    snapshot = view.snapshots("taobao-classic@1", ["seller-1"])["seller-1"]
    assert snapshot.as_of == T0 + 8 * DAY


def test_snapshots_agree_with_computing_afresh(
    setup: tuple[Market, ReputationView, FixedClock],
) -> None:
    market, view, clock = setup
    for i in range(5):
        market.succeeded_trade(f"T{i}", buyer=f"buyer-{i}")
        market.rate(f"T{i}", "buyer", "negative" if i % 2 else "positive")
    violation(market, T0 + DAY, points=24)
    Runner(market.app, view).catch_up()
    reputation = Reputation(view, clock)
    for day in (2, 5, 9, 16, 17, 30, 40):
        clock.set(T0 + day * DAY)
        served = reputation.penalties(["seller-1", "nobody"])[0]
        fresh = reputation.penalties(["seller-1"], as_of=T0 + day * DAY)[0]
        assert served == [fresh[0], None]
