"""The penalty change feed on every backend: a change for each new penalty,
by a fact or by time, once, in order, resumable from any feed position."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import commands as c
from ledger.clock import FixedClock
from projections.follower import Follower, FollowerSettings
from projections.log_tree import open_log_tree
from projections.penalty_feed import FEED_DUE_SELLERS_MAX, PenaltyChange, open_penalty_feed
from projections.views import open_view
from tests.support import DAY, HOUR, T0, Market

STAMP = "taobao-classic@1"


@pytest.fixture
def follower(market: Market, database_url: str) -> Iterator[tuple[Follower, FixedClock]]:
    clock = FixedClock(T0 + 2 * DAY)
    view, tree = open_view(database_url), open_log_tree(database_url)
    feed = open_penalty_feed(database_url, STAMP)
    settings = FollowerSettings(deadline_worker=False)
    try:
        yield Follower(market.app, view, tree, clock=clock, settings=settings, feed=feed), clock
    finally:
        feed.close()
        tree.close()
        view.close()


def _violation(market: Market, at: object, seller: str = "seller-1") -> int:
    (position,) = market.run(
        market.app.record_violation,
        c.RecordViolation(
            seller_id=seller,
            violation_id=f"V-{seller}",
            category="serious",
            points=12,  # a 7-day ban from the violation on
            reason="counterfeit listings",
            occurred_at=at,  # type: ignore[arg-type]
        ),
    ).positions
    return position


def _all(follower: Follower) -> list[PenaltyChange]:
    """The whole feed, a page at a time."""
    assert follower.feed_runner is not None
    feed, changes = follower.feed_runner.feed, list[PenaltyChange]()
    while page := feed.changes(len(changes)):
        changes.extend(page)
    return changes


def test_each_penalty_change_is_written_once_in_order(
    market: Market, follower: tuple[Follower, FixedClock]
) -> None:
    runner, clock = follower
    market.succeeded_trade()
    runner.catch_up()
    (first,) = _all(runner)
    assert (first.feed_position, first.seller_id, first.cause) == (1, "seller-1", "fact")
    assert first.penalty.searchable and first.rulebook == STAMP
    runner.catch_up()
    market.members("buyer-2")  # no fact about the seller
    market.trade("T2", register=False)  # about the seller, but its penalty stays as it was
    runner.catch_up()
    assert _all(runner) == [first]

    banned_at = _violation(market, T0 + DAY)
    runner.catch_up()
    second = _all(runner)[-1]
    assert (second.feed_position, second.cause, second.position) == (2, "fact", banned_at)
    assert not second.penalty.searchable

    clock.set(T0 + 8 * DAY - HOUR)  # the ban has an hour to run
    runner.catch_up()
    assert len(_all(runner)) == 2
    clock.set(T0 + 8 * DAY)  # it ended: time alone changed the penalty
    runner.catch_up()
    third = _all(runner)[-1]
    assert (third.feed_position, third.cause, third.as_of) == (3, "time", T0 + 8 * DAY)
    assert third.penalty.searchable
    runner.catch_up()
    changes = _all(runner)
    assert len(changes) == 3
    feed = runner.feed_runner.feed if runner.feed_runner else None
    assert feed is not None
    for after in range(4):  # resumed anywhere: the rest, nothing repeated
        assert feed.changes(after) == changes[after:]
    assert feed.changes(1, limit=1) == changes[1:2]


def test_many_sellers_due_at_once_are_all_rewritten(
    market: Market, follower: tuple[Follower, FixedClock]
) -> None:
    runner, clock = follower
    sellers = [f"s{i}" for i in range(FEED_DUE_SELLERS_MAX + 3)]
    market.members(*sellers)
    for seller in sellers:
        _violation(market, T0 + DAY, seller)
    runner.catch_up()
    assert len(_all(runner)) == len(sellers)
    clock.set(T0 + 8 * DAY)
    runner.catch_up()
    changes = _all(runner)[len(sellers) :]
    assert sorted(c.seller_id for c in changes) == sorted(sellers)
    assert all(c.cause == "time" and c.penalty.searchable for c in changes)
