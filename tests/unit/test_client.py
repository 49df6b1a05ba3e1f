"""The client without a server: one method per operation, the calls it builds,
retries with the same idempotency key, typed problems, read-your-writes."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx2 as httpx
import msgspec
import pytest
from fastapi.routing import APIRoute

from api import deps
from api.catalog import OPERATIONS
from api.routes import appends
from client import AsyncTrustLedger, Conflict, InvalidInput, TrustLedger, Unavailable, Unreachable
from client import calls as client_calls
from client.calls import APPEND_PATHS, RETRY_WAIT_MAX_SECONDS, backoff
from ledger import commands as c
from ledger.policy import DEFAULT_RULEBOOK, load_policy
from scripts.async_client import ASYNC, SYNC, asynchronous, formatted
from tests.support import new_trade
from tools.simulator import SimulationConfig, _Planner

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TRADE = new_trade("t-1", buyer="b-1", seller="s-1", item="i-1", amount_minor=1_000, at=AT)


def _snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", operation_id).lower()


def test_the_asynchronous_client_is_the_synchronous_one_made_asynchronous() -> None:
    assert ASYNC.read_text() == formatted(asynchronous(SYNC.read_text()))


@pytest.mark.parametrize("client", [TrustLedger, AsyncTrustLedger])
def test_every_operation_has_a_method(client: type) -> None:
    missing = [
        op for op, _ in OPERATIONS.values() if not callable(getattr(client, _snake(op), None))
    ]
    assert missing == []


def test_every_append_goes_where_the_api_takes_it() -> None:
    appended = {path for (method, path) in OPERATIONS if method == "post"}
    for command, template in APPEND_PATHS.items():
        route = re.sub(
            r"/(agree|reject|return-shipment|return-receipt|cancel)$", "/{step}", template
        )
        assert route in appended, (command.__name__, template)


def test_an_append_call_takes_path_ids_out_of_the_body() -> None:
    rating = c.ReviseRating(trade_id="t/1", rater="buyer", score="positive", occurred_at=AT)
    call = client_calls.append(rating, "k-1")
    assert (call.method, call.path) == ("POST", "/v1/trades/t%2F1/ratings/buyer/revision")
    assert msgspec.json.decode(call.body or b"") == {
        "score": "positive",
        "occurred_at": "2026-03-01T09:00:00Z",
    }
    assert call.idempotency_key == "k-1"
    fresh = client_calls.append(TRADE, None)
    assert (
        fresh.idempotency_key
        and fresh.idempotency_key != client_calls.append(TRADE, None).idempotency_key
    )


class Server:
    """A scripted server: answers in turn, and every request it was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def problem(status: int, code: str, **extra: object) -> httpx.Response:
    body = {"type": "about:blank", "title": "t", "status": status, "code": code, "detail": "d"}
    headers = {"Retry-After": "0"} if status in {429, 503} else {}
    return httpx.Response(status, json={**body, **extra}, headers=headers)


def created(*positions: int) -> httpx.Response:
    return httpx.Response(201, json={"positions": list(positions)})


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr("client.sync.time.sleep", waits.append)
    return waits


def ledger(server: Server, *, retries: int = 4, read_your_writes: bool = True) -> TrustLedger:
    return TrustLedger(
        "http://ledger.test",
        "tl_k_s",
        transport=httpx.MockTransport(server),
        seed=1,
        retries=retries,
        read_your_writes=read_your_writes,
    )


def test_an_append_is_retried_with_the_same_key_until_it_lands(slept: list[float]) -> None:
    server = Server(problem(503, "store_unavailable"), httpx.ConnectError("down"), created(7))
    assert ledger(server).create_trade(TRADE).positions == (7,)
    keys = {r.headers["Idempotency-Key"] for r in server.requests}
    assert len(server.requests) == 3 and len(keys) == 1
    assert len(slept) == 2
    assert server.requests[0].headers["Authorization"] == "Bearer tl_k_s"


def test_a_retryable_conflict_is_retried_and_a_refusal_is_not(slept: list[float]) -> None:
    server = Server(problem(409, "concurrent_update", retryable=True), created(3))
    assert ledger(server).create_trade(TRADE).positions == (3,)
    refused = Server(problem(409, "trade_exists"))
    with pytest.raises(Conflict) as error:
        ledger(refused).create_trade(TRADE)
    assert error.value.code == "trade_exists" and len(refused.requests) == 1
    bad = Server(problem(422, "invalid_input", field="amount_minor"))
    with pytest.raises(InvalidInput) as invalid:
        ledger(bad).create_trade(TRADE)
    assert (invalid.value.status, invalid.value.field) == (422, "amount_minor")


