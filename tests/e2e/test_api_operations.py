"""The operations status through HTTP, on every store: each read model's lag
behind the log, the deadlines due by the ledger's clock, the key ring without
its secrets, and every problem answered counted by its code (whatever layer
answered it) with the latest ones listed, newest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import Role
from client import errors
from tests.e2e.support import Api, at, running_api, when

T_FILL = when(24 * 2)  # the clock while the story is written


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path, now=T_FILL) as client:
        yield client


def shipped_trade(api: Api, trade_id: str, hour: int) -> None:
    for member in ("b-1", "s-1"):
        api.post("/v1/members", {"member_id": member, "occurred_at": at(0)})
    api.ok(
        "/v1/trades",
        {
            "trade_id": trade_id,
            "buyer_id": "b-1",
            "seller_id": "s-1",
            "item_id": "i-1",
            "amount_minor": 12_500,
            "currency": "CNY",
            "goods_kind": "physical",
            "shipping": "express",
            "occurred_at": at(hour),
        },
    )
    api.ok(f"/v1/trades/{trade_id}/payment", {"occurred_at": at(hour + 1)})
    api.ok(f"/v1/trades/{trade_id}/shipment", {"occurred_at": at(hour + 2)})


def test_lags_are_measured_against_the_log_head(api: Api) -> None:
    shipped_trade(api, "t-1", 1)
    head = list(api.auditor.read_log())[-1].position
    api.reader.get_credit("s-1", min_position=head)  # the view has folded the log

    status = api.admin.get_operations_status()

    assert status.log_position == head
    by_name = {p.name: p for p in status.projections}
    assert set(by_name) == {"view", "penalty_feed", "log_tree"}
    assert by_name["view"].position == head and by_name["view"].lag_events == 0
    for standing in by_name.values():
        assert standing.lag_events == head - standing.position >= 0


def test_deadlines_due_follow_the_ledgers_clock(api: Api) -> None:
    shipped_trade(api, "t-1", 1)
    waiting = api.admin.get_operations_status().deadlines
    assert (waiting.due, waiting.oldest_due_at) == (0, None)
    due_at = waiting.next_due_at
    assert due_at is not None and due_at > T_FILL

    api.clock.set(due_at)
    due = api.admin.get_operations_status().deadlines
    api.admin.run_deadlines(due_at)
    fired = api.admin.get_operations_status().deadlines

    assert (due.due, due.more, due.oldest_due_at) == (1, False, due_at)
    assert (fired.due, fired.oldest_due_at) == (0, None)


def test_keys_are_listed_without_their_secrets(api: Api) -> None:
    status = api.admin.get_operations_status()
    raw = api.get("/v1/operations/status", role=Role.ADMIN).text

    assert sorted(key.role for key in status.keys) == sorted(role.value for role in Role)
    assert {key.state for key in status.keys} == {"valid"}
    for plain in api.keys.values():
        secret = plain.split("_", 2)[2]  # tl_<id>_<secret>; the secret may hold "_"
        assert secret not in raw
    assert "sha256" not in raw


def test_problems_are_counted_by_code_and_the_latest_listed_first(api: Api) -> None:
    shipped_trade(api, "t-1", 1)
    refused_append = api.post("/v1/trades/t-404/payment", {"occurred_at": at(3)})
    refused_role = api.get("/v1/operations/status", role=Role.READER)
    no_key = api.client.get("/v1/operations/status")

    status = api.admin.get_operations_status()

    assert [refused_append.status_code, refused_role.status_code, no_key.status_code] == [
        404,
        403,
        401,
    ]
    codes = [refused_append.json()["code"], refused_role.json()["code"], no_key.json()["code"]]
    counts = {count.code: count.count for count in status.refusals}
    for code in codes:
        assert counts[code] >= 1
    latest = status.recent_refusals[:3]
    assert [seen.code for seen in latest] == codes[::-1]
    assert [seen.status for seen in latest] == [401, 403, 404]
    assert latest[2].route == "/v1/trades/{trade_id}/payment"
    service_key_id = api.keys[Role.SERVICE].split("_")[1]
    assert latest[2].key_id == service_key_id
    assert latest[0].key_id is None


def test_only_admin_keys_see_the_status(api: Api) -> None:
    for role in (Role.SERVICE, Role.RANKING, Role.READER, Role.AUDITOR):
        with pytest.raises(errors.Forbidden):
            api.ledger(role).get_operations_status()
