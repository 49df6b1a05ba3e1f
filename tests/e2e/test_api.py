"""End to end through HTTP, on memory, SQLite and PostgreSQL: one test per feature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.auth import KeyRing, Role
from tests.e2e.support import Api, at, running_api


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def story(api: Api) -> list[int]:
    positions = []
    for member in ("buyer-1", "seller-1"):
        positions += api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    positions += api.ok(
        "/v1/trades",
        {
            "trade_id": "T1",
            "buyer_id": "buyer-1",
            "seller_id": "seller-1",
            "item_id": "teapot",
            "amount_minor": 12_800,
            "currency": "CNY",
            "goods_kind": "physical",
            "shipping": "express",
            "occurred_at": at(1),
        },
    )
    positions += api.ok("/v1/trades/T1/payment", {"occurred_at": at(2)})
    positions += api.ok("/v1/trades/T1/shipment", {"occurred_at": at(3)})
    positions += api.ok("/v1/trades/T1/receipt", {"by": "buyer", "occurred_at": at(24)})
    positions += api.ok(
        "/v1/trades/T1/ratings",
        {
            "rater": "buyer",
            "score": "positive",
            "occurred_at": at(30),
            "dsr": {"as_described": 5, "service": 5, "shipping_speed": 4, "logistics": 5},
        },
    )
    positions += api.ok(
        "/v1/trades/T1/ratings", {"rater": "seller", "score": "positive", "occurred_at": at(31)}
    )
    return positions


def violation(api: Api) -> list[int]:
    """Twelve general points against seller-1 at hour 40: a 7-day ban."""
    return api.ok(
        "/v1/sellers/seller-1/violations",
        {
            "violation_id": "V1",
            "category": "general",
            "points": 12,
            "reason": "counterfeit listing",
            "occurred_at": at(40),
        },
    )


def test_a_trade_through_http_shows_in_credit_dsr_and_penalty(api: Api) -> None:
    positions = story(api)
    last = positions[-1]
    credit = api.get(
        "/v1/members/seller-1/credit", role=Role.READER, min_position=last, as_of=at(40)
    )
    assert credit.status_code == 200, credit.text
    body = credit.json()
    assert body["score"] == 1
    assert body["level"] == {"index": 0, "name": "no level", "icon": ""}
    assert body["ratings"] == {"positive": 1, "neutral": 0, "negative": 0, "unscored": 0}
    assert body["rulebook"] == "taobao-classic@1"
    assert body["position"] == last
    dsr = api.get("/v1/sellers/seller-1/dsr", as_of=at(40)).json()
    assert (dsr["as_described"], dsr["shipping_speed"], dsr["count"]) == (5.0, 4.0, 1)
    penalty = api.get("/v1/sellers/seller-1/penalty", role=Role.RANKING).json()
    assert (penalty["searchable"], penalty["multiplier"], penalty["sort_hidden"]) == (
        True,
        1.0,
        False,
    )
    history = api.get("/v1/buyers/buyer-1/history", as_of=at(40)).json()
    assert (history["purchases"], history["tier"]) == (1, "novice")
    explanation = api.get("/v1/members/seller-1/credit/explanation", as_of=at(40)).json()
    assert [(r["trade_id"], r["points"], r["reason"]) for r in explanation["ratings"]] == [
        ("T1", 1, None)
    ]


def test_min_position_past_the_log_is_refused_and_the_batch_takes_it_too(api: Api) -> None:
    last = story(api)[-1]
    beyond = api.get("/v1/members/seller-1/credit", min_position=last + 1)
    assert beyond.status_code == 422
    assert (beyond.json()["code"], beyond.json()["field"]) == (
        "position_beyond_log",
        "min_position",
    )
    assert api.get("/v1/members/seller-1/credit", min_position=last).status_code == 200
    batch = api.client.post(
        "/v1/penalties/batch",
        json={"seller_ids": ["seller-1"], "min_position": last},
        headers={"Authorization": f"Bearer {api.keys[Role.RANKING]}"},
    )
    assert batch.status_code == 200 and batch.json()["penalties"][0]["position"] == last
    refused = api.client.post(
        "/v1/penalties/batch",
        json={"seller_ids": ["seller-1"], "min_position": last + 5},
        headers={"Authorization": f"Bearer {api.keys[Role.RANKING]}"},
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "position_beyond_log")


def test_credit_and_shop_scores_come_in_batches_equal_to_the_single_answers(api: Api) -> None:
    last = story(api)[-1]
    reader = {"Authorization": f"Bearer {api.keys[Role.READER]}"}
    asked = {"as_of": at(40), "min_position": last}
    credits = api.client.post(
        "/v1/credit/batch",
        json={"member_ids": ["seller-1", "nobody", "buyer-1"], **asked},
        headers=reader,
    )
    assert credits.status_code == 200, credits.text
    single = [
        api.get(f"/v1/members/{m}/credit", as_of=at(40)).json() for m in ("seller-1", "buyer-1")
    ]
    assert credits.json()["credits"] == [
        single[0],
        {"member_id": "nobody", "unknown": True},
        single[1],
    ]
    scores = api.client.post(
        "/v1/dsr/batch", json={"seller_ids": ["seller-1"], **asked}, headers=reader
    ).json()["shop_scores"]
    assert scores == [api.get("/v1/sellers/seller-1/dsr", as_of=at(40)).json()]
    too_many = api.client.post("/v1/dsr/batch", json={"seller_ids": ["s"] * 1_001}, headers=reader)
    assert (too_many.status_code, too_many.json()["code"]) == (413, "batch_too_large")
    ranking = {"Authorization": f"Bearer {api.keys[Role.RANKING]}"}
    forbidden = api.client.post("/v1/credit/batch", json={"member_ids": ["s"]}, headers=ranking)
    assert forbidden.status_code == 403


def test_an_answer_as_of_a_fixed_time_has_an_etag_and_a_caller_holding_it_gets_304(
    api: Api,
) -> None:
    last = story(api)[-1]
    path = "/v1/members/seller-1/credit"
    first = api.get(path, as_of=at(40), min_position=last)
    etag = first.headers["etag"]
    again = api.client.get(
        path,
        params={"as_of": at(40)},
        headers={"Authorization": f"Bearer {api.keys[Role.READER]}", "If-None-Match": etag},
    )
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    other = api.client.get(
        path,
        params={"as_of": at(41)},
        headers={"Authorization": f"Bearer {api.keys[Role.READER]}", "If-None-Match": etag},
    )
    assert other.status_code == 200 and other.headers["etag"] != etag
    assert int(other.headers["content-length"]) == len(other.content)
    log = api.get("/v1/log", role=Role.AUDITOR)
    assert "etag" not in log.headers  # streams are left as they are


def test_the_schema_states_the_limits_the_server_refuses_beyond(api: Api) -> None:
    """A comment's length and a timer extension's days are the rulebook's: the
    document states the server's, and the server refuses one past them."""
    models = api.client.get("/openapi.json").json()["components"]["schemas"]
    comment_max = models["NewRating"]["properties"]["comment"]["maxLength"]
    days = models["TimerExtension"]["properties"]["days"]
    for member in ("buyer-1", "seller-1"):
        api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    for trade in ("T1", "T2"):
        body = {
            "trade_id": trade,
            "buyer_id": "buyer-1",
            "seller_id": "seller-1",
            "item_id": "teapot",
            "amount_minor": 100,
            "currency": "CNY",
            "goods_kind": "physical",
            "shipping": "express",
            "occurred_at": at(1),
        }
        api.ok("/v1/trades", body)
        api.ok(f"/v1/trades/{trade}/payment", {"occurred_at": at(2)})
        api.ok(f"/v1/trades/{trade}/shipment", {"occurred_at": at(3)})
    too_long = api.post(
        "/v1/trades/T1/timer-extension", {"days": days["maximum"] + 1, "occurred_at": at(4)}
    )
    assert (too_long.status_code, too_long.json()["code"]) == (422, "extension_days_out_of_range")
    api.ok("/v1/trades/T1/timer-extension", {"days": days["maximum"], "occurred_at": at(4)})
    api.ok("/v1/trades/T2/receipt", {"occurred_at": at(24)})
    rating = {"rater": "buyer", "score": "positive", "occurred_at": at(30)}
    refused = api.post("/v1/trades/T2/ratings", {**rating, "comment": "x" * (comment_max + 1)})
    assert (refused.status_code, refused.json()["field"]) == (422, "comment")
    api.ok("/v1/trades/T2/ratings", {**rating, "comment": "x" * comment_max})


