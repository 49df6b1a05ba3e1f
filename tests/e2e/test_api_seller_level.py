"""A seller's level through HTTP, on every store: under ebay-style it follows
the seller's defects (trades it cancelled, from how many buyers); under a
rulebook without seller levels it is null."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client import TrustLedger
from ledger import commands as c
from tests.e2e.support import Api, running_api, when

SELLER = "s-1"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def trades(service: TrustLedger, buyers: list[str], *, cancelled: set[str]) -> int:
    """A trade from each buyer, in order; those of ``cancelled`` buyers the
    seller cancels. The last position written."""
    for member in {SELLER, *buyers}:
        service.register_member(c.RegisterMember(member_id=member, occurred_at=when(0)))
    for number, buyer in enumerate(buyers, start=1):
        trade_id, at = f"t-{number}", when(number)
        service.create_trade(
            c.CreateTrade(
                trade_id=trade_id,
                buyer_id=buyer,
                seller_id=SELLER,
                item_id=f"i-{number}",
                amount_minor=50_000,
                currency="CNY",
                goods_kind="physical",
                shipping="express",
                occurred_at=at,
            )
        )
        if buyer in cancelled:
            close = c.CloseTrade(trade_id=trade_id, reason="seller_cancelled", occurred_at=at)
            service.close_trade(close)
    return service.written


def test_a_seller_cancelling_for_five_buyers_is_below_standard(api: Api) -> None:
    buyers = [f"b-{n}" for n in range(1, 8)]
    last = trades(api.service, buyers, cancelled=set(buyers[:5]))

    level = api.reader.get_seller_level(
        SELLER, rulebook="ebay-style", as_of=when(24), min_position=last
    )

    assert level.rulebook == "ebay-style@1"
    assert level.level is not None
    assert (level.level.level, level.level.trades, level.level.defects) == ("below_standard", 7, 5)
    assert (level.level.defect_buyers, level.level.window_days) == (5, 365)
    assert len(level.level.positions) == 5


def test_defects_from_one_buyer_leave_the_seller_above_standard(api: Api) -> None:
    last = trades(api.service, ["b-1", "b-2", "b-3"], cancelled={"b-1"})

    level = api.reader.get_seller_level(
        SELLER, rulebook="ebay-style", as_of=when(24), min_position=last
    ).level

    assert level is not None
    assert (level.level, level.defects, level.defect_buyers) == ("above_standard", 1, 1)
    assert level.defect_rate == pytest.approx(1 / 3)


def test_a_rulebook_without_seller_levels_answers_null(api: Api) -> None:
    last = trades(api.service, ["b-1"], cancelled=set())

    answer = api.reader.get_seller_level(SELLER, rulebook="taobao-classic", min_position=last)

    assert answer.level is None
    assert answer.rulebook == "taobao-classic@1"
