"""docs/rules.md §8 through HTTP: each refusal answers its status and code, and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from api.problems import CODES
from api.rate_limits import RATE_LIMITS_DEFAULT, RateLimit
from tests.e2e.support import Api, at, running_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api("memory:", tmp_path_factory.mktemp("refusals")) as client:
        for member in ("buyer-1", "seller-1", "seller-2"):
            client.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
        for trade, seller in (("T1", "seller-1"), ("T2", "seller-2"), ("T3", "seller-1")):
            client.ok("/v1/trades", trade_body(trade, seller))
        client.ok("/v1/trades/T1/payment", {"occurred_at": at(2)})
        client.ok("/v1/trades/T1/shipment", {"occurred_at": at(3)})
        client.ok("/v1/trades/T1/receipt", {"occurred_at": at(24)})
        client.ok(
            "/v1/trades/T1/ratings", {"rater": "buyer", "score": "positive", "occurred_at": at(30)}
        )
        client.ok("/v1/trades/T3/payment", {"occurred_at": at(2)})
        client.ok(
            "/v1/complaints",
            {
                "complaint_id": "C1",
                "trade_id": "T3",
                "type": "other",
                "severity": "minor",
                "occurred_at": at(5),
            },
        )
        yield client


def trade_body(trade_id: str, seller: str, **changes: Any) -> dict[str, Any]:
    body = {
        "trade_id": trade_id,
        "buyer_id": "buyer-1",
        "seller_id": seller,
        "item_id": "item-1",
        "amount_minor": 1_000,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": at(1),
    }
    body.update(changes)
    return body


REFUSALS = [
    ("/v1/trades", trade_body("T9", "seller-1", amount_minor=0), 422, "invalid_input"),
    ("/v1/trades", trade_body("T9", "seller-1", amount_minor=1.5), 422, "invalid_input"),
    ("/v1/trades", trade_body("T9", "seller-1", goods_kind="car"), 422, "invalid_input"),
    ("/v1/trades", trade_body("T9", "buyer-1"), 422, "buyer_is_seller"),
    ("/v1/trades", trade_body("T9", "seller-1", currency="USD"), 422, "currency_mismatch"),
    ("/v1/trades", trade_body("T9", "nobody"), 404, "unknown_member"),
    ("/v1/trades", trade_body("T1", "seller-1"), 409, "trade_exists"),
    (
        "/v1/trades",
        trade_body("T9", "seller-1", occurred_at="2999-01-01T00:00:00Z"),
        422,
        "future_timestamp",
    ),
    (
        "/v1/trades",
        trade_body("T9", "seller-1", occurred_at="2026-03-02T09:00:00"),
        422,
        "invalid_input",
    ),
    ("/v1/trades/T1/payment", {"occurred_at": at(40)}, 409, "trade_succeeded"),
    ("/v1/trades/T2/shipment", {"occurred_at": at(40)}, 409, "not_paid"),
    ("/v1/trades/T1/receipt", {"occurred_at": at(40)}, 409, "already_confirmed"),
    ("/v1/trades/T3/timer-extension", {"days": 3, "occurred_at": at(40)}, 409, "timer_not_running"),
    (
        "/v1/trades/T3/refunds",
        {
            "refund_id": "R1",
            "amount_minor": 5_000,
            "reason": "other",
            "with_return": False,
            "occurred_at": at(40),
        },
        409,
        "refund_exceeds_escrow",
    ),
    ("/v1/trades/T3/refunds/R9/agree", {"occurred_at": at(40)}, 404, "unknown_refund"),
    ("/v1/trades/T3/dispute", {"refund_id": "R9", "occurred_at": at(40)}, 404, "unknown_refund"),
    (
        "/v1/trades/T3/dispute/ruling",
        {"outcome": "seller_at_fault", "occurred_at": at(40)},
        409,
        "no_dispute",
    ),
    (
        "/v1/trades/T2/ratings",
        {"rater": "buyer", "score": "positive", "occurred_at": at(40)},
        409,
        "not_succeeded",
    ),
    (
        "/v1/trades/T1/ratings",
        {"rater": "buyer", "score": "negative", "occurred_at": at(40)},
        409,
        "already_rated",
    ),
    (
        "/v1/trades/T1/ratings",
        {
            "rater": "seller",
            "score": "positive",
            "occurred_at": at(40),
            "rater_id": "buyer-1",
        },
        409,
        "not_that_party",
    ),
    (
        "/v1/trades/T1/ratings",
        {
            "rater": "seller",
            "score": "positive",
            "occurred_at": at(40),
            "dsr": {"as_described": 5, "service": 5, "shipping_speed": 5, "logistics": 5},
        },
        422,
        "dsr_from_seller",
    ),
    (
        "/v1/trades/T1/ratings",
        {
            "rater": "seller",
            "score": "positive",
            "occurred_at": at(40),
            "dsr": {"as_described": 6, "service": 5, "shipping_speed": 5, "logistics": 5},
        },
        422,
        "invalid_input",
    ),
    (
        "/v1/trades/T1/ratings",
        {"rater": "seller", "score": "positive", "occurred_at": at(24 * 20)},
        409,
        "rating_window_closed",
    ),
    ("/v1/trades/T1/ratings/buyer/revision", {"occurred_at": at(40)}, 409, "rating_final"),
    ("/v1/trades/T1/ratings/seller/revision", {"occurred_at": at(40)}, 404, "unknown_rating"),
    (
        "/v1/complaints",
        {
            "complaint_id": "C2",
            "trade_id": "T3",
            "type": "other",
            "severity": "minor",
            "occurred_at": at(40),
        },
        409,
        "complaint_exists",
    ),
    (
        "/v1/complaints",
        {
            "complaint_id": "C3",
            "trade_id": "T1",
            "type": "other",
            "severity": "minor",
            "occurred_at": at(40),
            "filed_by": "seller-1",
        },
        409,
        "not_that_party",
    ),
    (
        "/v1/complaints/C9/ruling",
        {"outcome": "upheld", "occurred_at": at(40)},
        404,
        "unknown_complaint",
    ),
    (
        "/v1/sellers/seller-2/fake-trades",
        {"case_id": "K1", "trade_ids": ["T1"], "occurred_at": at(40)},
        409,
        "trade_of_other_seller",
    ),
    (
        "/v1/sellers/seller-1/fake-trades",
        {"case_id": "K1", "trade_ids": ["T404"], "occurred_at": at(40)},
        404,
        "unknown_trade",
    ),
    (
        "/v1/sellers/seller-1/violations",
        {
            "violation_id": "V1",
            "category": "general",
            "points": 49,
            "reason": "x",
            "occurred_at": at(40),
        },
        422,
        "invalid_input",
    ),
    (
        "/v1/sellers/seller-1/search-cheating",
        {
            "case_id": "S1",
            "item_ids": [f"i{n}" for n in range(1001)],
            "kind": "fake_sales",
            "occurred_at": at(40),
        },
        422,
        "invalid_input",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), REFUSALS)
def test_each_refusal_has_its_status_and_code_and_writes_nothing(
    api: Api, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    ledger = api.client.app.state.service.ledger  # type: ignore[attr-defined]
    before = ledger.recorder.max_notification_id()
    response = api.post(path, body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert code in CODES  # the Problem schema's enum lists it
    assert ledger.recorder.max_notification_id() == before


def test_a_key_over_its_roles_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    limits = {**RATE_LIMITS_DEFAULT, Role.READER: RateLimit(per_second=0.5, burst=3)}
    with running_api("memory:", tmp_path, rate_limits=limits) as limited:
        answers = [limited.get("/v1/rulebooks") for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "too_many_requests"
        assert refused.headers["retry-after"] == "2"
        assert limited.get("/v1/rulebooks", role=Role.RANKING).status_code == 200  # its own bucket
        assert limited.client.get("/healthz").status_code == 200  # not limited


def test_an_address_that_keeps_failing_to_sign_in_is_slowed_down(tmp_path: Path) -> None:
    with running_api("memory:", tmp_path) as api:
        bad = {"Authorization": "Bearer tl_nope_nope"}
        statuses = [api.client.get("/v1/rulebooks", headers=bad).status_code for _ in range(35)]
        assert statuses[:30] == [401] * 30
        assert set(statuses[30:]) == {429}
        refused = api.client.get("/v1/rulebooks", headers=api.headers(Role.READER))
        assert refused.status_code == 429  # the address waits, whatever key it sends now
        assert int(refused.headers["retry-after"]) >= 1
