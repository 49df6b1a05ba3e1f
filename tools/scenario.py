"""A small built-in marketplace story, so a newcomer sees real facts at once.

Business times are fixed and every command carries a fixed idempotency key,
so running the story again replays it: nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import commands as c
from ledger.app import Appended, LedgerApp, Origin
from ledger.events import Dsr, RefundReason

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALLER = "demo-scenario"


def _at(days: float) -> datetime:
    return START + timedelta(days=days)


Step = tuple[Callable[[Any, Origin], Appended], c.Command]


def _steps(app: LedgerApp) -> Iterator[Step]:
    for member in ("alice", "bob-shop", "carol", "dave-store"):
        yield app.register_member, c.RegisterMember(member_id=member, occurred_at=_at(0))
    yield app.verify_identity, c.VerifyIdentity(member_id="bob-shop", occurred_at=_at(0.5))

    def trade(
        trade_id: str, buyer: str, seller: str, item: str, *, amount: int, day: float
    ) -> c.CreateTrade:
        return c.CreateTrade(
            trade_id=trade_id,
            buyer_id=buyer,
            seller_id=seller,
            item_id=item,
            amount_minor=amount,
            currency="CNY",
            goods_kind="physical",
            shipping="express",
            occurred_at=_at(day),
        )

    def paid_and_shipped(trade_id: str, *, paid: float, shipped: float) -> Iterator[Step]:
        yield app.pay_into_escrow, c.PayIntoEscrow(trade_id=trade_id, occurred_at=_at(paid))
        yield app.ship_trade, c.ShipTrade(trade_id=trade_id, occurred_at=_at(shipped))

    def refund(
        trade_id: str, refund_id: str, *, amount: int, reason: RefundReason, day: float
    ) -> Step:
        return app.request_refund, c.RequestRefund(
            trade_id=trade_id,
            refund_id=refund_id,
            amount_minor=amount,
            reason=reason,
            with_return=False,
            occurred_at=_at(day),
        )

    def seller_positive(trade_id: str, *, day: float) -> Step:
        return app.give_rating, c.GiveRating(
            trade_id=trade_id, rater="seller", score="positive", occurred_at=_at(day)
        )

    # A happy trade: paid, shipped, confirmed, rated both ways with shop scores.
    yield app.create_trade, trade("T-1001", "alice", "bob-shop", "teapot", amount=12_800, day=1)
    yield from paid_and_shipped("T-1001", paid=1.01, shipped=1.5)
    yield app.confirm_receipt, c.ConfirmReceipt(trade_id="T-1001", occurred_at=_at(4))
    yield (
        app.give_rating,
        c.GiveRating(
            trade_id="T-1001",
            rater="buyer",
            score="positive",
            occurred_at=_at(4.1),
            dsr=Dsr(as_described=5, service=5, shipping_speed=4, logistics=5),
            comment="Lovely teapot, well packed.",
        ),
    )
    yield seller_positive("T-1001", day=4.2)

    # A partial refund before success; the rest of the escrow is released later.
    yield app.create_trade, trade("T-1002", "carol", "bob-shop", "cups", amount=6_000, day=2)
    yield from paid_and_shipped("T-1002", paid=2.01, shipped=2.5)
    yield refund("T-1002", "RF-1", amount=1_500, reason="damaged", day=4)
    yield app.agree_refund, c.AgreeRefund(trade_id="T-1002", refund_id="RF-1", occurred_at=_at(4.5))
    yield seller_positive("T-1002", day=20)

    # A rejected refund escalated to a dispute the seller loses, and a complaint.
    yield app.create_trade, trade("T-1003", "alice", "dave-store", "lamp", amount=25_000, day=3)
    yield from paid_and_shipped("T-1003", paid=3.01, shipped=6)
    yield refund("T-1003", "RF-2", amount=25_000, reason="not_as_described", day=8)
    yield app.reject_refund, c.RejectRefund(trade_id="T-1003", refund_id="RF-2", occurred_at=_at(9))
    yield (
        app.escalate_dispute,
        c.EscalateDispute(trade_id="T-1003", refund_id="RF-2", occurred_at=_at(10)),
    )
    yield (
        app.file_complaint,
        c.FileComplaint(
            complaint_id="CS-77",
            trade_id="T-1003",
            type="not_as_described",
            severity="moderate",
            evidence="photos:lamp-77",
            occurred_at=_at(10.5),
        ),
    )
    yield (
        app.rule_dispute,
        c.RuleDispute(trade_id="T-1003", outcome="seller_at_fault", occurred_at=_at(12)),
    )
    yield (
        app.rule_complaint,
        c.RuleComplaint(complaint_id="CS-77", outcome="upheld", occurred_at=_at(13)),
    )
    yield (
        app.record_violation,
        c.RecordViolation(
            seller_id="dave-store",
            violation_id="V-9",
            category="general",
            points=2,
            reason="misleading listing photos",
            occurred_at=_at(14),
        ),
    )


def run_scenario(app: LedgerApp) -> list[tuple[str, Appended]]:
    """Append the story (or replay it), then settle every deadline due by its end."""
    results = []
    for number, (method, command) in enumerate(_steps(app), start=1):
        results.append((type(command).__name__, method(command, Origin(CALLER, f"demo-{number}"))))
    return results


SCENARIO_END = _at(40)
