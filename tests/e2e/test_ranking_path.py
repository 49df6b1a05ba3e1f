"""The ranking engine's hot path answers exactly as the FastAPI routes do.

Two services over one SQLite ledger, one with ``api.ranking_path`` in front
and one without, get the same requests; status, content type and body must
match, and the hot path must have answered the plain ones itself. The
requests are raw HTTP, as the two services' answers are compared as sent; the
story behind them is appended through the typed client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth import KeyRing, Role
from api.main import create_app
from api.settings import Settings
from ledger.clock import FixedClock
from tests.e2e.support import Api, at
from tests.e2e.test_api import story, violation
from tests.support import T0


@dataclass
class Pair:
    fast: TestClient
    routes: TestClient
    keys: dict[Role, str]

    def answered_here(self) -> int:
        count: int = self.fast.app.state.service.metrics.ranking_path_answers  # type: ignore[attr-defined]
        return count

    def both(self, method: str, path: str, role: Role | None, **kwargs: Any) -> tuple[Any, Any]:
        headers = kwargs.pop("headers", {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        answers = [
            client.request(method, path, headers=headers, **kwargs)
            for client in (self.fast, self.routes)
        ]
        fast, routes = answers
        assert (fast.status_code, fast.headers["content-type"]) == (
            routes.status_code,
            routes.headers["content-type"],
        ), (fast.text, routes.text)
        assert fast.json() == routes.json()
        return fast, routes


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp_path: Path = tmp_path_factory.mktemp("ranking-path")
    ring = KeyRing([])
    keys = {role: ring.add(role) for role in Role}
    keys_file = tmp_path / "keys.json"
    ring.save(keys_file)
    clock = FixedClock(T0 + timedelta(days=3))  # inside the violation's 7-day ban
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    def app(*, ranking_path: bool) -> Any:
        settings = Settings(
            database_url=url,
            keys_file=keys_file,
            deadline_worker=False,
            ranking_path=ranking_path,
        )
        return create_app(settings, clock=clock, background=False)

    with TestClient(app(ranking_path=True)) as fast:
        writer = Api(fast, keys, clock)
        story(writer)
        violation(writer)
        writer.close()
        # The second service catches its view up with the ledger as it starts.
        with TestClient(app(ranking_path=False)) as routes:
            yield Pair(fast, routes, keys)


PLAIN_SINGLES = [
    (Role.RANKING, "/v1/sellers/seller-1/penalty"),
    (Role.READER, "/v1/sellers/seller-1/penalty"),
    (Role.AUDITOR, "/v1/sellers/buyer-1/penalty"),
]


@pytest.mark.parametrize(("role", "path"), PLAIN_SINGLES)
def test_a_plain_penalty_is_answered_here_as_the_route_would(
    pair: Pair, role: Role, path: str
) -> None:
    before = pair.answered_here()
    fast, _ = pair.both("GET", path, role)
    assert fast.status_code == 200
    assert fast.json()["reasons"] or path.endswith("buyer-1/penalty")
    assert pair.answered_here() == before + 1


GOES_ON_SINGLES = [
    (Role.RANKING, "/v1/sellers/nobody/penalty", {}),  # unknown: 404 from the route
    (Role.RANKING, "/v1/sellers/seller 1/penalty", {}),  # not a platform id
    (None, "/v1/sellers/seller-1/penalty", {}),
    (Role.SERVICE, "/v1/sellers/seller-1/penalty", {}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"headers": {"Authorization": "Basic x"}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"headers": {"Authorization": "Bearer"}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"as_of": at(20)}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"as_of": "yesterday"}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"rulebook": "taobao-classic"}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"rulebook": "no-such-book"}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"at_position": 3}}),
    (Role.AUDITOR, "/v1/sellers/seller-1/penalty", {"params": {"at_position": 3}}),
    (Role.RANKING, "/v1/sellers/seller-1/penalty", {"params": {"min_position": 1}}),
]


@pytest.mark.parametrize(("role", "path", "extra"), GOES_ON_SINGLES)
def test_anything_else_goes_on_to_the_route(
    pair: Pair, role: Role | None, path: str, extra: dict[str, Any]
) -> None:
    if "headers" in extra:
        role = None
    before = pair.answered_here()
    pair.both("GET", path, role, **extra)
    assert pair.answered_here() == before


def authorizations(key: str) -> dict[str, bool]:
    """Authorization headers, and whether they carry the key (as FastAPI's HTTPBearer reads)."""
    return {
        f"Bearer {key}": True,
        f"bearer {key}": True,
        f"BEARER {key}": True,
        f"Bearer    {key}   ": True,
        f"Bearer\t{key}": False,
        f" Bearer {key}": False,
        f"Bearer {key}x": False,
        f"Token {key}": False,
        key: False,
        "Bearer ": False,
        "Bearer    ": False,
        "": False,
    }


def test_both_paths_read_the_authorization_header_alike(pair: Pair) -> None:
    for value, carries_key in authorizations(pair.keys[Role.RANKING]).items():
        for method, path, body in (
            ("GET", "/v1/sellers/seller-1/penalty", None),
            ("POST", "/v1/penalties/batch", {"seller_ids": ["seller-1"]}),
        ):
            before = pair.answered_here()
            fast, _ = pair.both(method, path, None, headers={"Authorization": value}, json=body)
            assert (fast.status_code == 200) == carries_key, (value, fast.text)
            assert pair.answered_here() == before + carries_key, value


def test_a_plain_batch_is_answered_here_in_order_with_unknown_sellers(pair: Pair) -> None:
    before = pair.answered_here()
    body = {"seller_ids": ["nobody", "seller-1", "buyer-1", "seller-1"]}
    fast, _ = pair.both("POST", "/v1/penalties/batch", Role.RANKING, json=body)
    answers = fast.json()["penalties"]
    assert [a["seller_id"] for a in answers] == body["seller_ids"]
    assert answers[0] == {"seller_id": "nobody", "unknown": True}
    named = {"seller_ids": ["seller-1"], "rulebook": "taobao-classic"}
    pair.both("POST", "/v1/penalties/batch", Role.RANKING, json=named)
    assert pair.answered_here() == before + 2


GOES_ON_BATCHES: list[Any] = [
    {"seller_ids": []},
    {"seller_ids": [f"s{i}" for i in range(1001)]},
    {"seller_ids": ["seller 1"]},
    {"seller_ids": ["seller-1"], "as_of": at(20)},
    {"seller_ids": ["seller-1"], "rulebook": "no-such-book"},
    {"seller_ids": ["seller-1"], "colour": "red"},
    {"seller_ids": "seller-1"},
    ["seller-1"],
]


@pytest.mark.parametrize("body", GOES_ON_BATCHES)
def test_a_batch_that_is_not_plain_goes_on_to_the_route_body_intact(pair: Pair, body: Any) -> None:
    before = pair.answered_here()
    pair.both("POST", "/v1/penalties/batch", Role.RANKING, json=body)
    pair.both("POST", "/v1/penalties/batch", None, json={"seller_ids": ["seller-1"]})
    assert pair.answered_here() == before


def test_malformed_json_goes_on_to_the_route(pair: Pair) -> None:
    before = pair.answered_here()
    pair.both(
        "POST",
        "/v1/penalties/batch",
        Role.RANKING,
        content=b'{"seller_ids": ["seller-1"',
        headers={"Content-Type": "application/json"},
    )
    assert pair.answered_here() == before


def test_the_hot_path_is_timed_under_its_route(pair: Pair) -> None:
    pair.both("GET", "/v1/sellers/seller-1/penalty", Role.RANKING)
    metrics = pair.fast.get(
        "/metrics", headers={"Authorization": f"Bearer {pair.keys[Role.ADMIN]}"}
    ).text
    route = 'route="/v1/sellers/{seller_id}/penalty",status="200"'
    assert f"trustledger_request_seconds_count{{{route}}} " in metrics
    assert "trustledger_ranking_path_answers_total" in metrics


ids = st.one_of(
    st.sampled_from(["seller-1", "buyer-1", "nobody", "T1"]),
    st.text(max_size=6),
)
batches = st.one_of(
    st.fixed_dictionaries(
        {"seller_ids": st.lists(ids, max_size=5)},
        optional={
            "rulebook": st.one_of(
                st.none(), st.sampled_from(["taobao-classic", "ebay-style", "x"])
            ),
            "as_of": st.sampled_from([at(20), "not a time"]),
            "extra": st.integers(),
        },
    ),
    st.lists(ids, max_size=3),
    st.text(max_size=5),
)


content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "text/plain",
            "",
        ]
    ),
)


@settings(max_examples=80, deadline=None)
@given(body=batches, content_type=content_types)
def test_any_batch_body_gets_the_routes_answer(
    pair: Pair, body: Any, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    content = json.dumps(body).encode()
    pair.both("POST", "/v1/penalties/batch", Role.RANKING, content=content, headers=headers)
