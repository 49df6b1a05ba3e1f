"""A member's figures over time through HTTP and the typed client: each point
of a credit, shop-score or penalty series is what the single query answers as
of its time, and the window's limits are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.auth import Role
from projections.series import SERIES_POINTS_MAX
from tests.e2e.support import Api, at, running_api, when

STAMPS = ("rulebook", "position")


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def story(api: Api) -> int:
    """A seller sells to two buyers, is rated, and is charged a violation; the
    views are brought up to the last position, which is returned."""
    for member in ("seller-1", "buyer-1", "buyer-2"):
        api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    for n, buyer in enumerate(("buyer-1", "buyer-2", "buyer-1"), start=1):
        hour = 24 * n
        body = {
            "trade_id": f"T{n}",
            "buyer_id": buyer,
            "seller_id": "seller-1",
            "item_id": f"item-{n}",
            "amount_minor": 12_800,
            "currency": "CNY",
            "goods_kind": "physical",
            "shipping": "express",
            "occurred_at": at(hour),
        }
        api.ok("/v1/trades", body)
        api.ok(f"/v1/trades/T{n}/payment", {"occurred_at": at(hour + 1)})
        api.ok(f"/v1/trades/T{n}/shipment", {"occurred_at": at(hour + 2)})
        api.ok(f"/v1/trades/T{n}/receipt", {"occurred_at": at(hour + 30)})
        rating = {
            "rater": "buyer",
            "rater_id": buyer,
            "score": "negative" if n == 2 else "positive",
            "dsr": {"as_described": 5, "service": n + 2, "shipping_speed": 4, "logistics": 3},
            "occurred_at": at(hour + 40),
        }
        api.ok(f"/v1/trades/T{n}/ratings", rating)
    violation = {
        "violation_id": "V1",
        "category": "general",
        "points": 12,
        "reason": "misleading listing",
        "occurred_at": at(24 * 5),
    }
    (last,) = api.ok("/v1/sellers/seller-1/violations", violation)
    api.reader.get_credit("seller-1", min_position=last)
    return last


def without(answer: msgspec.Struct, *names: str) -> dict[str, Any]:
    fields = msgspec.structs.asdict(answer)
    return {name: value for name, value in fields.items() if name not in names}


def test_each_point_is_what_the_single_query_answers_as_of_it(api: Api) -> None:
    story(api)
    start, end = when(-48), when(24 * 30)
    credit = api.reader.get_credit_series("seller-1", from_=start, to=end, step="day")
    assert credit.member_id == "seller-1" and credit.step == "day"
    # Registered at hour 0: the days before are left out.
    assert [p.as_of for p in credit.points] == [
        when(-48) + n * timedelta(days=1) for n in range(2, 33)
    ]
    for point in credit.points:
        single = api.reader.get_credit("seller-1", as_of=point.as_of)
        assert msgspec.structs.asdict(point) == without(single, *STAMPS)
        assert (credit.rulebook, credit.position) == (single.rulebook, single.position)
    assert len({p.score for p in credit.points}) > 1  # the figure moves over the window
    buyer = api.reader.get_credit_series("buyer-1", from_=start, to=end, role="buyer", step="week")
    for point in buyer.points:
        single = api.reader.get_credit("buyer-1", role="buyer", as_of=point.as_of)
        assert msgspec.structs.asdict(point) == without(single, *STAMPS)
    dsr = api.reader.get_seller_dsr_series("seller-1", from_=start, to=end, rulebook="ebay-style")
    assert dsr.rulebook == "ebay-style@1"
    for shop in dsr.points:
        single_dsr = api.reader.get_seller_dsr("seller-1", as_of=shop.as_of, rulebook="ebay-style")
        assert msgspec.structs.asdict(shop) == without(single_dsr, *STAMPS)
    assert dsr.points[-1].count == 3
    penalty = api.ranking.get_seller_penalty_series("seller-1", from_=start, to=end)
    for demotion in penalty.points:
        single_penalty = api.ranking.get_seller_penalty("seller-1", as_of=demotion.as_of)
        assert msgspec.structs.asdict(demotion) == without(single_penalty, *STAMPS, "seller_id")
    assert [p.searchable for p in penalty.points].count(False) > 0  # the violation's ban
    _check_violations_series(api, start, end)
    audited = api.auditor.get_credit_series("seller-1", from_=start, to=end, at_position=10)
    assert audited.position == 10
    for point in audited.points:
        single = api.auditor.get_credit("seller-1", as_of=point.as_of, at_position=10)
        assert msgspec.structs.asdict(point) == without(single, *STAMPS)


def _check_violations_series(api: Api, start: datetime, end: datetime) -> None:
    """Each point is the single query's points and seal, with the bans in force then."""
    series = api.reader.get_seller_violations_series("seller-1", from_=start, to=end, step="day")
    for point in series.points:
        single = api.reader.get_seller_violations("seller-1", as_of=point.as_of)
        assert (point.points, point.sealed) == (single.points, single.sealed)
        in_force = [ban for ban in single.bans if ban.active(point.as_of)]
        assert list(point.bans_in_force) == in_force
    general = [p.points.general for p in series.points]
    assert general[0] == 0 and general[-1] == 12  # the violation of day 5 counts from then on
    assert any(p.bans_in_force for p in series.points)


def test_the_window_and_the_callers_are_refused_as_the_single_queries_refuse_them(
    api: Api,
) -> None:
    story(api)
    path = "/v1/members/seller-1/credit/series"
    window: dict[str, Any] = {"from": at(0), "to": at(24 * 30)}

    def refused(
        status: int, code: str, field: str | None, role: Role = Role.READER, **params: Any
    ) -> None:
        response = api.get(path, role=role, **{**window, **params})
        assert response.status_code == status, response.text
        assert (response.json()["code"], response.json().get("field")) == (code, field)

    refused(422, "invalid_input", "to", to=at(0))
    refused(422, "invalid_input", "to", to=at(-1))
    last_day = at(24 * SERIES_POINTS_MAX)
    assert api.get(path, **{**window, "to": last_day}).status_code == 200
    refused(422, "invalid_input", "to", to=at(24 * SERIES_POINTS_MAX + 1))
    refused(422, "invalid_input", "step", step="hour")
    refused(422, "invalid_input", "to", to="2026-03-02")
    response = api.get(path, to=at(10))
    assert (response.status_code, response.json()["field"]) == (422, "from")
    refused(403, "forbidden", "at_position", at_position=3)
    refused(422, "unknown_rulebook", "rulebook", rulebook="nope")
    refused(422, "position_beyond_log", "min_position", min_position=10_000)
    missing = api.get("/v1/members/nobody/credit/series", **window)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_member")
    before: dict[str, Any] = {"from": at(-48), "to": at(-24)}
    early = api.get(path, **before)
    assert (early.status_code, early.json()["code"]) == (404, "unknown_member")
    refused(403, "forbidden", None, role=Role.RANKING)  # the ranking engine reads penalties
    penalty = api.get("/v1/sellers/seller-1/penalty/series", role=Role.RANKING, **window)
    assert penalty.status_code == 200
    dsr = api.get("/v1/sellers/seller-1/dsr/series", **{**window, "step": "month"})
    assert dsr.status_code == 200 and len(dsr.json()["points"]) == 1
