"""End to end through HTTP, on memory, SQLite and PostgreSQL: one test per feature.

Platform services, ranking engines, readers and auditors call through the
typed client (``api.service``, ``api.ranking``...); a test calls raw HTTP
where HTTP itself is what it checks: status codes, headers, problem-details
bodies, keys and roles, malformed bodies, the exact bytes and order of JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.answers import CreditLevel, RatingCounts
from api.auth import KeyRing, Role
from client import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from client.answers import PenaltyAnswer, UnknownMember, UnknownSeller
from ledger import commands as c
from ledger.events import Dsr
from tests.e2e.support import Api, at, running_api, when
from tests.support import new_trade


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path) as client:
        yield client


def story(api: Api) -> list[int]:
    """Two members and a trade of theirs, paid, shipped, received and rated
    both ways, appended by the platform service; every position written."""
    service = api.service
    appended = [
        service.register_member(c.RegisterMember(member_id=member, occurred_at=when(0)))
        for member in ("buyer-1", "seller-1")
    ]
    shop_scores = Dsr(as_described=5, service=5, shipping_speed=4, logistics=5)
    appended += [
        service.create_trade(new_trade("T1", item="teapot", amount_minor=12_800, at=when(1))),
        service.pay_into_escrow(c.PayIntoEscrow(trade_id="T1", occurred_at=when(2))),
        service.ship_trade(c.ShipTrade(trade_id="T1", occurred_at=when(3))),
        service.confirm_receipt(c.ConfirmReceipt(trade_id="T1", by="buyer", occurred_at=when(24))),
        service.give_rating(
            c.GiveRating(
                trade_id="T1",
                rater="buyer",
                score="positive",
                dsr=shop_scores,
                occurred_at=when(30),
            )
        ),
        service.give_rating(
            c.GiveRating(trade_id="T1", rater="seller", score="positive", occurred_at=when(31))
        ),
    ]
    return [position for append in appended for position in append.positions]


def violation(api: Api) -> list[int]:
    """Twelve general points against seller-1 at hour 40: a 7-day ban."""
    recorded = api.service.record_violation(
        c.RecordViolation(
            seller_id="seller-1",
            violation_id="V1",
            category="general",
            points=12,
            reason="counterfeit listing",
            occurred_at=when(40),
        )
    )
    return list(recorded.positions)


def test_a_trade_through_http_shows_in_credit_dsr_and_penalty(api: Api) -> None:
    positions = story(api)
    last = positions[-1]
    credit = api.reader.get_credit("seller-1", min_position=last, as_of=when(40))
    assert credit.score == 1
    assert credit.level == CreditLevel(index=0, name="no level", icon="")
    assert credit.ratings == RatingCounts(positive=1, neutral=0, negative=0, unscored=0)
    assert credit.rulebook == "taobao-classic@1"
    assert credit.position == last
    dsr = api.reader.get_seller_dsr("seller-1", as_of=when(40))
    assert (dsr.as_described, dsr.shipping_speed, dsr.count) == (5.0, 4.0, 1)
    penalty = api.ranking.get_seller_penalty("seller-1")
    assert (penalty.searchable, penalty.multiplier, penalty.sort_hidden) == (True, 1.0, False)
    history = api.reader.get_buyer_history("buyer-1", as_of=when(40))
    assert (history.purchases, history.tier) == (1, "novice")
    explanation = api.reader.explain_credit("seller-1", as_of=when(40))
    assert [(r.trade_id, r.points, r.reason) for r in explanation.ratings] == [("T1", 1, None)]


def test_min_position_past_the_log_is_refused_and_the_batch_takes_it_too(api: Api) -> None:
    last = story(api)[-1]
    with pytest.raises(InvalidInput) as beyond:
        api.reader.get_credit("seller-1", min_position=last + 1)
    assert (beyond.value.status, beyond.value.code, beyond.value.field) == (
        422,
        "position_beyond_log",
        "min_position",
    )
    assert api.reader.get_credit("seller-1", min_position=last).position == last
    (entry,) = api.ranking.get_penalties(["seller-1"], min_position=last).penalties
    assert isinstance(entry, PenaltyAnswer) and entry.position == last
    with pytest.raises(InvalidInput) as refused:
        api.ranking.get_penalties(["seller-1"], min_position=last + 5)
    assert (refused.value.status, refused.value.code) == (422, "position_beyond_log")


def test_credit_and_shop_scores_come_in_batches_equal_to_the_single_answers(api: Api) -> None:
    last = story(api)[-1]
    reader = api.reader
    credits = reader.get_credit_batch(
        ["seller-1", "nobody", "buyer-1"], as_of=when(40), min_position=last
    )
    single = [reader.get_credit(m, as_of=when(40)) for m in ("seller-1", "buyer-1")]
    assert credits.credits == (single[0], UnknownMember("nobody"), single[1])
    scores = reader.get_dsr_batch(["seller-1"], as_of=when(40), min_position=last)
    assert scores.shop_scores == (reader.get_seller_dsr("seller-1", as_of=when(40)),)
    with pytest.raises(TooLarge) as too_many:
        reader.get_dsr_batch(["s"] * 1_001)
    assert (too_many.value.status, too_many.value.code) == (413, "batch_too_large")
    with pytest.raises(Forbidden):
        api.ranking.get_credit_batch(["s"])


def test_an_answer_as_of_a_fixed_time_has_an_etag_and_a_caller_holding_it_gets_304(
    api: Api,
) -> None:
    last = story(api)[-1]
    path = "/v1/members/seller-1/credit"
    first = api.get(path, as_of=at(40), min_position=last)  # raw: the headers are the subject
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
    days_max = models["TimerExtension"]["properties"]["days"]["maximum"]
    service = api.service
    for member in ("buyer-1", "seller-1"):
        service.register_member(c.RegisterMember(member_id=member, occurred_at=when(0)))
    for trade in ("T1", "T2"):
        service.create_trade(new_trade(trade, item="teapot", amount_minor=100, at=when(1)))
        service.pay_into_escrow(c.PayIntoEscrow(trade_id=trade, occurred_at=when(2)))
        service.ship_trade(c.ShipTrade(trade_id=trade, occurred_at=when(3)))

    # A command Struct is checked when decoded, not when built: these reach the server.
    def extension(days: int) -> c.ExtendConfirmTimer:
        return c.ExtendConfirmTimer(trade_id="T1", days=days, occurred_at=when(4))

    def rating(comment: str) -> c.GiveRating:
        return c.GiveRating(
            trade_id="T2", rater="buyer", score="positive", comment=comment, occurred_at=when(30)
        )

    with pytest.raises(InvalidInput) as too_long:
        service.extend_confirm_timer(extension(days_max + 1))
    assert (too_long.value.status, too_long.value.code) == (422, "extension_days_out_of_range")
    service.extend_confirm_timer(extension(days_max))
    service.confirm_receipt(c.ConfirmReceipt(trade_id="T2", occurred_at=when(24)))
    with pytest.raises(InvalidInput) as refused:
        service.give_rating(rating("x" * (comment_max + 1)))
    assert (refused.value.status, refused.value.field) == (422, "comment")
    service.give_rating(rating("x" * comment_max))


def test_a_trade_reads_back_with_its_facts(api: Api) -> None:
    positions = story(api)
    record = api.service.get_trade("T1")
    assert (record.trade_id, record.succeeded_at is not None) == ("T1", True)
    assert [r.rater for r in record.ratings] == ["buyer", "seller"]
    facts = record.facts
    assert [f.position for f in facts] == positions[2:]  # the members' facts are theirs
    assert facts[0].topic == "trustledger.trade.created.v1"
    assert record.position == positions[-1]
    with pytest.raises(NotFound) as unknown:
        api.service.get_trade("T404")
    assert unknown.value.code == "unknown_trade"
    with pytest.raises(Forbidden):
        api.ranking.get_trade("T1")


def test_a_members_trades_come_in_pages_in_creation_order(api: Api) -> None:
    story(api)
    service = api.service
    for n, hour in ((2, 5), (3, 6), (4, 7)):
        trade = new_trade(f"T{n}", item="cup", amount_minor=900 + n, at=when(hour))
        service.create_trade(trade)
    page = service.list_seller_trades("seller-1", limit=3)  # reads the service's own writes
    assert [t.trade_id for t in page.trades] == ["T1", "T2", "T3"]
    assert page.trades[0].succeeded_at is not None and page.trades[1].paid_at is None
    rest = service.list_seller_trades("seller-1", limit=3, cursor=page.next_cursor)
    assert ([t.trade_id for t in rest.trades], rest.next_cursor) == (["T4"], None)
    # Raw: the Link header names the next page, as the cursor in the body does.
    key = {"Authorization": f"Bearer {api.keys[Role.SERVICE]}"}
    first = api.client.get("/v1/sellers/seller-1/trades", params={"limit": 3}, headers=key)
    link = first.headers["link"]
    assert link.endswith('rel="next"') and first.json()["next_cursor"] in link
    linked = api.client.get(link[1 : link.index(">")], headers=key).json()
    assert ([t["trade_id"] for t in linked["trades"]], linked["next_cursor"]) == (["T4"], None)
    bought = service.list_buyer_trades("buyer-1")
    assert [t.trade_id for t in bought.trades] == ["T1", "T2", "T3", "T4"]
    with pytest.raises(NotFound) as nobody:
        service.list_seller_trades("nobody")
    assert nobody.value.code == "unknown_member"
    with pytest.raises(InvalidInput) as foreign:
        service.list_seller_trades("seller-1", cursor="x")
    assert (foreign.value.status, foreign.value.code) == (422, "invalid_cursor")


def test_a_full_page_of_the_log_names_the_next(api: Api) -> None:
    positions = story(api)
    # Raw: the Link header and the page's lines are the subject.
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
    reader = api.reader
    first = reader.explain_credit("seller-1", as_of=when(40), limit=1, min_position=last)
    assert [r.trade_id for r in first.ratings] == ["T1"]
    assert first.score == 1
    rest = reader.explain_credit("seller-1", as_of=when(40), limit=1, cursor=first.next_cursor)
    assert (rest.ratings, rest.next_cursor) == ((), None)
    assert reader.explain_credit("seller-1", as_of=when(40)).next_cursor is None
    with pytest.raises(InvalidInput) as foreign:
        reader.explain_credit("seller-1", cursor="not-ours")
    assert (foreign.value.status, foreign.value.code) == (422, "invalid_cursor")
    with pytest.raises(InvalidInput) as nothing:
        reader.explain_credit("seller-1", limit=0)
    assert nothing.value.status == 422


def test_appends_answer_201_with_positions_and_replay_a_repeated_key(api: Api) -> None:
    # Raw: the status, the Idempotency-Replayed header and the problem's media type.
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
    successor made by rotation belongs to the same caller (raw: the keys and
    headers of each request are the subject)."""
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
    # Raw: the problem-details bodies, some for bodies no command Struct can hold.
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
    api.service.register_member(c.RegisterMember(member_id="seller-1", occurred_at=when(0)))
    # Raw: the status each role's key is answered with is the subject.
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
    # Raw: the typed client always sends its key.
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
    with pytest.raises(Forbidden):
        api.reader.get_credit("seller-1", at_position=3)
    answer = api.auditor.get_credit("seller-1", at_position=3, min_position=positions[-1])
    assert answer.position == 3


