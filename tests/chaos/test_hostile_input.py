"""Hostile input through a real server: every answer a 4xx problem+json, quickly,
and the log exactly as it was.

Each case is one request a careless or malicious caller might send: times at
the calendar's ends, positions past 64 bits, ids with line breaks, paths for
rulebooks, bodies that are not JSON or too deep or too large, keys that are
missing or forged, URLs and headers past their limits. Run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx2 as httpx

from api.auth import Role
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import ServerProcess, trade_body

ANSWER_SECONDS_MAX = 10.0
T = "2026-01-05T09:00:00Z"
LONG_ID = "x" * 129


class Case(NamedTuple):
    name: str
    method: str
    path: str
    body: Any = None  # JSON, or bytes sent as they are
    role: Role | None = Role.SERVICE
    headers: dict[str, str] = {}


def member(member_id: Any, occurred_at: Any = T) -> dict[str, Any]:
    return {"member_id": member_id, "occurred_at": occurred_at}


def trade(**changes: Any) -> dict[str, Any]:
    return trade_body("T-new", T, **changes)


def _cases() -> Iterator[Case]:
    times = [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "2026-01-05T09:00:00",  # no offset
        "2026-02-30T00:00:00Z",
        "2026-06-30T23:59:60Z",
        "+275760-09-13T00:00:00Z",
        "not a time",
        "",
        12345,
        None,
    ]
    for i, at in enumerate(times):
        yield Case(f"occurred_at {at!r}", "POST", "/v1/members", member(f"M-t{i}", at))
    for at in [*times[:5], "yesterday", "2026-01-05T09:00:00"]:
        yield Case(
            f"as_of {at!r}", "GET", f"/v1/sellers/seller-1/penalty?as_of={at}", role=Role.READER
        )
    yield Case("deadlines at year 1", "POST", "/v1/deadlines/run", {"now": times[0]}, Role.ADMIN)
    yield Case("batch as_of year 9999", "POST", "/v1/penalties/batch",
               {"seller_ids": ["seller-1"], "as_of": times[1]}, Role.RANKING)  # fmt: skip

    huge = 2**63
    for path in (
        f"/v1/audit/inclusion?position={huge}&tree_size=1",
        f"/v1/audit/inclusion?position=1&tree_size={huge}",
        "/v1/audit/inclusion?position=-1&tree_size=1",
        "/v1/audit/inclusion?position=abc&tree_size=1",
        f"/v1/audit/consistency?first={huge}&second=1",
        "/v1/audit/consistency?first=1",
        f"/v1/log?after={huge}",
        "/v1/log?after=-1",
        "/v1/log?limit=0",
        f"/v1/log?limit={10**9}",
        f"/v1/members/seller-1/credit?at_position={huge}",
        f"/v1/members/seller-1/credit?min_position={huge}",
        "/v1/members/seller-1/credit?min_position=-5",
        f"/v1/replay?member_id=seller-1&at_position={huge}",
    ):
        yield Case(f"GET {path}", "GET", path, role=Role.AUDITOR)

    for bad_id in ("M1\n", "", " ", "a b", "../etc", "ü", "a/b", "x\x00", LONG_ID, 7, None):
        yield Case(f"member_id {bad_id!r}", "POST", "/v1/members", member(bad_id))
    for path_id in ("M1%0A", "%00", "a%20b", LONG_ID, "..%2F..", "%E2%80%AE"):
        yield Case(
            f"path id {path_id}", "POST", f"/v1/members/{path_id}/verification", {"occurred_at": T}
        )
        yield Case(f"query id {path_id}", "GET", f"/v1/members/{path_id}/credit", role=Role.READER)

    for rulebook in (
        "/etc/passwd",
        "../pyproject.toml",
        "pyproject.toml",
        "",
        "x" * 1000,
        "EBAY-STYLE",
    ):
        yield Case(f"rulebook {rulebook[:20]!r}", "GET",
                   f"/v1/sellers/seller-1/dsr?rulebook={rulebook}", role=Role.READER)  # fmt: skip
    yield Case("batch rulebook path", "POST", "/v1/penalties/batch",
               {"seller_ids": ["seller-1"], "rulebook": "/etc/hosts.toml"}, Role.RANKING)  # fmt: skip

    trade_changes: dict[str, dict[str, Any]] = {
        "amount 10^30": {"amount_minor": 10**30},
        "amount negative": {"amount_minor": -1},
        "amount zero": {"amount_minor": 0},
        "amount float": {"amount_minor": 1.5},
        "amount text": {"amount_minor": "5000"},
        "currency": {"currency": "cny"},
        "goods kind": {"goods_kind": "bitcoin"},
        "buyer is seller": {"buyer_id": "seller-1"},
        "unknown buyer": {"buyer_id": "nobody"},
        "extra field": {"admin": True},
        "existing trade": {"trade_id": "T1"},
    }
    for name, changes in trade_changes.items():
        yield Case(f"trade {name}", "POST", "/v1/trades", trade(**changes))
    deep = "[" * 100_000 + "]" * 100_000
    for name, raw in {
        "not JSON": b"{member_id: M}",
        "a JSON array": b"[1, 2]",
        "a JSON string": b'"hello"',
        "empty body": b"",
        "invalid UTF-8": b'{"member_id": "\xff\xfe", "occurred_at": "2026-01-05T09:00:00Z"}',
        "NaN": b'{"member_id": "M-nan", "occurred_at": NaN}',
        "deep nesting": deep.encode(),
        "two megabytes": b'{"member_id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        "truncated": b'{"member_id": "M-tr',
    }.items():
        yield Case(f"body {name}", "POST", "/v1/members", raw)
    yield Case("body as text/plain", "POST", "/v1/members", json.dumps(member("M-plain")).encode(),
               headers={"Content-Type": "text/plain"})  # fmt: skip

    yield Case("no key", "POST", "/v1/members", member("M-nokey"), role=None)
    for authorization in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer tl_", "Bearer tl_x_y",
                          "Bearer " + "a" * 10_000, "bearer\ttl_abc_def"):  # fmt: skip
        yield Case(f"authorization {authorization[:20]!r}", "POST", "/v1/members",
                   member("M-auth"), role=None, headers={"Authorization": authorization})  # fmt: skip
    yield Case("reader appends", "POST", "/v1/members", member("M-reader"), role=Role.READER)
    yield Case("ranking reads credit", "GET", "/v1/members/seller-1/credit", role=Role.RANKING)
    yield Case("reader asks at a position", "GET", "/v1/members/seller-1/credit?at_position=1",
               role=Role.READER)  # fmt: skip
    for key in ("", "k" * 256):
        yield Case(f"Idempotency-Key of {len(key)}", "POST", "/v1/members", member("M-idem"),
                   headers={"Idempotency-Key": key})  # fmt: skip
    yield Case("key reused for another command", "POST", "/v1/members", member("M-other"),
               headers={"Idempotency-Key": "story-buyer-1"})  # fmt: skip

    yield Case("batch empty", "POST", "/v1/penalties/batch", {"seller_ids": []}, Role.RANKING)
    yield Case("batch 1,001", "POST", "/v1/penalties/batch",
               {"seller_ids": [f"s{i}" for i in range(1001)]}, Role.RANKING)  # fmt: skip
    yield Case("batch id with a line break", "POST", "/v1/penalties/batch",
               {"seller_ids": ["seller-1\n"]}, Role.RANKING)  # fmt: skip
    yield Case(
        "batch ids not strings", "POST", "/v1/penalties/batch", {"seller_ids": [1, 2]}, Role.RANKING
    )

    for query in ("role=admin", "limit=0", "limit=100000", "cursor=garbage", "cursor=" + "c" * 600):
        yield Case(f"explanation {query[:20]}", "GET",
                   f"/v1/members/seller-1/credit/explanation?{query}", role=Role.READER)  # fmt: skip
    yield Case("DELETE a member", "DELETE", "/v1/members", role=Role.ADMIN)
    yield Case("GET an append route", "GET", "/v1/trades", role=Role.ADMIN)
    yield Case("unknown route", "GET", "/v1/nothing-here", role=Role.ADMIN)
    yield Case("rate an unknown trade", "POST", "/v1/trades/T-none/ratings",
               {"rater": "buyer", "score": "positive", "occurred_at": T})  # fmt: skip
    yield Case("rating from the future", "POST", "/v1/trades/T1/ratings",
               {"rater": "buyer", "score": "positive", "occurred_at": "2999-01-01T00:00:00Z"})  # fmt: skip


CASES = list(_cases())


def test_the_table_holds_at_least_eighty_inputs() -> None:
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)


def test_hostile_input_gets_a_4xx_problem_and_writes_nothing(
    stored_url: str, tmp_path: Path, chaos: ChaosRun
) -> None:
    with (
        ServerProcess(stored_url, tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=ANSWER_SECONDS_MAX) as client,
    ):
        before = _story(client, server)
        wrong = [
            f"{case.name}: {answer}"
            for case in CASES
            if (answer := _refusal_problem(client, server, case)) is not None
        ]
        for name, request in _raw_requests():
            status, content_type = _raw(server.port, request)
            if not 400 <= status < 500 or content_type != "application/problem+json":
                wrong.append(f"{name}: {status} {content_type}")
        written = _log_size(client, server) - before
        chaos.record(
            requests=len(CASES) + len(list(_raw_requests())),
            faults="hostile input",
            not_a_4xx_problem=len(wrong),
            events_written=written,
        )
        assert wrong == []
        assert written == 0


def _refusal_problem(client: httpx.Client, server: ServerProcess, case: Case) -> str | None:
    """What is wrong with the answer to a case (None: a 4xx problem+json)."""
    headers = server.headers(case.role) if case.role is not None else {}
    if case.method == "POST":
        headers["Idempotency-Key"] = f"hostile-{abs(hash(case.name))}"
    headers.update(case.headers)
    if isinstance(case.body, bytes):
        headers.setdefault("Content-Type", "application/json")
        answer = client.request(case.method, case.path, content=case.body, headers=headers)
    else:
        answer = client.request(case.method, case.path, json=case.body, headers=headers)
    problem = answer.headers.get("content-type") == "application/problem+json"
    if 400 <= answer.status_code < 500 and problem:
        return None
    return f"{answer.status_code} {answer.headers.get('content-type')} {answer.text[:120]}"


def _raw_requests() -> Iterator[tuple[str, bytes]]:
    """Requests no well-behaved client library would send."""
    yield (
        "URL of 100,000 characters",
        b"GET /v1/log?after=" + b"1" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    yield (
        "headers of 200 KB",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 200_000 + b"\r\n\r\n",
    )
    yield "not HTTP", b"HELLO THERE\r\n\r\n"
    yield "bad header line", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"


def _raw(port: int, request: bytes) -> tuple[int, str | None]:
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_SECONDS_MAX) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and head[0].startswith("HTTP/") else 0
    fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return status, fields.get("content-type")


def _story(client: httpx.Client, server: ServerProcess) -> int:
    """Two members and a succeeded trade; the log's size after them."""
    service = server.headers(Role.SERVICE)
    for member_id in ("buyer-1", "seller-1"):
        client.post(
            "/v1/members",
            json=member(member_id),
            headers={**service, "Idempotency-Key": f"story-{member_id}"},
        ).raise_for_status()
    steps = [("/v1/trades", trade(trade_id="T1")), ("/v1/trades/T1/payment", {"occurred_at": T}),
             ("/v1/trades/T1/shipment", {"occurred_at": T}), ("/v1/trades/T1/receipt", {"occurred_at": T})]  # fmt: skip
    for n, (path, body) in enumerate(steps):
        client.post(
            path, json=body, headers={**service, "Idempotency-Key": f"story-{n}"}
        ).raise_for_status()
    return _log_size(client, server)


def _log_size(client: httpx.Client, server: ServerProcess) -> int:
    lines = client.get(
        "/v1/log?limit=10000", headers=server.headers(Role.AUDITOR)
    ).text.splitlines()
    return len(lines)
