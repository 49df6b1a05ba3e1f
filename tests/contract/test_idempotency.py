"""Idempotency keys: repeated commands answer with the original positions."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from ledger import commands as c
from ledger.app import LedgerApp, Origin
from ledger.errors import ErrorCode, NotFoundError, StateConflictError
from tests.support import HOUR, T0, Market


def create(trade_id: str = "T1", amount_minor: int = 10_000) -> c.CreateTrade:
    return c.CreateTrade(
        trade_id=trade_id,
        buyer_id="buyer-1",
        seller_id="seller-1",
        item_id="item-1",
        amount_minor=amount_minor,
        currency="CNY",
        goods_kind="physical",
        shipping="express",
        occurred_at=T0 + HOUR,
    )


def test_same_key_same_command_returns_the_original_positions_and_writes_nothing(
    market: Market,
) -> None:
    market.members("buyer-1", "seller-1")
    first = market.run(market.app.create_trade, create(), key="order-42")
    size = market.log_size()

    again = market.run(market.app.create_trade, create(), key="order-42")

    assert again.positions == first.positions
    assert again.replayed and not first.replayed
    assert market.log_size() == size


def test_same_key_different_command_is_refused(market: Market) -> None:
    market.members("buyer-1", "seller-1")
    market.run(market.app.create_trade, create(), key="order-42")

    error = market.refused(
        lambda cmd, _origin: market.app.create_trade(cmd, market.origin("order-42")),
        create(amount_minor=9_999),
    )
    assert isinstance(error, StateConflictError)
    assert error.code == ErrorCode.IDEMPOTENCY_KEY_REUSED


def test_keys_are_scoped_to_the_caller(market: Market) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    app = m.app
    app.create_trade(create("T1"), Origin("order-service", "k1"))
    result = app.create_trade(create("T2"), Origin("risk-service", "k1"))
    assert not result.replayed


def test_a_refused_command_does_not_bind_its_key(market: Market) -> None:
    m = market
    m.members("buyer-1")  # the seller is not registered yet: refused
    with pytest.raises(NotFoundError) as refused:
        m.run(m.app.create_trade, create(), key="k")
    assert refused.value.code == ErrorCode.UNKNOWN_MEMBER
    m.members("seller-1")
    ok = m.run(m.app.create_trade, create(amount_minor=500), key="k")
    assert not ok.replayed


def test_the_time_zone_of_a_repeated_command_does_not_make_it_different(
    market: Market,
) -> None:
    m = market
    m.members("buyer-1", "seller-1")
    first = m.run(m.app.create_trade, create(), key="k")
    shanghai = create()
    shanghai = c.CreateTrade(
        **{
            **{f: getattr(shanghai, f) for f in shanghai.__struct_fields__},
            "occurred_at": (T0 + HOUR).astimezone(timezone(timedelta(hours=8))),
        }
    )
    assert m.run(m.app.create_trade, shanghai, key="k").positions == first.positions


def test_idempotency_survives_a_restart(database_url: str) -> None:
    if database_url == "memory:":
        return  # nothing survives a restart in memory
    first_market = Market.open(database_url)
    first_market.members("buyer-1", "seller-1")
    first = first_market.run(first_market.app.create_trade, create(), key="order-42")
    first_market.app.close()

    restarted = Market.open(database_url)
    try:
        size = restarted.log_size()
        again = restarted.run(restarted.app.create_trade, create(), key="order-42")
        assert again.positions == first.positions
        assert again.replayed
        assert restarted.log_size() == size
        error = restarted.refused(
            lambda cmd, _o: restarted.app.create_trade(cmd, restarted.origin("order-42")),
            create(amount_minor=1),
        )
        assert error.code == ErrorCode.IDEMPOTENCY_KEY_REUSED
    finally:
        restarted.app.close()


def test_the_original_positions_include_settled_deadlines(market: Market) -> None:
    m = market
    m.shipped_trade()
    rate = c.GiveRating(
        trade_id="T1", rater="buyer", score="positive", occurred_at=T0 + 20 * 24 * HOUR
    )
    first = m.run(m.app.give_rating, rate, key="rate-1")
    assert len(first.positions) == 3  # auto-confirmation, escrow release, the rating
    assert m.run(m.app.give_rating, rate, key="rate-1").positions == first.positions


def test_ledger_app_is_named_for_stable_table_names() -> None:
    assert LedgerApp.name == "trustledger"