def test_penalty_batch_keeps_order_and_marks_unknown_sellers(api: Api) -> None:
    positions = story(api)
    ranking = api.ranking
    ranking.get_seller_penalty("seller-1", min_position=positions[-1])
    first, second = ranking.get_penalties(["nobody", "seller-1"]).penalties
    assert first == UnknownSeller("nobody")
    assert isinstance(second, PenaltyAnswer) and second.seller_id == "seller-1"
    with pytest.raises(TooLarge) as too_many:
        ranking.get_penalties([f"s{i}" for i in range(1001)])
    assert (too_many.value.status, too_many.value.code) == (413, "batch_too_large")


def test_the_log_streams_as_ndjson_pages(api: Api) -> None:
    positions = story(api)
    # Raw: the media type and the lines as sent are the subject.
    response = api.get("/v1/log", role=Role.AUDITOR, after=2, limit=3)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["position"] for line in lines] == positions[2:5]
    assert lines[0]["topic"] == "trustledger.trade.created.v1"
    assert lines[0]["body"]["trade_id"] == "T1"
    assert lines[0]["occurred_at"] == at(1)


def test_replay_recomputes_a_members_figures_from_the_log(api: Api) -> None:
    positions = story(api)
    replayed = api.auditor.replay_member("seller-1", as_of=when(40))
    assert replayed["figures"]["credit_seller"]["score"] == 1
    assert replayed["events_replayed"] == len(positions)
    prefix = api.auditor.replay_member("seller-1", at_position=positions[4])
    assert prefix["figures"]["credit_seller"]["score"] == 0
    assert prefix["position"] == positions[4]


