"""A trade's life on every backend: escrow, shipping, success, deadlines."""

from __future__ import annotations

from datetime import timedelta

from ledger import commands as c
from ledger.events import RatingGiven, ReceiptConfirmed, TradeShipped
from tests.support import DAY, HOUR, T0, Market


def test_a_trade_runs_from_creation_to_success(market: Market) -> None:
    market.trade()
    market.pay()
    market.ship()
    result = market.confirm()

    assert len(result.positions) == 2
    assert market.topics()[-5:] == [
        "trade.created.v1",
        "trade.payment_escrowed.v1",
        "trade.shipped.v1",
        "trade.receipt_confirmed.v1",
        "trade.escrow_released.v1",
    ]
    trade = market.app.trade("T1")
    assert trade is not None
    assert trade.succeeded_at == T0 + DAY
    assert trade.rating_window_closes_at == T0 + 16 * DAY


def test_every_event_carries_business_time_policy_version_and_parties(market: Market) -> None:
    market.succeeded_trade()
    for event in market.events():
        assert event.occurred_at.tzinfo is not None
        assert event.policy_version == "taobao-classic@1"
        assert event.recorded_at == market.clock.now()
    shipped = next(e for e in market.events() if isinstance(e, TradeShipped))
    assert (shipped.trade_id, shipped.buyer_id, shipped.seller_id) == ("T1", "buyer-1", "seller-1")


def test_positions_increase_in_log_order(market: Market) -> None:
    market.succeeded_trade()
    positions = [n.id for n in market.app.iter_log()]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_auto_confirmation_is_recorded_at_its_due_time_by_the_next_command(
    market: Market,
) -> None:
    market.shipped_trade()  # shipped at T0+3h by express: due 10 days later
    due = T0 + 3 * HOUR + 10 * DAY
    result = market.rate(at=due + DAY)  # the buyer rates a day after the timer ran out

    events = market.events()
    confirmed = next(e for e in events if isinstance(e, ReceiptConfirmed))
    assert confirmed.by == "auto"
    assert confirmed.occurred_at == due
    assert len(result.positions) == 3  # confirmation, release, then the rating
    rating = events[-1]
    assert isinstance(rating, RatingGiven)
    assert rating.succeeded_at == due


def test_the_deadline_worker_fires_due_deadlines_and_never_early(market: Market) -> None:
    market.shipped_trade()
    due = T0 + 3 * HOUR + 10 * DAY

    early = market.app.run_deadlines(due - timedelta(microseconds=1))
    assert early.positions == ()
    on_time = market.app.run_deadlines(due)
    assert len(on_time.positions) == 2
    assert market.topics()[-2:] == ["trade.receipt_confirmed.v1", "trade.escrow_released.v1"]


def test_an_earlier_deadline_run_fires_nothing_new(market: Market) -> None:
    market.shipped_trade()
    market.app.run_deadlines(T0 + 30 * DAY)
    size = market.log_size()
    again = market.app.run_deadlines(T0 + 20 * DAY)
    assert again.positions == ()
    assert market.log_size() == size


def test_default_positive_for_the_silent_side_at_window_close(market: Market) -> None:
    market.succeeded_trade()
    market.rate(rater="buyer", score="positive")
    market.app.run_deadlines(T0 + 40 * DAY)

    default = market.events()[-1]
    assert isinstance(default, RatingGiven)
    assert (default.rater, default.score, default.default) == ("seller", "positive", True)
    assert default.occurred_at == T0 + DAY + 15 * DAY
    assert default.dsr is None


def test_top_up_goods_confirm_at_shipping_time(market: Market) -> None:
    market.trade(goods_kind="top_up", shipping="none")
    market.pay()
    result = market.ship()
    assert len(result.positions) == 3
    assert market.app.trade("T1").succeeded_at == T0 + 3 * HOUR  # type: ignore[union-attr]


def test_explanation_follow_up_and_shielding_are_recorded(market: Market) -> None:
    market.succeeded_trade()
    market.rate(score="negative", comment="slow")
    app = market.app
    market.run(
        app.explain_rating,
        c.ExplainRating(
            trade_id="T1",
            rater="buyer",
            text="courier strike",
            author_id="seller-1",
            occurred_at=T0 + 3 * DAY,
        ),
    )
    market.run(
        app.review_follow_up,
        c.ReviewFollowUp(
            trade_id="T1", rater="buyer", text="works fine now", occurred_at=T0 + 20 * DAY
        ),
    )
    market.run(
        app.shield_rating,
        c.ShieldRating(trade_id="T1", rater="buyer", reason="abusive", occurred_at=T0 + 21 * DAY),
    )
    assert market.topics()[-3:] == [
        "rating.explained.v1",
        "rating.follow_up_reviewed.v1",
        "rating.shielded.v1",
    ]