def test_a_trade_reads_back_with_its_facts(api: Api) -> None:
    positions = story(api)
    service = {"Authorization": f"Bearer {api.keys[Role.SERVICE]}"}
    record = api.client.get("/v1/trades/T1", headers=service)
    assert record.status_code == 200, record.text
    body = record.json()
    assert (body["trade_id"], body["succeeded_at"] is not None) == ("T1", True)
    assert [r["rater"] for r in body["ratings"]] == ["buyer", "seller"]
    facts = body["facts"]
    assert [f["position"] for f in facts] == positions[2:]  # the members' facts are theirs
    assert facts[0]["topic"] == "trustledger.trade.created.v1"
    assert body["position"] == positions[-1]
    unknown = api.client.get("/v1/trades/T404", headers=service)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_trade")
    ranking = {"Authorization": f"Bearer {api.keys[Role.RANKING]}"}
    assert api.client.get("/v1/trades/T1", headers=ranking).status_code == 403


def test_a_members_trades_come_in_pages_in_creation_order(api: Api) -> None:
    story(api)
    last = 0
    for n, hour in ((2, 5), (3, 6), (4, 7)):
        (last,) = api.ok(
            "/v1/trades",
            {
                "trade_id": f"T{n}",
                "buyer_id": "buyer-1",
                "seller_id": "seller-1",
                "item_id": "cup",
                "amount_minor": 900 + n,
                "currency": "CNY",
                "goods_kind": "physical",
                "shipping": "express",
                "occurred_at": at(hour),
            },
        )
    reader = {"Authorization": f"Bearer {api.keys[Role.SERVICE]}"}
    first = api.client.get(
        "/v1/sellers/seller-1/trades", params={"limit": 3, "min_position": last}, headers=reader
    )
    assert first.status_code == 200, first.text
    page = first.json()
    assert [t["trade_id"] for t in page["trades"]] == ["T1", "T2", "T3"]
    assert page["trades"][0]["succeeded_at"] is not None and page["trades"][1]["paid_at"] is None
    link = first.headers["link"]
    assert link.endswith('rel="next"') and page["next_cursor"] in link
    rest = api.client.get(link[1 : link.index(">")], headers=reader).json()
    assert ([t["trade_id"] for t in rest["trades"]], rest["next_cursor"]) == (["T4"], None)
    bought = api.client.get("/v1/buyers/buyer-1/trades", headers=reader).json()
    assert [t["trade_id"] for t in bought["trades"]] == ["T1", "T2", "T3", "T4"]
    nobody = api.client.get("/v1/sellers/nobody/trades", headers=reader)
    assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown_member")
    foreign = api.client.get("/v1/sellers/seller-1/trades", params={"cursor": "x"}, headers=reader)
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid_cursor")