def test_deadlines_run_is_for_admins(api: Api) -> None:
    story(api)
    # Raw: the status for each role and the media type are the subject.
    assert api.post("/v1/deadlines/run", {"now": at(24 * 30)}, role=Role.SERVICE).status_code == 403
    run = api.post("/v1/deadlines/run", {"now": at(24 * 30)}, role=Role.ADMIN)
    assert run.status_code == 200
    assert run.headers["content-type"] == "application/json"
    assert run.json() == {"now": at(24 * 30), "trades_settled": 0, "positions": []}


def test_operations_endpoints(api: Api) -> None:
    story(api)
    # Raw: these answer without a key, and the typed client always sends one.
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["lag_events"] == ready["log_position"] - ready["view_position"]
    with pytest.raises(Conflict) as exists:
        api.service.register_member(c.RegisterMember(member_id="buyer-1", occurred_at=when(50)))
    assert exists.value.code == "member_exists"
    metrics = api.client.get("/metrics").text
    assert "trustledger_appends_total 8" in metrics
    assert 'trustledger_refusals_total{code="member_exists"} 1' in metrics
    assert "trustledger_request_seconds_bucket" in metrics
    assert "# HELP trustledger_appends_total Appends accepted" in metrics
    assert 'status="409"' in metrics  # latencies by route and status
    assert "process_cpu_seconds_total" in metrics  # the process's own figures