def test_retries_end_with_the_last_error(slept: list[float]) -> None:
    with pytest.raises(Unavailable) as error:
        ledger(Server(*[problem(503, "view_behind")] * 3), retries=2).get_credit("s-1")
    assert error.value.code == "view_behind" and len(slept) == 2
    with pytest.raises(Unreachable):
        ledger(Server(*[httpx.ConnectError("down")] * 2), retries=1).get_credit("s-1")


def test_queries_read_the_clients_own_writes(slept: list[float]) -> None:
    credit = {
        "rulebook": "taobao-classic@1",
        "as_of": "2026-03-01T09:00:00Z",
        "position": 9,
        "score": 1,
        "level": {"index": 0, "name": "no level", "icon": ""},
        "positive_rate_lifetime": 1.0,
        "positive_rate_180d": 1.0,
        "ratings": {"positive": 1, "neutral": 0, "negative": 0, "unscored": 0},
    }
    server = Server(
        httpx.Response(200, json=credit), created(8, 9), *[httpx.Response(200, json=credit)] * 3
    )
    client = ledger(server)
    assert client.get_credit("s-1").score == 1
    client.create_trade(TRADE)
    client.get_credit("s-1")
    client.get_credit("s-1", at_position=4)
    ledger_without = ledger(server, read_your_writes=False)
    ledger_without.written = 9
    ledger_without.get_credit("s-1")
    asked = [dict(r.url.params) for r in server.requests if r.method == "GET"]
    assert asked == [
        {"role": "seller"},
        {"role": "seller", "min_position": "9"},
        {"role": "seller", "at_position": "4"},
        {"role": "seller"},
    ]


def test_the_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(4)
    waits = [backoff(attempt, None, rng) for attempt in range(1, 12)]
    assert all(0 <= w <= RETRY_WAIT_MAX_SECONDS for w in waits)
    assert len(set(waits)) == len(waits)  # jittered
    assert backoff(1, 2.5, rng) >= 2.5
    assert backoff(1, 3_600, rng) == RETRY_WAIT_MAX_SECONDS


def test_the_asynchronous_client_retries_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(problem(429, "too_many_requests"), created(5))
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("client.asynchronous.asyncio.sleep", no_wait)

    async def story() -> tuple[int, ...]:
        async with AsyncTrustLedger(
            "http://ledger.test", "tl_k_s", transport=httpx.MockTransport(server), seed=1
        ) as client:
            return (await client.create_trade(TRADE)).positions

    assert asyncio.run(story()) == (5,)
    assert len(waits) == 1 and len({r.headers["Idempotency-Key"] for r in server.requests}) == 1


def test_the_rules_make_a_method_asynchronous() -> None:
    sync = '"""x"""\nimport random\nimport time\n\n    def get(self) -> Iterator[int]:\n        time.sleep(1)\n'
    out = asynchronous(sync)
    assert "import asyncio\nimport random" in out
    assert "    async def get(self) -> AsyncIterator[int]:" in out
    assert "await asyncio.sleep(1)" in out


def _samples() -> dict[type[c.Command], c.Command]:
    """A planned command of every kind the client appends (planning writes nothing)."""
    config = SimulationConfig(
        members=300, trades=3_000, days=60, seed=7, farming_rings=2, violators=3
    )
    samples: dict[type[c.Command], c.Command] = {}
    for _, command in _Planner(config, load_policy(DEFAULT_RULEBOOK).policy).commands():
        samples.setdefault(type(command), command)
        if len(samples) == len(APPEND_PATHS):
            break
    return samples


def test_every_command_the_client_sends_is_read_back_as_the_same_command() -> None:
    """The body and path the client builds, read as the route reads them
    (its body model, its path parameters), give back the very command."""
    samples = _samples()
    assert set(samples) == set(APPEND_PATHS)
    routes = [r for r in appends.router.routes if isinstance(r, APIRoute)]
    for command in samples.values():
        call = client_calls.append(command, "k-1")
        route = next(r for r in routes if r.path_regex.match(unquote(call.path)))
        match = route.path_regex.match(unquote(call.path))
        assert match is not None and route.body_field is not None
        params = {k: v for k, v in match.groupdict().items() if k != "step"}
        model: Any = route.body_field.field_info.annotation
        body = model.model_validate_json(call.body)
        read = deps.command(type(command), **params, **body.model_dump())
        assert read == command, type(command).__name__


def test_the_penalty_batch_reads_the_clients_own_writes(slept: list[float]) -> None:
    batch = httpx.Response(200, json={"penalties": [{"seller_id": "s-9", "unknown": True}]})
    server = Server(batch, created(12), batch)
    client = ledger(server)
    assert client.get_penalties(["s-9"]).penalties[0].seller_id == "s-9"
    client.create_trade(TRADE)
    client.get_penalties(["s-9"])
    bodies = [msgspec.json.decode(r.content) for r in server.requests if "batch" in r.url.path]
    assert [body.get("min_position") for body in bodies] == [None, 12]