def test_a_full_page_of_the_log_names_the_next(api: Api) -> None:
    positions = story(api)
    auditor = {"Authorization": f"Bearer {api.keys[Role.AUDITOR]}"}
    first = api.client.get("/v1/log", params={"limit": 3}, headers=auditor)
    lines = [json.loads(line) for line in first.text.splitlines()]
    assert [line["position"] for line in lines] == positions[:3]
    link = first.headers["link"]
    assert link == f'</v1/log?after={positions[2]}&limit=3>; rel="next"'
    rest = api.client.get(link[1 : link.index(">")], headers=auditor)
    assert [json.loads(line)["position"] for line in rest.text.splitlines()] == positions[3:6]
    tail = api.client.get("/v1/log", params={"after": positions[-2]}, headers=auditor)
    assert "link" not in tail.headers  # a short page: the end of the log as it stood
    streamed = api.client.get("/v1/log", params={"limit": 5_000}, headers=auditor)
    assert len(streamed.text.splitlines()) == len(positions) and "link" not in streamed.headers


def test_the_credit_explanation_comes_in_pages_followed_by_cursor(api: Api) -> None:
    last = story(api)[-1]
    path = "/v1/members/seller-1/credit/explanation"
    first = api.get(path, as_of=at(40), limit=1, min_position=last)
    assert first.status_code == 200, first.text
    first = first.json()
    assert [r["trade_id"] for r in first["ratings"]] == ["T1"]
    assert first["score"] == 1
    rest = api.get(path, as_of=at(40), limit=1, cursor=first["next_cursor"]).json()
    assert (rest["ratings"], rest["next_cursor"]) == ([], None)
    assert api.get(path, as_of=at(40)).json()["next_cursor"] is None
    foreign = api.get(path, cursor="not-ours")
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid_cursor")
    assert api.get(path, limit=0).status_code == 422