def test_unknown_member_and_rulebook(api: Api) -> None:
    with pytest.raises(NotFound) as nobody:
        api.reader.get_credit("nobody")
    assert nobody.value.code == "unknown_member"
    last = story(api)[-1]
    with pytest.raises(InvalidInput) as bad:
        api.reader.get_credit("seller-1", rulebook="nope")
    assert (bad.value.status, bad.value.code) == (422, "unknown_rulebook")
    ebay = api.reader.get_credit("seller-1", rulebook="ebay-style", min_position=last)
    assert ebay.rulebook == "ebay-style@1"


def test_a_query_names_a_rulebook_by_id_and_never_opens_a_file(api: Api) -> None:
    story(api)
    listed = api.ranking.list_rulebooks().rulebooks
    assert [(r.id, r.scoring_stamp, r.default) for r in listed] == [
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
        # Raw: the whole body must be a problem that shows nothing of the file.
        asked = api.get("/v1/members/seller-1/credit", rulebook=path)
        assert asked.status_code == 422, path
        assert asked.headers["content-type"] == "application/problem+json"
        assert "build-system" not in asked.text
        with pytest.raises(InvalidInput) as batch:
            api.ranking.get_penalties(["seller-1"], rulebook=path)
        assert batch.value.status == 422, path


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
        listed = api.reader.list_rulebooks().rulebooks
        assert [(r.id, r.default) for r in listed] == [
            ("ebay-style", False),
            ("stricter", True),
            ("taobao-classic", False),
        ]
        credit = api.reader.get_credit("seller-1", min_position=last)
        assert credit.rulebook == "stricter@1"
        named = api.reader.get_credit("seller-1", rulebook="taobao-classic")
        assert named.rulebook == "taobao-classic@1"


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
    # Raw: the order of the JSON keys as sent is the subject.
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
        "given_score",
        "revised_at",
        "withdrawn_at",
        "default",
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
