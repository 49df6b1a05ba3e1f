"""What-if through HTTP and the typed client: every seller under two
rulebooks is what ``trustledger whatif`` reports for the same log, levels are
compared by number only on one scale, and each seller's shift and multiplier
are what the single queries answer under each rulebook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from api.routes import whatif as route
from ledger.policy import rulebook_bytes
from projections.runner import Runner
from projections.views import MemoryView
from projections.whatif import WhatIf, what_if
from tests.e2e.support import Api, at, running_api, when

# Sellers with a trade unrated, 3 and 6 positive ratings, one with a fake
# trade, one with an upheld complaint.
RATED = {"s-quiet": 0, "s-three": 3, "s-six": 6}
FAKED, COMPLAINED = "s-faked", "s-complained"
SELLERS = sorted([*RATED, FAKED, COMPLAINED])
# Twenty days on: the fake trade is recent and the complaint in the window.
AS_OF = when(24 * 20)


def strict_rulebook(folder: Path) -> Path:
    """taobao-classic's level names with lower thresholds, rates from the
    first paid trade and harsher multipliers for fake trades and complaints."""
    text = rulebook_bytes("taobao-classic")
    for old, new in (
        (b'id = "taobao-classic"', b'id = "strict"'),
        (b"min_score = 4\n", b"min_score = 1\n"),
        (b"min_score = 11\n", b"min_score = 2\n"),
        (b"min_score = 41\n", b"min_score = 3\n"),
        (b"min_denominator = 20\n", b"min_denominator = 1\n"),
        (b'"fake_trade_recent", multiplier = 0.5', b'"fake_trade_recent", multiplier = 0.25'),
        (b'"complaint_rate", multiplier = 0.8', b'"complaint_rate", multiplier = 0.7'),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "strict.toml"
    path.write_bytes(text)
    return path


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with running_api(database_url, tmp_path, rulebook=str(strict_rulebook(tmp_path))) as client:
        yield client


def trade(
    api: Api, trade_id: str, seller: str, buyer: str, hour: int, *, paid: bool = True
) -> None:
    body = {
        "trade_id": trade_id,
        "buyer_id": buyer,
        "seller_id": seller,
        "item_id": f"item-{trade_id}",
        "amount_minor": 9_900,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": at(hour),
    }
    api.ok("/v1/trades", body)
    if not paid:
        return
    api.ok(f"/v1/trades/{trade_id}/payment", {"occurred_at": at(hour + 1)})
    api.ok(f"/v1/trades/{trade_id}/shipment", {"occurred_at": at(hour + 2)})
    api.ok(f"/v1/trades/{trade_id}/receipt", {"occurred_at": at(hour + 30)})


def story(api: Api) -> int:
    """The sellers' trades; the view is brought up to the last position, which is returned."""
    buyers = [f"b-{n}" for n in range(6)]
    for member in [*SELLERS, *buyers]:
        api.ok("/v1/members", {"member_id": member, "occurred_at": at(0)})
    trade(api, "Q-1", "s-quiet", "b-0", 24)
    for seller, ratings in RATED.items():
        for n in range(ratings):
            trade_id = f"{seller}-{n}"
            trade(api, trade_id, seller, buyers[n], 24 * (n + 1))
            rating = {"rater": "buyer", "rater_id": buyers[n], "score": "positive"}
            api.ok(f"/v1/trades/{trade_id}/ratings", {**rating, "occurred_at": at(24 * n + 60)})
    trade(api, "F-1", FAKED, "b-0", 24, paid=False)
    api.ok("/v1/trades/F-1/close", {"reason": "unpaid", "occurred_at": at(48)})
    fake = {"case_id": "case-1", "trade_ids": ["F-1"], "occurred_at": at(72)}
    api.ok(f"/v1/sellers/{FAKED}/fake-trades", fake)
    trade(api, "C-1", COMPLAINED, "b-1", 24)
    complaint = {
        "complaint_id": "c-1",
        "trade_id": "C-1",
        "type": "late_shipment",
        "severity": "minor",
        "evidence": "four days idle",
        "filed_by": "b-1",
        "occurred_at": at(100),
    }
    api.ok("/v1/complaints", complaint)
    api.ok("/v1/complaints/c-1/escalation", {"occurred_at": at(101)})
    (last,) = api.ok("/v1/complaints/c-1/ruling", {"outcome": "upheld", "occurred_at": at(102)})
    api.reader.get_credit(SELLERS[0], min_position=last)
    return last