def test_appends_answer_201_with_positions_and_replay_a_repeated_key(api: Api) -> None:
    first = api.post("/v1/members", {"member_id": "m1", "occurred_at": at(0)}, key="k-1")
    again = api.post("/v1/members", {"member_id": "m1", "occurred_at": at(0)}, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert "Idempotency-Replayed" not in first.headers
    assert again.headers["Idempotency-Replayed"] == "true"
    reused = api.post("/v1/members", {"member_id": "m2", "occurred_at": at(0)}, key="k-1")
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    assert reused.headers["content-type"] == "application/problem+json"


def test_a_retry_with_a_rotated_key_is_answered_as_the_repeat_it_is(
    api: Api, tmp_path: Path
) -> None:
    """Idempotency keys are scoped to the caller a key belongs to, and a
    successor made by rotation belongs to the same caller."""
    service = api.client.app.state.service  # type: ignore[attr-defined]
    keys_file = service.settings.keys_file
    ring = KeyRing.load(keys_file)
    old = api.keys[Role.SERVICE]
    principal = ring.authenticate(old)
    assert principal is not None
    successor = ring.rotate(principal.key_id, timedelta(hours=1))
    ring.save(keys_file)
    service.reload_keys()
    body = {"member_id": "m-rotated", "occurred_at": at(0)}
    first = api.post("/v1/members", body, key="register-m-rotated")
    retried = api.client.post(
        "/v1/members",
        json=body,
        headers={"Authorization": f"Bearer {successor}", "Idempotency-Key": "register-m-rotated"},
    )
    assert (retried.status_code, retried.json()) == (201, first.json())
    assert retried.headers["Idempotency-Replayed"] == "true"
    other = KeyRing.load(keys_file)
    stranger = other.add(Role.SERVICE, caller="another-service")
    other.save(keys_file)
    service.reload_keys()
    elsewhere = api.client.post(
        "/v1/members",
        json=body,
        headers={"Authorization": f"Bearer {stranger}", "Idempotency-Key": "register-m-rotated"},
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (409, "member_exists")


def test_refusals_are_problem_details_with_their_status_class(api: Api) -> None:
    story(api)
    bad = api.post(
        "/v1/trades/T1/ratings", {"rater": "buyer", "score": "great", "occurred_at": at(40)}
    )
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (
        422,
        "invalid_input",
        "score",
    )
    unknown = api.post("/v1/trades/T9/payment", {"occurred_at": at(40)})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_trade")
    twice = api.post(
        "/v1/trades/T1/ratings", {"rater": "buyer", "score": "positive", "occurred_at": at(40)}
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "already_rated")
    future = api.post("/v1/members", {"member_id": "m9", "occurred_at": "2999-01-01T00:00:00Z"})
    assert (future.status_code, future.json()["code"]) == (422, "future_timestamp")
    bad_id = api.post("/v1/trades/T%201/payment", {"occurred_at": at(40)})
    assert (bad_id.status_code, bad_id.json()["field"]) == (422, "trade_id")
    no_key = api.client.post(
        "/v1/members",
        json={"member_id": "x", "occurred_at": at(0)},
        headers={"Authorization": f"Bearer {api.keys[Role.SERVICE]}"},
    )
    assert (no_key.status_code, no_key.json()["code"]) == (422, "invalid_input")


@pytest.mark.parametrize(
    ("role", "append", "penalty", "credit", "log"),
    [
        (Role.SERVICE, 201, 403, 403, 403),
        (Role.RANKING, 403, 200, 403, 403),
        (Role.READER, 403, 200, 200, 403),
        (Role.AUDITOR, 403, 200, 200, 200),
        (Role.ADMIN, 201, 200, 200, 200),
    ],
)
def test_the_role_matrix(
    api: Api, role: Role, append: int, penalty: int, credit: int, log: int
) -> None:
    api.ok("/v1/members", {"member_id": "seller-1", "occurred_at": at(0)})
    assert (
        api.post(
            "/v1/members", {"member_id": f"m-{role}", "occurred_at": at(0)}, role=role
        ).status_code
        == append
    )
    assert api.get("/v1/sellers/seller-1/penalty", role=role, min_position=1).status_code == penalty
    assert api.get("/v1/members/seller-1/credit", role=role, min_position=1).status_code == credit
    assert api.get("/v1/log", role=role).status_code == log


def test_missing_or_unknown_keys_are_401(api: Api) -> None:
    assert (
        api.post("/v1/members", {"member_id": "m", "occurred_at": at(0)}, role=None).status_code
        == 401
    )
    forged = api.client.get(
        "/v1/sellers/x/penalty", headers={"Authorization": "Bearer tl_abcd1234_nope"}
    )
    assert (forged.status_code, forged.json()["code"]) == (401, "unauthenticated")


def test_at_position_is_for_auditors(api: Api) -> None:
    positions = story(api)
    assert (
        api.get("/v1/members/seller-1/credit", role=Role.READER, at_position=3).status_code == 403
    )
    answer = api.get(
        "/v1/members/seller-1/credit", role=Role.AUDITOR, at_position=3, min_position=positions[-1]
    )
    assert answer.status_code == 200
    assert answer.json()["position"] == 3


def test_penalty_batch_keeps_order_and_marks_unknown_sellers(api: Api) -> None:
    positions = story(api)
    api.get("/v1/sellers/seller-1/penalty", role=Role.RANKING, min_position=positions[-1])
    batch = api.client.post(
        "/v1/penalties/batch",
        json={"seller_ids": ["nobody", "seller-1"]},
        headers={"Authorization": f"Bearer {api.keys[Role.RANKING]}"},
    )
    assert batch.status_code == 200
    first, second = batch.json()["penalties"]
    assert first == {"seller_id": "nobody", "unknown": True}
    assert second["seller_id"] == "seller-1"
    too_many = api.client.post(
        "/v1/penalties/batch",
        json={"seller_ids": [f"s{i}" for i in range(1001)]},
        headers={"Authorization": f"Bearer {api.keys[Role.RANKING]}"},
    )
    assert (too_many.status_code, too_many.json()["code"]) == (413, "batch_too_large")


def test_the_log_streams_as_ndjson_pages(api: Api) -> None:
    positions = story(api)
    response = api.get("/v1/log", role=Role.AUDITOR, after=2, limit=3)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["position"] for line in lines] == positions[2:5]
    assert lines[0]["topic"] == "trustledger.trade.created.v1"
    assert lines[0]["body"]["trade_id"] == "T1"
    assert lines[0]["occurred_at"] == at(1)


def test_replay_recomputes_a_members_figures_from_the_log(api: Api) -> None:
    positions = story(api)
    replayed = api.get("/v1/replay", role=Role.AUDITOR, member_id="seller-1", as_of=at(40))
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["figures"]["credit_seller"]["score"] == 1
    assert body["events_replayed"] == len(positions)
    prefix = api.get(
        "/v1/replay", role=Role.AUDITOR, member_id="seller-1", at_position=positions[4]
    )
    assert prefix.json()["figures"]["credit_seller"]["score"] == 0
    assert prefix.json()["position"] == positions[4]


def test_deadlines_run_is_for_admins(api: Api) -> None:
    story(api)
    assert api.post("/v1/deadlines/run", {"now": at(24 * 30)}, role=Role.SERVICE).status_code == 403
    run = api.post("/v1/deadlines/run", {"now": at(24 * 30)}, role=Role.ADMIN)
    assert run.status_code == 200
    assert run.headers["content-type"] == "application/json"
    assert run.json() == {"now": at(24 * 30), "trades_settled": 0, "positions": []}


def test_operations_endpoints(api: Api) -> None:
    story(api)
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["lag_events"] == ready["log_position"] - ready["view_position"]
    api.post("/v1/members", {"member_id": "buyer-1", "occurred_at": at(50)})  # refused: exists
    metrics = api.client.get("/metrics").text
    assert "trustledger_appends_total 8" in metrics
    assert 'trustledger_refusals_total{code="member_exists"} 1' in metrics
    assert "trustledger_request_seconds_bucket" in metrics
    assert "# HELP trustledger_appends_total Appends accepted" in metrics
    assert 'status="409"' in metrics  # latencies by route and status
    assert "process_cpu_seconds_total" in metrics  # the process's own figures


def test_unknown_member_and_rulebook(api: Api) -> None:
    assert api.get("/v1/members/nobody/credit").json()["code"] == "unknown_member"
    last = story(api)[-1]
    bad = api.get("/v1/members/seller-1/credit", rulebook="nope")
    assert (bad.status_code, bad.json()["code"]) == (422, "unknown_rulebook")
    ebay = api.get("/v1/members/seller-1/credit", rulebook="ebay-style", min_position=last)
    assert ebay.json()["rulebook"] == "ebay-style@1"


def test_a_query_names_a_rulebook_by_id_and_never_opens_a_file(api: Api) -> None:
    story(api)
    listed = api.get("/v1/rulebooks", role=Role.RANKING).json()["rulebooks"]
    assert [(r["id"], r["scoring_stamp"], r["default"]) for r in listed] == [
        ("ebay-style", "ebay-style@1", False),
        ("taobao-classic", "taobao-classic@1", True),
    ]
    project = Path(__file__).parents[2]
    for path in (
        str(project / "pyproject.toml"),
        str(project / "ledger" / "rulebooks" / "ebay-style.toml"),
        "ebay-style.toml",
        "../ebay-style",
    ):
        asked = api.get("/v1/members/seller-1/credit", rulebook=path)
        assert asked.status_code == 422, path
        assert asked.headers["content-type"] == "application/problem+json"
        assert "build-system" not in asked.text
        batch = api.client.post(
            "/v1/penalties/batch",
            json={"seller_ids": ["seller-1"], "rulebook": path},
            headers=api.headers(Role.RANKING),
        )
        assert batch.status_code == 422, path


def test_an_operator_loads_a_rulebook_file_that_queries_then_name_by_id(
    database_url: str, tmp_path: Path
) -> None:
    taobao = (
        Path(__file__).parents[2] / "ledger" / "rulebooks" / "taobao-classic.toml"
    ).read_text()
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(taobao.replace('id = "taobao-classic"', 'id = "stricter"', 1))
    with running_api(database_url, tmp_path, rulebook=str(stricter)) as api:
        last = story(api)[-1]
        listed = api.get("/v1/rulebooks").json()["rulebooks"]
        assert [(r["id"], r["default"]) for r in listed] == [
            ("ebay-style", False),
            ("stricter", True),
            ("taobao-classic", False),
        ]
        credit = api.get("/v1/members/seller-1/credit", min_position=last)
        assert credit.json()["rulebook"] == "stricter@1"
        named = api.get("/v1/members/seller-1/credit", rulebook="taobao-classic")
        assert named.json()["rulebook"] == "taobao-classic@1"


ANSWER_KEYS = {
    "/v1/members/seller-1/credit": [
        "rulebook",
        "as_of",
        "position",
        "score",
        "level",
        "positive_rate_lifetime",
        "positive_rate_180d",
        "ratings",
    ],
    "/v1/members/seller-1/credit/explanation": [
        "rulebook",
        "as_of",
        "position",
        "score",
        "ratings",
        "next_cursor",
    ],
    "/v1/sellers/seller-1/dsr": [
        "rulebook",
        "as_of",
        "position",
        "as_described",
        "service",
        "shipping_speed",
        "logistics",
        "count",
    ],
    "/v1/sellers/seller-1/penalty": [
        "seller_id",
        "searchable",
        "multiplier",
        "sort_hidden",
        "demoted_items",
        "demoted_items_unlisted",
        "verified",
        "reasons",
        "rulebook",
        "as_of",
        "position",
    ],
    "/v1/sellers/seller-1/violations": [
        "rulebook",
        "as_of",
        "position",
        "points",
        "sealed",
        "records",
        "bans",
    ],
    "/v1/buyers/buyer-1/history": [
        "rulebook",
        "as_of",
        "position",
        "trades",
        "purchases",
        "net_spend_minor",
        "refunds",
        "refunded_minor",
        "refund_reasons",
        "disputes",
        "disputes_won",
        "disputes_lost",
        "complaints_filed",
        "complaints_upheld",
        "complaints_dismissed",
        "ratings_given",
        "ratings_given_negative_share",
        "ratings_received",
        "fake_trades",
        "tier",
        "tier_label",
        "window_purchases",
        "window_net_spend_minor",
    ],
}


def test_answers_keep_their_fields_in_order(api: Api) -> None:
    story(api)
    last = violation(api)[-1]
    for path, keys in ANSWER_KEYS.items():
        answer = api.get(path, role=Role.AUDITOR, as_of=at(50), min_position=last)
        assert answer.status_code == 200, answer.text
        assert list(answer.json()) == keys, path
    credit = api.get("/v1/members/seller-1/credit", as_of=at(50)).json()
    assert list(credit["level"]) == ["index", "name", "icon"]
    assert list(credit["ratings"]) == ["positive", "neutral", "negative", "unscored"]
    explained = api.get("/v1/members/seller-1/credit/explanation", as_of=at(50)).json()
    assert list(explained["ratings"][0]) == [
        "trade_id",
        "rater_id",
        "position",
        "score",
        "points",
        "reason",
        "order_created_at",
        "visible_at",
    ]
    violations = api.get("/v1/sellers/seller-1/violations", as_of=at(50)).json()
    assert list(violations["points"]) == ["general", "serious"]
    assert list(violations["records"][0]) == [
        "source",
        "source_id",
        "category",
        "points",
        "reason",
        "occurred_at",
        "position",
    ]
    assert list(violations["bans"][0]) == [
        "node",
        "category",
        "action",
        "start",
        "until",
        "position",
    ]
    reasons = api.get("/v1/sellers/seller-1/penalty", role=Role.RANKING, as_of=at(50)).json()
    assert list(reasons["reasons"][0]) == ["code", "figure", "threshold", "until", "positions"]
