"""A seller's complaints and refunds, listed page by page, on memory, SQLite and
PostgreSQL: in log order, each as its facts leave it, the same from a view
folded in small batches, from the whole log at once and from a rebuilt
version, and read from an index (a page never scans or sorts the history)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from psycopg import sql

from ledger import commands as c
from ledger.trade import RefundStatus
from projections.marketplace import Marketplace
from projections.runner import Runner
from projections.seller_cases import (
    CASE_PAGE_MAX,
    ComplaintPage,
    RefundPage,
    complaints_page,
    refunds_page,
)
from projections.views import ReputationView, SqlView, open_view
from tests.support import DAY, HOUR, T0, Market


@pytest.fixture
def view(database_url: str) -> Iterator[ReputationView]:
    opened = open_view(database_url)
    yield opened
    opened.close()


def story(market: Market) -> None:
    """seller-1: five trades whose refunds end every way, three complaints;
    seller-2: one trade with a refund and a complaint, recorded in between."""
    for n in range(1, 6):
        market.trade(f"T{n}", at=T0 + n * HOUR)
        market.pay(f"T{n}", at=T0 + n * HOUR + HOUR)
    market.trade("T9", seller="seller-2", buyer="buyer-2", at=T0 + HOUR)
    market.pay("T9", at=T0 + 2 * HOUR)
    app, day = market.app, T0 + DAY
    market.refund("T1", "R1", at=day)
    market.run(app.agree_refund, c.AgreeRefund(trade_id="T1", refund_id="R1", occurred_at=day))
    # Refund ids are the trade's own: T2's "R1" is another refund.
    market.refund("T2", "R1", amount_minor=4_000, at=day + HOUR, reason="damaged")
    market.refund("T9", "R9", at=day + HOUR)
    market.run(
        app.reject_refund, c.RejectRefund(trade_id="T2", refund_id="R1", occurred_at=day + HOUR)
    )
    market.run(
        app.escalate_dispute,
        c.EscalateDispute(trade_id="T2", refund_id="R1", occurred_at=day + 2 * HOUR),
    )
    market.ship("T3", at=day)
    market.refund("T3", "R3", with_return=True, at=day + 2 * HOUR)
    market.run(
        app.agree_refund, c.AgreeRefund(trade_id="T3", refund_id="R3", occurred_at=day + 3 * HOUR)
    )
    market.run(
        app.ship_return, c.ShipReturn(trade_id="T3", refund_id="R3", occurred_at=day + 4 * HOUR)
    )
    market.refund("T4", "R4", at=day + 3 * HOUR)
    market.run(
        app.cancel_refund, c.CancelRefund(trade_id="T4", refund_id="R4", occurred_at=day + 5 * HOUR)
    )
    market.refund("T5", "R5", amount_minor=100, at=day + 4 * HOUR, reason="other")
    market.run(
        app.rule_dispute,
        c.RuleDispute(trade_id="T2", outcome="not_seller_fault", occurred_at=day + 6 * HOUR),
    )
    for complaint, trade, kind in (
        ("C1", "T1", "not_as_described"),
        ("C9", "T9", "other"),
        ("C2", "T2", "late_shipment"),
        ("C3", "T3", "counterfeit"),
    ):
        market.run(
            app.file_complaint,
            c.FileComplaint(
                complaint_id=complaint,
                trade_id=trade,
                type=kind,  # type: ignore[arg-type]
                severity="severe",
                occurred_at=day + 7 * HOUR,
            ),
        )
    later = day + 8 * HOUR
    market.run(app.escalate_complaint, c.EscalateComplaint(complaint_id="C1", occurred_at=later))
    market.run(
        app.rule_complaint, c.RuleComplaint(complaint_id="C1", outcome="upheld", occurred_at=later)
    )
    market.run(
        app.rule_complaint,
        c.RuleComplaint(complaint_id="C2", outcome="dismissed", occurred_at=later),
    )


def pages(first: Callable[[str | None], ComplaintPage | RefundPage]) -> list[Any]:
    """Every item of a list, followed page by page from the first."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = first(cursor)
        found = page.complaints if isinstance(page, ComplaintPage) else page.refunds
        items += found
        if page.next_cursor is None:
            return items
        assert len(found) == 2
        cursor = page.next_cursor


def listed(view: Any, seller_id: str = "seller-1") -> dict[str, list[Any]]:
    complaints = pages(lambda cursor: complaints_page(view, seller_id, cursor, 2))
    refunds = pages(lambda cursor: refunds_page(view, seller_id, cursor, 2))
    found: dict[str, list[Any]] = msgspec.to_builtins(
        {"complaints": complaints, "refunds": refunds}
    )
    return found


def oracle(market: Market) -> Marketplace:
    whole = Marketplace()
    for notification in market.app.iter_log():
        whole.apply(market.app.decode(notification), notification.id)
    return whole


