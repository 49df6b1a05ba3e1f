"""Conflict storms on PostgreSQL through a real server, then ordinary work.

Commands that race for one record — both parties rating one trade at once,
one command sent twice at once under one Idempotency-Key, two complaints
about one trade — must each end in a 201 or a 409 problem+json; and the
thousand unrelated appends after them must all succeed: a lost race may not
leave a broken connection behind for someone else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from api.auth import Role
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import ServerProcess, trade_body

TRADES = 30
UNRELATED_APPENDS = 1_000
UNRELATED_APPENDS_LONG = 10_000
CLIENTS = 16

pytestmark = pytest.mark.postgres


def at(hours: int) -> str:
    return f"2026-01-{5 + hours // 24:02d}T{hours % 24:02d}:00:00Z"


def test_races_end_in_201_or_409_and_leave_nothing_broken(
    postgres_url: str, tmp_path: Path, chaos: ChaosRun
) -> None:
    unrelated_appends = int(chaos.scaled(UNRELATED_APPENDS, UNRELATED_APPENDS_LONG))
    with (
        ServerProcess(postgres_url, tmp_path) as server,
        httpx.Client(
            base_url=server.base_url, timeout=30, limits=httpx.Limits(max_connections=CLIENTS)
        ) as client,
    ):
        post = _poster(client, server)
        for member in ("buyer-1", "seller-1"):
            assert (
                post("/v1/members", {"member_id": member, "occurred_at": at(0)}).status_code == 201
            )
        for i in range(TRADES):
            _succeeded_trade(post, f"T{i}")

        storm: list[Callable[[], httpx.Response]] = []
        for i in range(TRADES):
            trade = f"T{i}"
            for rater in ("buyer", "seller"):
                body = {"rater": rater, "score": "positive", "occurred_at": at(30)}
                storm.append(partial(post, f"/v1/trades/{trade}/ratings", body))
            same = {"rater": "buyer", "score": "positive", "occurred_at": at(31)}
            storm += [partial(post, f"/v1/trades/{trade}/ratings", same, key=f"same-{trade}")] * 2
            for n in range(2):
                complaint = {
                    "complaint_id": f"C{i}-{n}",
                    "trade_id": trade,
                    "type": "late_shipment",
                    "severity": "minor",
                    "occurred_at": at(32),
                }
                storm.append(partial(post, "/v1/complaints", complaint))
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(lambda call: call(), storm))
        statuses = Counter(answer.status_code for answer in answers)

        def unrelated(n: int) -> httpx.Response:
            return post("/v1/members", {"member_id": f"after-{n}", "occurred_at": at(40)})

        with ThreadPoolExecutor(CLIENTS) as pool:
            after = list(pool.map(unrelated, range(unrelated_appends)))
        after_statuses = Counter(a.status_code for a in after)
        chaos.record(
            requests=len(answers) + len(after),
            faults=f"{len(storm)} racing commands on {TRADES} trades",
            conflicts_409=statuses[409],
            errors_5xx=sum(n for code, n in (statuses + after_statuses).items() if code >= 500),
            unrelated_appends_failed=unrelated_appends - after_statuses[201],
        )
        assert set(statuses) <= {201, 409}, _problems(answers)
        assert statuses[409] > 0, "the storm should have made conflicts"
        assert all(
            a.headers["content-type"] == "application/problem+json"
            for a in answers
            if a.status_code == 409
        )
        assert after_statuses == {201: unrelated_appends}, _problems(after)


def _poster(client: httpx.Client, server: ServerProcess) -> Callable[..., httpx.Response]:
    keys = iter(range(10**9))

    def post(path: str, body: dict[str, Any], *, key: str | None = None) -> httpx.Response:
        headers = {**server.headers(Role.SERVICE), "Idempotency-Key": key or f"k{next(keys)}"}
        return client.post(path, json=body, headers=headers)

    return post


def _succeeded_trade(post: Callable[..., httpx.Response], trade: str) -> None:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/v1/trades", trade_body(trade, at(1))),
        (f"/v1/trades/{trade}/payment", {"occurred_at": at(2)}),
        (f"/v1/trades/{trade}/shipment", {"occurred_at": at(3)}),
        (f"/v1/trades/{trade}/receipt", {"occurred_at": at(24)}),
    ]
    for path, body in steps:
        answer = post(path, body)
        assert answer.status_code == 201, answer.text


def _problems(answers: list[httpx.Response]) -> list[str]:
    return [f"{a.status_code} {a.text[:160]}" for a in answers if a.status_code not in (201, 409)][
        :5
    ]
