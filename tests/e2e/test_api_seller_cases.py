"""A seller's complaints and refunds through HTTP and the typed client, on
memory, SQLite and PostgreSQL: pages in log order, a ``Link`` to the next,
read-your-writes, ETags, and the refusals the trade lists give."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import Role
from ledger import commands as c
from tests.e2e.support import Api, at, running_api, when


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def trade(api: Api, trade_id: str, hour: int) -> None:
    body = {
        "trade_id": trade_id,
        "buyer_id": "buyer-1",
        "seller_id": "seller-1",
        "item_id": "teapot",
        "amount_minor": 12_800,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": at(hour),
    }
    api.ok("/v1/trades", body)
    api.ok(f"/v1/trades/{trade_id}/payment", {"occurred_at": at(hour + 1)})


def story(api: Api) -> int:
    """Three trades of seller-1, each with a refund and a complaint; the last position."""
    for member in ("buyer-1", "seller-1"):
        api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    for n in (1, 2, 3):
        trade(api, f"T{n}", n)
    for n in (1, 2, 3):
        refund = {
            "refund_id": f"R{n}",
            "amount_minor": 1_000 * n,
            "reason": "damaged",
            "with_return": False,
            "occurred_at": at(10 + n),
        }
        api.ok(f"/v1/trades/T{n}/refunds", refund)
        complaint = {
            "complaint_id": f"C{n}",
            "trade_id": f"T{n}",
            "type": "late_shipment",
            "severity": "minor",
            "occurred_at": at(10 + n),
        }
        api.ok("/v1/complaints", complaint)
    api.ok("/v1/trades/T1/refunds/R1/agree", {"occurred_at": at(20)})
    api.ok("/v1/trades/T2/refunds/R2/cancel", {"occurred_at": at(20)})
    api.ok("/v1/complaints/C1/escalation", {"occurred_at": at(20)})
    (last,) = api.ok("/v1/complaints/C1/ruling", {"outcome": "upheld", "occurred_at": at(21)})
    return last


def test_a_sellers_complaints_and_refunds_come_in_pages_with_a_link_to_the_next(
    api: Api,
) -> None:
    last = story(api)
    service = {"Authorization": f"Bearer {api.keys[Role.SERVICE]}"}
    first = api.client.get(
        "/v1/sellers/seller-1/refunds", params={"limit": 2, "min_position": last}, headers=service
    )
    assert first.status_code == 200, first.text
    page = first.json()
    assert [r["refund_id"] for r in page["refunds"]] == ["R1", "R2"]
    assert [r["status"] for r in page["refunds"]] == ["paid", "cancelled"]
    assert page["refunds"][0]["settled_at"] == at(20) and page["refunds"][0]["paid_at"] == at(20)
    link = first.headers["link"]
    assert link.endswith('rel="next"') and page["next_cursor"] in link
    rest = api.client.get(link[1 : link.index(">")], headers=service).json()
    assert [(r["refund_id"], r["status"]) for r in rest["refunds"]] == [("R3", "requested")]
    assert rest["next_cursor"] is None

    complaints = api.get("/v1/sellers/seller-1/complaints", limit=2)
    assert complaints.status_code == 200, complaints.text
    filed = complaints.json()["complaints"]
    assert [(x["complaint_id"], x["outcome"]) for x in filed] == [("C1", "upheld"), ("C2", None)]
    assert (filed[0]["escalated_at"], filed[0]["ruled_at"]) == (at(20), at(21))
    assert filed[0]["position"] < filed[1]["position"] and "link" in complaints.headers
    # A caller that holds the answer is told it has not changed.
    again = api.get("/v1/sellers/seller-1/complaints", limit=3)
    assert again.headers["etag"] and "link" not in again.headers
    unchanged = api.client.get(
        "/v1/sellers/seller-1/complaints",
        params={"limit": 3},
        headers={**service, "If-None-Match": again.headers["etag"]},
    )
    assert unchanged.status_code == 304

    for path in ("complaints", "refunds"):
        nobody = api.get(f"/v1/sellers/nobody/{path}")
        assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown_member")
        foreign = api.get(f"/v1/sellers/seller-1/{path}", cursor="x")
        assert (foreign.status_code, foreign.json()["code"]) == (422, "invalid_cursor")
        too_many = api.get(f"/v1/sellers/seller-1/{path}", limit=1_001)
        assert too_many.status_code == 422
        assert api.get(f"/v1/sellers/seller-1/{path}", role=Role.RANKING).status_code == 403


def test_the_typed_client_follows_the_pages_and_reads_its_own_writes(api: Api) -> None:
    story(api)
    client = api.service
    ruled = c.RuleComplaint(complaint_id="C2", outcome="dismissed", occurred_at=when(22))
    client.rule_complaint(ruled)
    complaints = client.list_seller_complaints("seller-1")
    assert [(x.complaint_id, x.outcome) for x in complaints.complaints] == [
        ("C1", "upheld"),
        ("C2", "dismissed"),
        ("C3", None),
    ]
    assert complaints.complaints[0].points == 3 and complaints.next_cursor is None
    first = client.list_seller_refunds("seller-1", limit=2)
    rest = client.list_seller_refunds("seller-1", cursor=first.next_cursor)
    assert [r.refund_id for r in (*first.refunds, *rest.refunds)] == ["R1", "R2", "R3"]
    assert rest.next_cursor is None and rest.refunds[0].amount_minor == 3_000