def test_a_sellers_complaints_and_refunds_come_in_log_order_as_their_facts_leave_them(
    market: Market, view: ReputationView
) -> None:
    story(market)
    assert Runner(market.app, view, batch_events=3).catch_up() == market.log_size()
    found = listed(view)
    refunds = found["refunds"]
    assert [(r["trade_id"], r["refund_id"]) for r in refunds] == [
        ("T1", "R1"),
        ("T2", "R1"),
        ("T3", "R3"),
        ("T4", "R4"),
        ("T5", "R5"),
    ]
    assert [r["status"] for r in refunds] == [
        RefundStatus.PAID,
        RefundStatus.CLOSED,
        RefundStatus.RETURN_SHIPPED,
        RefundStatus.CANCELLED,
        RefundStatus.REQUESTED,
    ]
    positions = [r["position"] for r in refunds]
    assert positions == sorted(positions) and len(set(positions)) == 5
    paid, closed, shipped, cancelled, requested = refunds
    assert paid["paid_at"] == paid["settled_at"] == paid["requested_at"]
    assert (closed["amount_minor"], closed["reason"]) == (4_000, "damaged")
    assert closed["close_reason"] == "dispute_not_seller_fault" and closed["paid_at"] is None
    assert closed["settled_at"] > closed["requested_at"]
    assert shipped["with_return"] and shipped["settled_at"] is None
    assert cancelled["settled_at"] is not None and cancelled["paid_at"] is None
    assert (requested["settled_at"], requested["buyer_id"]) == (None, "buyer-1")
    complaints = found["complaints"]
    assert [(x["complaint_id"], x["trade_id"]) for x in complaints] == [
        ("C1", "T1"),
        ("C2", "T2"),
        ("C3", "T3"),
    ]
    upheld, dismissed, still_open = complaints
    assert (upheld["type"], upheld["outcome"], upheld["points"]) == (
        "not_as_described",
        "upheld",
        12,
    )
    assert upheld["escalated_at"] is not None and upheld["ruled_at"] is not None
    assert (dismissed["outcome"], dismissed["points"], dismissed["escalated_at"]) == (
        "dismissed",
        0,
        None,
    )
    assert (still_open["outcome"], still_open["ruled_at"], still_open["severity"]) == (
        None,
        None,
        "severe",
    )
    assert complaints[0]["position"] < complaints[1]["position"] < complaints[2]["position"]
    # The whole log folded at once lists the same, and the other seller only its own.
    assert found == listed(oracle(market))
    other = listed(view, "seller-2")
    assert [x["complaint_id"] for x in other["complaints"]] == ["C9"]
    assert [(r["trade_id"], r["refund_id"]) for r in other["refunds"]] == [("T9", "R9")]
    assert listed(view, "buyer-1") == {"complaints": [], "refunds": []}


def test_a_page_holds_at_most_its_limit_and_its_cursor_goes_on_after_its_last_item(
    market: Market, view: ReputationView
) -> None:
    story(market)
    Runner(market.app, view).catch_up()
    first = refunds_page(view, "seller-1", None, 3)
    assert [r.refund_id for r in first.refunds] == ["R1", "R1", "R3"]
    rest = refunds_page(view, "seller-1", first.next_cursor, CASE_PAGE_MAX)
    assert ([r.refund_id for r in rest.refunds], rest.next_cursor) == (["R4", "R5"], None)
    whole = complaints_page(view, "seller-1", None, 3)
    assert (len(whole.complaints), whole.next_cursor) == (3, None)
    for limit in (0, CASE_PAGE_MAX + 1):
        with pytest.raises(ValueError, match="a page is"):
            complaints_page(view, "seller-1", None, limit)


def test_a_rebuilt_version_lists_the_same_from_the_log(market: Market, stored_url: str) -> None:
    story(market)
    first = open_view(stored_url)
    rebuilt = open_view(stored_url, version=2)
    try:
        Runner(market.app, first, batch_events=5).catch_up()
        Runner(market.app, rebuilt).catch_up()
        assert listed(rebuilt) == listed(first) == listed(oracle(market))
    finally:
        first.close()
        rebuilt.close()


# An index read bounded by the seller and the position, as SQLite and
# PostgreSQL show it in a plan.
SELLER_RANGE = re.compile(r"seller_id=\? AND \w+_position>\?|seller_id = .+ AND \(\w+_position >")


class Recording:
    """A cursor that remembers the statements run through it."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.seen: list[tuple[Any, Any]] = []

    def execute(self, statement: Any, params: Any = ()) -> Any:
        self.seen.append((statement, params))
        return self.cursor.execute(statement, params)

    def fetchall(self) -> Any:
        return self.cursor.fetchall()


def plans(view: SqlView, statements: list[tuple[Any, Any]]) -> list[str]:
    """The query plans of statements, as the database would run them on a big
    table (PostgreSQL is kept from scans and sorts it can avoid)."""
    found = []
    for statement, params in statements:
        if isinstance(statement, str):
            db = view._db  # type: ignore[attr-defined]
            rows = db.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            found.append("\n".join(row[-1] for row in rows))
            continue
        with view._transaction() as cursor:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute(sql.SQL("EXPLAIN ") + statement, params)
            found.append("\n".join(row[0] for row in cursor.fetchall()))
    return found


def test_a_page_reads_the_sellers_index_and_neither_scans_nor_sorts(
    market: Market, stored_url: str
) -> None:
    story(market)
    view = open_view(stored_url)
    assert isinstance(view, SqlView)
    opened = view._transaction
    recorded: list[tuple[Any, Any]] = []

    @contextmanager
    def recording() -> Iterator[Recording]:
        with opened() as cursor:
            recording = Recording(cursor)
            yield recording
            recorded.extend(recording.seen)

    try:
        Runner(market.app, view).catch_up()
        view._transaction = recording  # type: ignore[method-assign]
        complaints_page(view, "seller-1", None, 2)
        refunds_page(view, "seller-1", None, 2)
        view._transaction = opened  # type: ignore[method-assign]
        assert len(recorded) == 2
        for plan in plans(view, recorded):
            # The seller and the position bound the index range read...
            assert SELLER_RANGE.search(plan), plan
            # ...and nothing else is read or ordered: no scan, filter or sort.
            for whole in ("SCAN", "TEMP B-TREE", "Seq Scan", "Filter", "Sort"):
                assert whole not in plan, plan
    finally:
        view.close()