def replayed(api: Api, base: str, tried: str) -> WhatIf:
    """What ``trustledger whatif`` reports: the log replayed into a view of
    its own, every seller of it under both rulebooks."""
    service = api.client.app.state.service  # type: ignore[attr-defined]
    view = MemoryView()
    Runner(service.ledger, view).catch_up()
    files = view.files(view.seller_ids(len(SELLERS) + 1)).values()
    rulebooks = service.reputation.rulebooks
    return what_if(files, rulebooks.get(base), rulebooks.get(tried), AS_OF)


def test_one_scale_the_answer_is_the_reports_and_each_shift_the_single_queries(
    api: Api,
) -> None:
    last = story(api)
    answer = api.auditor.compare_rulebooks("taobao-classic", as_of=AS_OF)
    report = replayed(api, "strict", "taobao-classic")
    assert (answer.base, answer.rulebook) == ("strict@1", "taobao-classic@1")
    assert (answer.as_of, answer.position) == (AS_OF, last)
    assert answer.complete and answer.same_level_scale
    assert answer.sellers == report.sellers == len(SELLERS)
    assert answer.level_moves == report.level_moves
    assert answer.level_changed == report.level_changed
    assert answer.multiplier_changed == report.multiplier_changed == 2
    counts = ("searchable_changed", "sort_hidden_changed")
    assert [getattr(answer, n) for n in counts] == [getattr(report, n) for n in counts]
    shifts: Counter[int] = Counter()
    changes: list[tuple[str, float, float]] = []
    for seller in SELLERS:
        levels = [
            api.reader.get_credit(seller, rulebook=book, as_of=AS_OF).level.index
            for book in ("strict", "taobao-classic")
        ]
        shifts[levels[1] - levels[0]] += 1
        before, after = (
            api.ranking.get_seller_penalty(seller, rulebook=book, as_of=AS_OF).multiplier
            for book in ("strict", "taobao-classic")
        )
        if before != after:
            changes.append((seller, before, after))
    assert answer.level_shifts is not None
    assert {s.levels: s.sellers for s in answer.level_shifts} == shifts
    assert shifts[0] and len(shifts) > 1  # some sellers move, some do not
    listed = [(m.seller_id, m.base, m.rulebook) for m in answer.multiplier_changes]
    # The largest change first: the complaint's 0.7 against none, then the fake trade's.
    assert listed == sorted(changes, key=lambda c: -abs(c[2] - c[1])) and len(listed) == 2
    assert [seller for seller, *_ in listed] == [COMPLAINED, FAKED]
    assert all(m.change == m.rulebook - m.base for m in answer.multiplier_changes)


def test_across_scales_levels_are_counted_by_where_sellers_land(api: Api) -> None:
    story(api)
    answer = api.admin.compare_rulebooks("ebay-style", base="taobao-classic", as_of=AS_OF)
    report = replayed(api, "taobao-classic", "ebay-style")
    assert not answer.same_level_scale
    assert answer.level_shifts is None and answer.level_changed is None
    assert answer.level_moves == report.level_moves
    assert sum(move.sellers for move in answer.level_moves) == answer.sellers == len(SELLERS)


def test_past_the_limit_the_first_sellers_are_answered_marked_incomplete(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    story(api)
    monkeypatch.setattr(route, "WHATIF_SELLERS_MAX", 3)
    monkeypatch.setattr(route, "WHATIF_LISTED_MAX", 1)
    answer = api.auditor.compare_rulebooks("taobao-classic", as_of=AS_OF)
    assert (answer.sellers, answer.complete) == (3, False)
    assert [m.seller_id for m in answer.multiplier_changes] == [COMPLAINED]
    monkeypatch.setattr(route, "WHATIF_SELLERS_MAX", len(SELLERS))
    assert api.auditor.compare_rulebooks("taobao-classic").complete


def test_who_may_ask_and_the_rulebooks_refused(api: Api) -> None:
    story(api)

    def refused(status: int, code: str, role: Role = Role.AUDITOR, **params: Any) -> None:
        response = api.get("/v1/whatif", role=role, **params)
        assert response.status_code == status, response.text
        assert response.json()["code"] == code

    refused(403, "forbidden", Role.READER, rulebook="ebay-style")
    refused(403, "forbidden", Role.RANKING, rulebook="ebay-style")
    refused(422, "unknown_rulebook", rulebook="nope")
    refused(422, "unknown_rulebook", rulebook="ebay-style", base="nope")
    refused(422, "invalid_input")  # the rulebook tried is not optional
    assert api.get("/v1/whatif", role=Role.ADMIN, rulebook="strict").status_code == 200
