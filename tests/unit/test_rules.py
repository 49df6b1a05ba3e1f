"""The positive rules of docs/rules.md §2, one test (or one table) per rule.

Every test asserts the exact facts recorded: topic, business time
(``occurred_at``, a deadline's due time) and fields. A fact is compared as
``(topic, occurred_at, fields)`` where ``fields`` leaves out the envelope
(ids, versions, recording time, policy stamp), any field still at its default,
and the story's default parties (trade ``T1`` of ``buyer-1`` and ``seller-1``,
complaint ``C1``); a fact about anything else shows those fields too.

Times follow docs/rules.md §0: N days are N x 24 h, windows are half-open, so the
last instant inside a window is ``end - US`` and ``end`` itself is late.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from ledger import commands as c
from ledger.app import DEADLINE_BATCH_MAX, Appended, DeadlineRun
from ledger.events import (
    CompensationPaid,
    ComplaintEscalated,
    ComplaintFiled,
    ComplaintFollowUpRecorded,
    ComplaintRuled,
    ComplaintSlotTaken,
    ConfirmTimerExtended,
    DisputeEscalated,
    DisputeRuled,
    Dsr,
    EscrowReleased,
    Event,
    FakeTradesConfirmed,
    FollowUpReviewed,
    IdentityVerified,
    MemberRegistered,
    PaymentEscrowed,
    RatingExplained,
    RatingGiven,
    RatingRevised,
    RatingShielded,
    RatingWithdrawn,
    ReceiptConfirmed,
    RefundAgreed,
    RefundCancelled,
    RefundClosed,
    RefundPaid,
    RefundRejected,
    RefundRequested,
    ReturnReceived,
    ReturnShipped,
    SearchCheatingRecorded,
    TradeClosed,
    TradeCreated,
    TradeEvent,
    TradeShipped,
    ViolationRecorded,
    topic_of,
)
from tests.support import DAY, HOUR, T0, Market

US = timedelta(microseconds=1)
PRICE = 10_000  # the story's default price: 100.00 CNY
CREATED = T0 + HOUR  # Market.trade's default creation time
PAID = T0 + 2 * HOUR  # Market.pay's default
SHIPPED = T0 + 3 * HOUR  # Market.ship's default
S = SHIPPED  # short, for stories that count days from shipping
CONFIRMED = T0 + DAY  # Market.confirm's default: success
WINDOW_CLOSES = CONFIRMED + 15 * DAY  # the rating window of a trade that succeeded at CONFIRMED
FAR = T0 + 1_000 * DAY  # a deadline-worker time after every deadline of these stories

Fact = tuple[str, datetime, dict[str, Any]]

_ENVELOPE = frozenset(
    {
        "originator_id",
        "originator_version",
        "recorded_at",
        "policy_version",
        "occurred_at",
        "recorded_by",
    }
)
_STORY = {"trade_id": "T1", "buyer_id": "buyer-1", "seller_id": "seller-1", "complaint_id": "C1"}


def _defaults(event_type: type[Event]) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in msgspec.structs.fields(event_type)
        if f.default is not msgspec.NODEFAULT
    }


def _normalised(event_type: type[Event], at: datetime, fields: dict[str, Any]) -> Fact:
    defaults = _defaults(event_type)
    kept = {
        name: value
        for name, value in fields.items()
        if name not in _ENVELOPE
        and _STORY.get(name, msgspec.NODEFAULT) != value
        and defaults.get(name, msgspec.NODEFAULT) != value
    }
    return topic_of(event_type).removeprefix("trustledger."), at, kept


def fact(event_type: type[Event], at: datetime, **fields: Any) -> Fact:
    """The fact a test expects."""
    return _normalised(event_type, at, fields)


def as_fact(event: Event) -> Fact:
    """The fact the ledger recorded."""
    return _normalised(type(event), event.occurred_at, msgspec.structs.asdict(event))


def at_positions(market: Market, positions: Sequence[int]) -> list[Fact]:
    """The facts at these log positions, in log order."""
    if not positions:
        return []
    wanted = set(positions)
    start = min(wanted) - 1
    notifications = market.app.read_log(start, max(wanted) - start)
    return [as_fact(market.app.decode(n)) for n in notifications if n.id in wanted]


def written(market: Market, result: Appended | DeadlineRun) -> list[Fact]:
    """The facts a command or a deadline run wrote."""
    return at_positions(market, result.positions)


def trade_facts(market: Market, trade_id: str = "T1") -> list[Fact]:
    """Every fact of one trade, in log order."""
    return [
        as_fact(e) for e in market.events() if isinstance(e, TradeEvent) and e.trade_id == trade_id
    ]


def last_position(market: Market) -> int:
    notifications = list(market.app.iter_log())
    return notifications[-1].id if notifications else 0


def facts_after(market: Market, position: int) -> list[Fact]:
    return [as_fact(market.app.decode(n)) for n in market.app.iter_log(position)]


def rating_fact(
    at: datetime,
    rater: str,
    score: str,
    *,
    succeeded_at: datetime = CONFIRMED,
    **fields: Any,
) -> Fact:
    """A RatingGiven on the story's trade T1, with the trade context it carries."""
    return fact(
        RatingGiven,
        at,
        rater=rater,
        score=score,
        item_id="item-1",
        amount_minor=PRICE,
        currency="CNY",
        order_created_at=CREATED,
        succeeded_at=succeeded_at,
        **fields,
    )


# --- Small story steps that Market does not have ---------------------------------------


def agree(m: Market, at: datetime, refund_id: str = "R1", trade_id: str = "T1") -> Appended:
    return m.run(
        m.app.agree_refund, c.AgreeRefund(trade_id=trade_id, refund_id=refund_id, occurred_at=at)
    )


def reject(m: Market, at: datetime, refund_id: str = "R1") -> Appended:
    return m.run(
        m.app.reject_refund, c.RejectRefund(trade_id="T1", refund_id=refund_id, occurred_at=at)
    )


def cancel(m: Market, at: datetime, refund_id: str = "R1") -> Appended:
    return m.run(
        m.app.cancel_refund, c.CancelRefund(trade_id="T1", refund_id=refund_id, occurred_at=at)
    )


def ship_return(m: Market, at: datetime, refund_id: str = "R1") -> Appended:
    return m.run(
        m.app.ship_return, c.ShipReturn(trade_id="T1", refund_id=refund_id, occurred_at=at)
    )


def confirm_return(m: Market, at: datetime, refund_id: str = "R1") -> Appended:
    return m.run(
        m.app.confirm_return_receipt,
        c.ConfirmReturnReceipt(trade_id="T1", refund_id=refund_id, occurred_at=at),
    )


def escalate(m: Market, at: datetime, refund_id: str = "R1") -> Appended:
    return m.run(
        m.app.escalate_dispute,
        c.EscalateDispute(trade_id="T1", refund_id=refund_id, occurred_at=at),
    )


def rule(m: Market, outcome: str, at: datetime) -> Appended:
    return m.run(
        m.app.rule_dispute,
        c.RuleDispute(trade_id="T1", outcome=outcome, occurred_at=at),  # type: ignore[arg-type]
    )


def extend(m: Market, days: int, at: datetime) -> Appended:
    return m.run(
        m.app.extend_confirm_timer, c.ExtendConfirmTimer(trade_id="T1", days=days, occurred_at=at)
    )


def close(m: Market, reason: str, at: datetime) -> Appended:
    return m.run(
        m.app.close_trade,
        c.CloseTrade(trade_id="T1", reason=reason, occurred_at=at),  # type: ignore[arg-type]
    )


def revise(m: Market, rater: str, at: datetime) -> Appended:
    return m.run(
        m.app.revise_rating,
        c.ReviseRating(trade_id="T1", rater=rater, occurred_at=at),  # type: ignore[arg-type]
    )


def withdraw(m: Market, rater: str, at: datetime) -> Appended:
    return m.run(
        m.app.withdraw_rating,
        c.WithdrawRating(trade_id="T1", rater=rater, occurred_at=at),  # type: ignore[arg-type]
    )


def explain(m: Market, rater: str, text: str, at: datetime, author_id: str) -> Appended:
    return m.run(
        m.app.explain_rating,
        c.ExplainRating(
            trade_id="T1",
            rater=rater,  # type: ignore[arg-type]
            text=text,
            author_id=author_id,
            occurred_at=at,
        ),
    )


def file_complaint(
    m: Market,
    type_: str,
    severity: str,
    at: datetime = T0 + 2 * DAY,
    evidence: str = "",
) -> Appended:
    return m.run(
        m.app.file_complaint,
        c.FileComplaint(
            complaint_id="C1",
            trade_id="T1",
            type=type_,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            evidence=evidence,
            filed_by="buyer-1",
            occurred_at=at,
        ),
    )


def compensate(m: Market, kind: str, at: datetime, amount_minor: int | None = None) -> Appended:
    return m.run(
        m.app.pay_compensation,
        c.PayCompensation(
            complaint_id="C1",
            kind=kind,  # type: ignore[arg-type]
            amount_minor=amount_minor,
            occurred_at=at,
        ),
    )


def rule_complaint(m: Market, outcome: str, at: datetime = T0 + 5 * DAY) -> Appended:
    return m.run(
        m.app.rule_complaint,
        c.RuleComplaint(complaint_id="C1", outcome=outcome, occurred_at=at),  # type: ignore[arg-type]
    )


# --- Auto-confirm timer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goods_kind", "shipping", "days"),
    [
        ("top_up", "none", 0),
        ("top_up", "express", 0),
        ("auto_delivery", "none", 1),
        ("auto_delivery", "surface_mail", 1),
        ("virtual", "none", 3),
        ("virtual", "overseas", 3),
        ("physical", "express", 10),
        ("physical", "none", 10),
        ("physical", "overseas", 20),
        ("physical", "surface_mail", 30),
    ],
)
def test_auto_confirm_timer_runs_from_shipping_by_goods_kind_then_shipping_method(
    market: Market, goods_kind: str, shipping: str, days: int
) -> None:
    m = market
    m.trade(goods_kind=goods_kind, shipping=shipping)
    m.pay()
    m.ship()
    due = SHIPPED + days * DAY

    assert m.app.run_deadlines(due - US).positions == ()
    m.app.run_deadlines(due)

    assert trade_facts(m)[2:] == [
        fact(TradeShipped, SHIPPED, confirm_due_at=due),
        fact(ReceiptConfirmed, due, by="auto", rating_window_closes_at=due + 15 * DAY),
        fact(EscrowReleased, due, amount_minor=PRICE, currency="CNY"),
    ]


def test_creation_and_payment_record_the_order_and_the_escrowed_amount(
    market: Market,
) -> None:
    m = market
    created = m.trade(amount_minor=12_345, goods_kind="virtual", shipping="none")
    paid = m.pay()

    assert written(m, created) == [
        fact(
            TradeCreated,
            CREATED,
            item_id="item-1",
            amount_minor=12_345,
            currency="CNY",
            goods_kind="virtual",
            shipping="none",
        )
    ]
    assert written(m, paid) == [
        fact(PaymentEscrowed, PAID, amount_minor=12_345, currency="CNY"),
    ]


def test_timer_days_are_24_hours_in_utc_even_across_a_daylight_saving_change(
    market: Market,
) -> None:
    m = market
    los_angeles = ZoneInfo("America/Los_Angeles")  # clocks go forward on 2026-03-08
    m.trade(at=datetime(2026, 3, 7, 9, tzinfo=los_angeles))
    m.pay(at=datetime(2026, 3, 7, 10, tzinfo=los_angeles))
    shipped = m.ship(at=datetime(2026, 3, 7, 11, tzinfo=los_angeles))

    ship_utc = datetime(2026, 3, 7, 19, tzinfo=UTC)
    assert written(m, shipped) == [fact(TradeShipped, ship_utc, confirm_due_at=ship_utc + 10 * DAY)]
    assert all(e.occurred_at.utcoffset() == timedelta(0) for e in m.events())


def test_seller_extensions_add_their_days_to_the_due_time(market: Market) -> None:
    market.shipped_trade()
    # 1 and 10 days are the bounds; the second comes at the timer's last instant.
    extend(market, 1, SHIPPED + DAY)
    extend(market, 10, SHIPPED + 11 * DAY - US)
    due = SHIPPED + 21 * DAY

    assert market.app.run_deadlines(due - US).positions == ()
    market.app.run_deadlines(due)

    assert trade_facts(market)[3:] == [
        fact(ConfirmTimerExtended, SHIPPED + DAY, days=1, confirm_due_at=SHIPPED + 11 * DAY),
        fact(ConfirmTimerExtended, SHIPPED + 11 * DAY - US, days=10, confirm_due_at=due),
        fact(ReceiptConfirmed, due, by="auto", rating_window_closes_at=due + 15 * DAY),
        fact(EscrowReleased, due, amount_minor=PRICE, currency="CNY"),
    ]


# Each story opens a refund on a trade shipped at S by express (timer due
# S + 10 d) and closes it some way; the timer must then run for exactly the
# time it had left when the request opened.


def _cancelled(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 4 * DAY)  # 6 days left
    cancel(m, S + 6 * DAY)


def _agreed_by_seller_partially(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 4 * DAY)
    agree(m, S + 5 * DAY)


def _agreed_by_silence_partially(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 4 * DAY)  # the seller stays silent 5 days


def _return_not_shipped(m: Market) -> None:
    m.refund(amount_minor=3_000, with_return=True, at=S + 4 * DAY)
    agree(m, S + 5 * DAY)  # the buyer never ships the return: closes at S + 12 d


def _return_confirmed(m: Market) -> None:
    m.refund(amount_minor=3_000, with_return=True, at=S + 4 * DAY)
    agree(m, S + 5 * DAY)
    ship_return(m, S + 6 * DAY)
    confirm_return(m, S + 8 * DAY)


def _rejected_not_escalated(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 4 * DAY)
    reject(m, S + 5 * DAY)  # closes at S + 12 d


def _dispute_not_seller_fault(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 4 * DAY)
    reject(m, S + 5 * DAY)
    escalate(m, S + 6 * DAY)
    rule(m, "not_seller_fault", S + 40 * DAY)


def _requested_at_the_timers_last_instant(m: Market) -> None:
    m.refund(amount_minor=3_000, at=S + 10 * DAY - US)  # 1 microsecond left
    cancel(m, S + 14 * DAY)


def _extended_then_cancelled(m: Market) -> None:
    extend(m, 5, S + DAY)  # due S + 15 d
    m.refund(amount_minor=3_000, at=S + 4 * DAY)  # 11 days left
    cancel(m, S + 6 * DAY)


@pytest.mark.parametrize(
    ("story", "due", "released_minor"),
    [
        pytest.param(_cancelled, S + 12 * DAY, PRICE, id="cancelled"),
        pytest.param(_agreed_by_seller_partially, S + 11 * DAY, 7_000, id="paid-agreed"),
        pytest.param(_agreed_by_silence_partially, S + 15 * DAY, 7_000, id="paid-silence"),
        pytest.param(_return_not_shipped, S + 18 * DAY, PRICE, id="return-not-shipped"),
        pytest.param(_return_confirmed, S + 14 * DAY, 7_000, id="return-confirmed"),
        pytest.param(_rejected_not_escalated, S + 18 * DAY, PRICE, id="rejected-expired"),
        pytest.param(_dispute_not_seller_fault, S + 46 * DAY, PRICE, id="dispute-lost"),
        pytest.param(_extended_then_cancelled, S + 17 * DAY, PRICE, id="extended-cancelled"),
        pytest.param(
            _requested_at_the_timers_last_instant, S + 14 * DAY + US, PRICE, id="last-instant"
        ),
    ],
)
def test_confirm_timer_pauses_while_a_refund_is_open_and_resumes_with_the_time_left(
    market: Market,
    story: Callable[[Market], None],
    due: datetime,
    released_minor: int,
) -> None:
    m = market
    m.shipped_trade()
    story(m)

    m.app.run_deadlines(due - US)
    trade = m.app.trade("T1")
    assert trade is not None
    assert trade.succeeded_at is None
    run = m.app.run_deadlines(due)

    assert written(m, run) == [
        fact(ReceiptConfirmed, due, by="auto", rating_window_closes_at=due + 15 * DAY),
        fact(EscrowReleased, due, amount_minor=released_minor, currency="CNY"),
    ]


# --- Refunds -------------------------------------------------------------------------------


def test_seller_silence_before_shipping_agrees_to_a_refund_after_48_hours(market: Market) -> None:
    market.trade()
    market.pay()
    market.refund(at=PAID + HOUR, reason="changed_mind")
    respond_by = PAID + HOUR + 48 * HOUR

    assert market.app.run_deadlines(respond_by - US).positions == ()
    run = market.app.run_deadlines(respond_by)

    assert trade_facts(market)[2:] == [
        fact(
            RefundRequested,
            PAID + HOUR,
            refund_id="R1",
            amount_minor=PRICE,
            currency="CNY",
            reason="changed_mind",
            with_return=False,
            respond_by=respond_by,
        ),
        fact(RefundAgreed, respond_by, refund_id="R1", by="silence"),
        fact(RefundPaid, respond_by, refund_id="R1", amount_minor=PRICE, currency="CNY"),
        fact(TradeClosed, respond_by, reason="refunded_in_full"),
    ]
    assert len(run.positions) == 3


@pytest.mark.parametrize(
    ("goods_kind", "silence_days"),
    [("physical", 5), ("virtual", 3), ("auto_delivery", 3)],
)
def test_seller_silence_after_shipping_agrees_after_5_days_or_3_for_virtual_goods(
    market: Market, goods_kind: str, silence_days: int
) -> None:
    m = market
    m.shipped_trade(goods_kind=goods_kind)
    requested = SHIPPED + HOUR
    m.refund(amount_minor=4_000, at=requested, reason="damaged")
    respond_by = requested + silence_days * DAY

    assert m.app.run_deadlines(respond_by - US).positions == ()
    run = m.app.run_deadlines(respond_by)

    assert trade_facts(m)[3] == fact(
        RefundRequested,
        requested,
        refund_id="R1",
        amount_minor=4_000,
        currency="CNY",
        reason="damaged",
        with_return=False,
        respond_by=respond_by,
    )
    assert written(m, run) == [
        fact(RefundAgreed, respond_by, refund_id="R1", by="silence"),
        fact(RefundPaid, respond_by, refund_id="R1", amount_minor=4_000, currency="CNY"),
    ]


def test_a_refund_with_return_is_paid_when_the_seller_confirms_the_return(market: Market) -> None:
    market.shipped_trade()
    market.refund(with_return=True, reason="not_as_described", at=S + DAY)
    agree(market, S + 2 * DAY)
    ship_return(market, S + 9 * DAY - US)  # the last instant of the 7 days
    confirm_return(market, S + 10 * DAY)

    assert trade_facts(market)[4:] == [
        fact(RefundAgreed, S + 2 * DAY, refund_id="R1", by="seller", return_ship_by=S + 9 * DAY),
        fact(ReturnShipped, S + 9 * DAY - US, refund_id="R1", confirm_by=S + 19 * DAY - US),
        fact(ReturnReceived, S + 10 * DAY, refund_id="R1", by="seller"),
        fact(RefundPaid, S + 10 * DAY, refund_id="R1", amount_minor=PRICE, currency="CNY"),
        fact(TradeClosed, S + 10 * DAY, reason="refunded_in_full"),
    ]


def test_a_return_not_shipped_within_7_days_of_agreement_closes_the_request(
    market: Market,
) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=5_000, with_return=True, at=S + DAY)  # agreed by silence at S + 6 d
    return_ship_by = S + 6 * DAY + 7 * DAY

    # At exactly the 7th day the return is late: the request closes first.
    late = m.refused(
        m.app.ship_return, c.ShipReturn(trade_id="T1", refund_id="R1", occurred_at=return_ship_by)
    )
    assert late.code == "return_not_expected"
    m.app.run_deadlines(return_ship_by)

    assert trade_facts(m)[4:] == [
        fact(
            RefundAgreed, S + 6 * DAY, refund_id="R1", by="silence", return_ship_by=return_ship_by
        ),
        fact(RefundClosed, return_ship_by, refund_id="R1", reason="return_not_shipped"),
    ]


@pytest.mark.parametrize(
    ("shipping", "confirm_days"),
    [("express", 10), ("none", 10), ("overseas", 10), ("surface_mail", 30)],
)
def test_a_return_the_seller_does_not_confirm_in_time_counts_as_received(
    market: Market, shipping: str, confirm_days: int
) -> None:
    m = market
    m.shipped_trade(shipping=shipping)
    m.refund(amount_minor=2_500, with_return=True, at=S + DAY)
    agree(m, S + 2 * DAY)
    ship_return(m, S + 3 * DAY)
    confirm_by = S + 3 * DAY + confirm_days * DAY

    assert m.app.run_deadlines(confirm_by - US).positions == ()
    run = m.app.run_deadlines(confirm_by)

    assert trade_facts(m)[5] == fact(
        ReturnShipped, S + 3 * DAY, refund_id="R1", confirm_by=confirm_by
    )
    assert written(m, run) == [
        fact(ReturnReceived, confirm_by, refund_id="R1", by="silence"),
        fact(RefundPaid, confirm_by, refund_id="R1", amount_minor=2_500, currency="CNY"),
    ]


def test_a_partial_refund_leaves_the_rest_in_escrow_and_the_trade_can_still_succeed(
    market: Market,
) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=2_500, at=S + DAY)
    agree(m, S + 2 * DAY)
    m.confirm(at=S + 3 * DAY)

    assert trade_facts(m)[4:] == [
        fact(RefundAgreed, S + 2 * DAY, refund_id="R1", by="seller"),
        fact(RefundPaid, S + 2 * DAY, refund_id="R1", amount_minor=2_500, currency="CNY"),
        fact(ReceiptConfirmed, S + 3 * DAY, by="buyer", rating_window_closes_at=S + 18 * DAY),
        fact(EscrowReleased, S + 3 * DAY, amount_minor=7_500, currency="CNY"),
    ]


def test_partial_refunds_that_add_up_to_the_price_close_the_trade_refunded_in_full(
    market: Market,
) -> None:
    m = market
    m.trade()
    m.pay()
    m.refund("T1", "R1", amount_minor=4_000, at=T0 + 3 * HOUR)
    agree(m, T0 + 4 * HOUR, "R1")
    m.refund("T1", "R2", amount_minor=6_000, at=T0 + 5 * HOUR)
    agree(m, T0 + 6 * HOUR, "R2")

    assert trade_facts(m)[-5:] == [
        fact(RefundPaid, T0 + 4 * HOUR, refund_id="R1", amount_minor=4_000, currency="CNY"),
        fact(
            RefundRequested,
            T0 + 5 * HOUR,
            refund_id="R2",
            amount_minor=6_000,
            currency="CNY",
            reason="not_received",
            with_return=False,
            respond_by=T0 + 53 * HOUR,
        ),
        fact(RefundAgreed, T0 + 6 * HOUR, refund_id="R2", by="seller"),
        fact(RefundPaid, T0 + 6 * HOUR, refund_id="R2", amount_minor=6_000, currency="CNY"),
        fact(TradeClosed, T0 + 6 * HOUR, reason="refunded_in_full"),
    ]


def test_a_rejected_refund_stays_open_7_days_then_closes(market: Market) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=5_000, at=S + DAY)
    reject(m, S + 2 * DAY)
    escalate_by = S + 9 * DAY

    assert m.app.run_deadlines(escalate_by - US).positions == ()
    run = m.app.run_deadlines(escalate_by)

    assert trade_facts(m)[4] == fact(
        RefundRejected, S + 2 * DAY, refund_id="R1", escalate_by=escalate_by
    )
    assert written(m, run) == [
        fact(RefundClosed, escalate_by, refund_id="R1", reason="rejected_not_escalated"),
    ]


def _requested(m: Market) -> None:
    m.refund(amount_minor=5_000, at=S + DAY)


def _rejected(m: Market) -> None:
    _requested(m)
    reject(m, S + 2 * DAY)


def _awaiting_return(m: Market) -> None:
    m.refund(amount_minor=5_000, with_return=True, at=S + DAY)
    agree(m, S + 2 * DAY)


@pytest.mark.parametrize(
    "story",
    [
        pytest.param(_requested, id="requested"),
        pytest.param(_rejected, id="rejected"),
        pytest.param(_awaiting_return, id="awaiting-return"),
    ],
)
def test_the_buyer_cancels_a_refund_and_may_then_ask_again(
    market: Market, story: Callable[[Market], None]
) -> None:
    m = market
    m.shipped_trade()
    story(m)
    cancelled = cancel(m, S + 3 * DAY)
    again = m.refund("T1", "R2", amount_minor=1_000, at=S + 4 * DAY)

    assert written(m, cancelled) == [fact(RefundCancelled, S + 3 * DAY, refund_id="R1")]
    assert written(m, again) == [
        fact(
            RefundRequested,
            S + 4 * DAY,
            refund_id="R2",
            amount_minor=1_000,
            currency="CNY",
            reason="not_received",
            with_return=False,
            respond_by=S + 9 * DAY,
        )
    ]


# --- Disputes ------------------------------------------------------------------------------


def test_a_dispute_ruled_seller_at_fault_agrees_and_pays_the_refund(market: Market) -> None:
    market.shipped_trade()
    market.refund(at=S + DAY)
    reject(market, S + 2 * DAY)
    escalated = escalate(market, S + 9 * DAY - US)  # the last instant of the 7 days
    # A dispute has no deadline: it waits for its ruling.
    assert market.app.run_deadlines(S + 30 * DAY).positions == ()
    ruled = rule(market, "seller_at_fault", S + 30 * DAY)

    assert written(market, escalated) == [fact(DisputeEscalated, S + 9 * DAY - US, refund_id="R1")]
    assert written(market, ruled) == [
        fact(DisputeRuled, S + 30 * DAY, refund_id="R1", outcome="seller_at_fault"),
        fact(RefundAgreed, S + 30 * DAY, refund_id="R1", by="ruling"),
        fact(RefundPaid, S + 30 * DAY, refund_id="R1", amount_minor=PRICE, currency="CNY"),
        fact(TradeClosed, S + 30 * DAY, reason="refunded_in_full"),
    ]


def test_a_dispute_ruled_seller_at_fault_on_a_return_starts_the_return_flow(
    market: Market,
) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=5_000, with_return=True, at=S + DAY)
    reject(m, S + 2 * DAY)
    escalate(m, S + 3 * DAY)
    ruled = rule(m, "seller_at_fault", S + 20 * DAY)
    ship_return(m, S + 21 * DAY)
    received = confirm_return(m, S + 22 * DAY)

    assert written(m, ruled) == [
        fact(DisputeRuled, S + 20 * DAY, refund_id="R1", outcome="seller_at_fault"),
        fact(RefundAgreed, S + 20 * DAY, refund_id="R1", by="ruling", return_ship_by=S + 27 * DAY),
    ]
    assert written(m, received) == [
        fact(ReturnReceived, S + 22 * DAY, refund_id="R1", by="seller"),
        fact(RefundPaid, S + 22 * DAY, refund_id="R1", amount_minor=5_000, currency="CNY"),
    ]


def test_a_dispute_ruled_not_seller_fault_closes_the_refund(market: Market) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=5_000, at=S + DAY)
    reject(m, S + 2 * DAY)
    escalate(m, S + 3 * DAY)
    ruled = rule(m, "not_seller_fault", S + 20 * DAY)

    assert written(m, ruled) == [
        fact(DisputeRuled, S + 20 * DAY, refund_id="R1", outcome="not_seller_fault"),
        fact(RefundClosed, S + 20 * DAY, refund_id="R1", reason="dispute_not_seller_fault"),
    ]


# --- Closing a trade without success ---------------------------------------------------


@pytest.mark.parametrize("reason", ["unpaid", "buyer_cancelled", "seller_cancelled"])
def test_a_trade_closes_before_payment_with_nothing_in_escrow(market: Market, reason: str) -> None:
    m = market
    m.trade()
    closed = close(m, reason, T0 + DAY)

    assert written(m, closed) == [
        fact(TradeClosed, T0 + DAY, reason=reason, escrow_returned_minor=0),
    ]
    assert m.app.run_deadlines(FAR).positions == ()


@pytest.mark.parametrize("reason", ["seller_cancelled", "out_of_stock"])
def test_the_seller_closes_a_paid_unshipped_trade_and_the_escrow_goes_back(
    market: Market, reason: str
) -> None:
    m = market
    m.trade()
    m.pay()
    closed = close(m, reason, T0 + DAY)

    assert written(m, closed) == [
        fact(TradeClosed, T0 + DAY, reason=reason, escrow_returned_minor=PRICE),
    ]


def test_closing_after_a_partial_refund_returns_what_is_left_in_escrow(
    market: Market,
) -> None:
    m = market
    m.trade()
    m.pay()
    m.refund(amount_minor=4_000, at=T0 + 3 * HOUR)
    agree(m, T0 + 4 * HOUR)
    closed = close(m, "out_of_stock", T0 + DAY)

    assert written(m, closed) == [
        fact(TradeClosed, T0 + DAY, reason="out_of_stock", escrow_returned_minor=6_000),
    ]


# --- Ratings -----------------------------------------------------------------------------------


def test_both_sides_rate_and_no_default_is_added(market: Market) -> None:
    m = market
    m.succeeded_trade()
    dsr = Dsr(as_described=5, service=4, shipping_speed=5, logistics=3)
    by_buyer = m.rate(
        rater="buyer",
        score="positive",
        at=CONFIRMED,
        rater_id="buyer-1",
        dsr=dsr,
        comment="great",
    )
    by_seller = m.rate(rater="seller", score="positive", at=WINDOW_CLOSES - US)

    assert written(m, by_buyer) == [
        rating_fact(CONFIRMED, "buyer", "positive", dsr=dsr, comment="great")
    ]
    assert written(m, by_seller) == [rating_fact(WINDOW_CLOSES - US, "seller", "positive")]
    assert m.app.run_deadlines(FAR).positions == ()


@pytest.mark.parametrize("rater", ["buyer", "seller"])
def test_a_lone_positive_gets_a_default_positive_for_the_silent_side_at_window_close(
    market: Market, rater: str
) -> None:
    m = market
    m.succeeded_trade()
    dsr = (
        Dsr(as_described=4, service=4, shipping_speed=4, logistics=4) if rater == "buyer" else None
    )
    m.rate(rater=rater, score="positive", at=CONFIRMED + DAY, dsr=dsr)
    silent = "seller" if rater == "buyer" else "buyer"

    assert m.app.run_deadlines(WINDOW_CLOSES - US).positions == ()
    run = m.app.run_deadlines(WINDOW_CLOSES)

    # A default never carries shop scores.
    assert written(m, run) == [rating_fact(WINDOW_CLOSES, silent, "positive", default=True)]


@pytest.mark.parametrize(
    ("rater", "score"),
    [
        ("buyer", "neutral"),
        ("buyer", "negative"),
        ("seller", "neutral"),
        ("seller", "negative"),
        (None, None),
    ],
)
def test_no_default_when_the_lone_rating_is_not_positive_or_nobody_rated(
    market: Market, rater: str | None, score: str | None
) -> None:
    m = market
    m.succeeded_trade()
    if rater is not None and score is not None:
        m.rate(rater=rater, score=score, at=CONFIRMED + DAY)
    before = trade_facts(m)

    assert m.app.run_deadlines(FAR).positions == ()
    assert trade_facts(m) == before


def test_a_negative_revised_to_positive_within_the_window_then_gets_a_default(
    market: Market,
) -> None:
    m = market
    m.succeeded_trade()
    m.rate(rater="buyer", score="negative", at=CONFIRMED + DAY)
    revised = revise(m, "buyer", CONFIRMED + 2 * DAY)
    run = m.app.run_deadlines(FAR)

    assert written(m, revised) == [
        fact(RatingRevised, CONFIRMED + 2 * DAY, rater="buyer", score="positive")
    ]
    assert written(m, run) == [rating_fact(WINDOW_CLOSES, "seller", "positive", default=True)]


def test_a_revision_within_30_days_may_come_after_the_window_and_brings_no_default(
    market: Market,
) -> None:
    m = market
    m.succeeded_trade()
    given = WINDOW_CLOSES - DAY
    m.rate(rater="seller", score="neutral", at=given)
    revised = revise(m, "seller", given + 30 * DAY - US)  # the last instant of the 30 days

    # The rating was neutral when the window closed: no default, then or later.
    assert written(m, revised) == [
        fact(RatingRevised, given + 30 * DAY - US, rater="seller", score="positive")
    ]
    assert m.app.run_deadlines(FAR).positions == ()


def test_a_neutral_or_negative_may_be_withdrawn_within_30_days(market: Market) -> None:
    m = market
    m.succeeded_trade()
    given = CONFIRMED + DAY
    m.rate(rater="buyer", score="negative", at=given)
    withdrawn = withdraw(m, "buyer", given + 30 * DAY - US)

    assert written(m, withdrawn) == [fact(RatingWithdrawn, given + 30 * DAY - US, rater="buyer")]
    assert m.app.run_deadlines(FAR).positions == ()


def test_a_withdrawn_negative_within_the_window_brings_no_default(market: Market) -> None:
    m = market
    m.succeeded_trade()
    m.rate(rater="buyer", score="negative", at=CONFIRMED + DAY)
    withdraw(m, "buyer", CONFIRMED + 2 * DAY)

    assert m.app.run_deadlines(FAR).positions == ()


def test_the_buyer_gives_a_neutral_with_shop_scores(market: Market) -> None:
    m = market
    m.succeeded_trade()
    dsr = Dsr(as_described=3, service=2, shipping_speed=1, logistics=5)
    given = m.rate(rater="buyer", score="neutral", at=CONFIRMED + DAY, dsr=dsr, comment="so-so")

    assert written(m, given) == [
        rating_fact(CONFIRMED + DAY, "buyer", "neutral", dsr=dsr, comment="so-so")
    ]


def test_the_rated_party_explains_a_rating_within_30_days(market: Market) -> None:
    m = market
    m.succeeded_trade()
    m.rate(rater="buyer", score="negative", at=CONFIRMED + DAY)
    m.rate(rater="seller", score="neutral", at=CONFIRMED + 2 * DAY)
    by_seller = explain(m, "buyer", "courier strike", CONFIRMED + 31 * DAY - US, "seller-1")
    by_buyer = explain(m, "seller", "paid late, sorry", CONFIRMED + 32 * DAY - US, "buyer-1")

    assert written(m, by_seller) == [
        fact(RatingExplained, CONFIRMED + 31 * DAY - US, rater="buyer", text="courier strike")
    ]
    assert written(m, by_buyer) == [
        fact(RatingExplained, CONFIRMED + 32 * DAY - US, rater="seller", text="paid late, sorry")
    ]


def test_the_buyer_writes_one_follow_up_review_within_180_days_of_success(
    market: Market,
) -> None:
    m = market
    m.succeeded_trade()
    m.rate(rater="buyer", score="positive", at=CONFIRMED + DAY)
    followed = m.run(
        m.app.review_follow_up,
        c.ReviewFollowUp(
            trade_id="T1",
            rater="buyer",
            text="still works",
            author_id="buyer-1",
            occurred_at=CONFIRMED + 180 * DAY - US,
        ),
    )

    # The seller's default positive fell due first and is saved with the review.
    assert written(m, followed) == [
        rating_fact(WINDOW_CLOSES, "seller", "positive", default=True),
        fact(FollowUpReviewed, CONFIRMED + 180 * DAY - US, rater="buyer", text="still works"),
    ]


def test_a_shielded_lone_positive_still_gets_its_default(market: Market) -> None:
    """docs/rules.md is silent; the ledger keeps a shielded rating, so its default follows."""
    m = market
    m.succeeded_trade()
    m.rate(rater="buyer", score="positive", at=CONFIRMED + DAY, comment="abuse")
    shielded = m.run(
        m.app.shield_rating,
        c.ShieldRating(trade_id="T1", rater="buyer", reason="abusive", occurred_at=T0 + 3 * DAY),
    )
    run = m.app.run_deadlines(FAR)

    assert written(m, shielded) == [
        fact(RatingShielded, T0 + 3 * DAY, rater="buyer", reason="abusive")
    ]
    assert written(m, run) == [rating_fact(WINDOW_CLOSES, "seller", "positive", default=True)]


# --- Complaints ----------------------------------------------------------------------------


def test_a_complaint_is_filed_escalated_followed_up_compensated_and_ruled(market: Market) -> None:
    market.trade()
    market.pay()
    filed = file_complaint(market, "not_as_described", "moderate", T0 + DAY, evidence="photo-1")
    escalated = market.run(
        market.app.escalate_complaint,
        c.EscalateComplaint(complaint_id="C1", occurred_at=T0 + 2 * DAY),
    )
    followed = market.run(
        market.app.record_complaint_follow_up,
        c.RecordComplaintFollowUp(
            complaint_id="C1", text="seller called", occurred_at=T0 + 3 * DAY
        ),
    )
    apology = compensate(market, "apology", T0 + 4 * DAY)
    voucher = compensate(market, "voucher", T0 + 4 * DAY, amount_minor=2_000)
    ruled = rule_complaint(market, "upheld", T0 + 5 * DAY)

    assert written(market, filed) == [
        fact(
            ComplaintFiled,
            T0 + DAY,
            type="not_as_described",
            severity="moderate",
            amount_minor=PRICE,
            currency="CNY",
            evidence="photo-1",
        ),
        fact(ComplaintSlotTaken, T0 + DAY),
    ]
    assert written(market, escalated) == [fact(ComplaintEscalated, T0 + 2 * DAY)]
    assert written(market, followed) == [
        fact(ComplaintFollowUpRecorded, T0 + 3 * DAY, text="seller called")
    ]
    assert written(market, apology) == [fact(CompensationPaid, T0 + 4 * DAY, kind="apology")]
    assert written(market, voucher) == [
        fact(CompensationPaid, T0 + 4 * DAY, kind="voucher", amount_minor=2_000, currency="CNY")
    ]
    assert written(market, ruled) == [
        fact(
            ComplaintRuled,
            T0 + 5 * DAY,
            outcome="upheld",
            complaint_type="not_as_described",
            severity="moderate",
            points=6,
            category="general",
        )
    ]


@pytest.mark.parametrize(
    ("type_", "severity", "outcome", "ruled"),
    [
        ("late_shipment", "minor", "upheld", (3, "general")),
        ("late_shipment", "severe", "upheld", (3, "general")),
        ("not_as_described", "minor", "upheld", (3, "general")),
        ("not_as_described", "moderate", "upheld", (6, "general")),
        ("not_as_described", "severe", "upheld", (12, "general")),
        ("counterfeit", "minor", "upheld", (12, "serious")),
        ("counterfeit", "severe", "upheld", (12, "serious")),
        ("service_attitude", "severe", "upheld", (0, "general")),
        ("other", "severe", "upheld", (0, "general")),
        ("late_shipment", "severe", "dismissed", (0, "general")),
        ("not_as_described", "severe", "dismissed", (0, "general")),
        # docs/rules.md is silent: a dismissed ruling still names its type's category.
        ("counterfeit", "severe", "dismissed", (0, "serious")),
    ],
)
def test_an_upheld_complaint_costs_the_points_of_its_type_and_severity(
    market: Market,
    type_: str,
    severity: str,
    outcome: str,
    ruled: tuple[int, str],
) -> None:
    points, category = ruled
    m = market
    m.trade()
    file_complaint(m, type_, severity)
    result = rule_complaint(m, outcome)

    assert written(m, result) == [
        fact(
            ComplaintRuled,
            T0 + 5 * DAY,
            outcome=outcome,
            complaint_type=type_,
            severity=severity,
            points=points,
            category=category,
        )
    ]


@pytest.mark.parametrize(
    ("price_minor", "cash_minor", "points"),
    [
        # 5% of 50.00 is 2.50, below the 5.00 minimum.
        pytest.param(5_000, 499, 3, id="min-clamp-short"),
        pytest.param(5_000, 500, 0, id="min-clamp-met"),
        # 5% of 200.00 is exactly 10.00.
        pytest.param(20_000, 999, 3, id="share-short"),
        pytest.param(20_000, 1_000, 0, id="share-met"),
        # 5% of 1,000.00 is 50.00, above the 30.00 maximum.
        pytest.param(100_000, 2_999, 3, id="max-clamp-short"),
        pytest.param(100_000, 3_000, 0, id="max-clamp-met"),
        pytest.param(10_000_000, 3_000, 0, id="max-clamp-large-price"),
    ],
)
def test_cash_compensation_of_5_percent_clamped_to_5_to_30_before_the_ruling_waives_late_shipment(
    market: Market, price_minor: int, cash_minor: int, points: int
) -> None:
    m = market
    m.trade(amount_minor=price_minor)
    m.pay()
    file_complaint(m, "late_shipment", "minor")
    compensate(m, "cash", T0 + 3 * DAY, amount_minor=cash_minor)
    ruled = rule_complaint(m, "upheld")

    assert written(m, ruled) == [
        fact(
            ComplaintRuled,
            T0 + 5 * DAY,
            outcome="upheld",
            complaint_type="late_shipment",
            severity="minor",
            points=points,
            category="general",
        )
    ]


@pytest.mark.parametrize(("cash_minor", "points"), [(1_000, 3), (1_001, 0)])
def test_the_cash_share_is_rounded_up_to_the_minor_unit(
    market: Market, cash_minor: int, points: int
) -> None:
    """docs/rules.md says "at least 5%": 5% of 200.01 is 10.0005, so 10.00 falls short."""
    m = market
    m.trade(amount_minor=20_001)
    file_complaint(m, "late_shipment", "minor")
    compensate(m, "cash", T0 + 3 * DAY, amount_minor=cash_minor)
    ruled = rule_complaint(m, "upheld")

    assert written(m, ruled)[0][2]["points"] == points


def test_cash_compensations_add_up_towards_the_waiver(market: Market) -> None:
    """docs/rules.md is silent; the ledger sums every cash payment made before the ruling."""
    m = market
    m.trade(amount_minor=20_000)
    file_complaint(m, "late_shipment", "minor")
    compensate(m, "cash", T0 + 3 * DAY, amount_minor=600)
    compensate(m, "cash", T0 + 4 * DAY, amount_minor=400)
    ruled = rule_complaint(m, "upheld")

    assert written(m, ruled)[0][2]["points"] == 0


@pytest.mark.parametrize("kind", ["refund", "voucher"])
def test_only_cash_compensation_waives_late_shipment_points(market: Market, kind: str) -> None:
    m = market
    m.trade(amount_minor=20_000)
    file_complaint(m, "late_shipment", "minor")
    compensate(m, kind, T0 + 3 * DAY, amount_minor=20_000)
    ruled = rule_complaint(m, "upheld")

    assert written(m, ruled)[0][2]["points"] == 3


def test_cash_compensation_waives_only_late_shipment(market: Market) -> None:
    m = market
    m.trade(amount_minor=20_000)
    file_complaint(m, "not_as_described", "minor")
    compensate(m, "cash", T0 + 3 * DAY, amount_minor=20_000)
    ruled = rule_complaint(m, "upheld")

    assert written(m, ruled)[0][2]["points"] == 3


# --- Enforcement ---------------------------------------------------------------------------


def test_a_violation_is_recorded(market: Market) -> None:
    m = market
    m.members("seller-1")
    recorded = m.run(
        m.app.record_violation,
        c.RecordViolation(
            seller_id="seller-1",
            violation_id="V1",
            category="serious",
            points=12,
            reason="prohibited item",
            reference="listing-9",
            occurred_at=T0 + DAY,
        ),
    )

    assert written(m, recorded) == [
        fact(
            ViolationRecorded,
            T0 + DAY,
            violation_id="V1",
            category="serious",
            points=12,
            reason="prohibited item",
            reference="listing-9",
        )
    ]


def test_a_fake_trade_confirmation_names_the_items_and_demotes_them_30_days(
    market: Market,
) -> None:
    market.trade("F1", buyer="buyer-1", item="item-b")
    market.trade("F2", buyer="buyer-2", item="item-a")
    market.trade("F3", buyer="buyer-3", item="item-b")
    confirmed = market.run(
        market.app.confirm_fake_trades,
        c.ConfirmFakeTrades(
            seller_id="seller-1",
            case_id="FK1",
            trade_ids=("F3", "F1", "F2"),
            occurred_at=T0 + 5 * DAY,
        ),
    )

    assert written(market, confirmed) == [
        fact(
            FakeTradesConfirmed,
            T0 + 5 * DAY,
            case_id="FK1",
            trade_ids=("F3", "F1", "F2"),
            item_ids=("item-a", "item-b"),
            offence_number=1,
            points=0,
            category="general",
            demoted_until=T0 + 35 * DAY,
        )
    ]


@pytest.mark.parametrize(
    ("case_sizes", "expected"),
    [
        pytest.param(
            (95, 96, 95, 1, 96),
            (
                (1, 0, "general"),
                (2, 12, "general"),
                (3, 12, "general"),
                (4, 48, "serious"),
                (5, 48, "serious"),
            ),
            id="small-large-small-small-large",
        ),
        pytest.param(
            (96, 1, 96),
            ((1, 12, "general"), (2, 0, "general"), (3, 48, "serious")),
            id="large-small-large",
        ),
    ],
)
def test_fake_trade_points_follow_the_offence_number_and_the_96_trade_threshold(
    market: Market,
    case_sizes: tuple[int, ...],
    expected: tuple[tuple[int, int, str], ...],
) -> None:
    m = market
    m.members("seller-1", "buyer-1")
    confirmations = []
    for case, size in enumerate(case_sizes, start=1):
        trade_ids = tuple(f"C{case}-T{n}" for n in range(size))
        for n, trade_id in enumerate(trade_ids):
            m.trade(trade_id, item=f"C{case}-item-{n % 2}", register=False)
        at = T0 + case * DAY
        result = m.run(
            m.app.confirm_fake_trades,
            c.ConfirmFakeTrades(
                seller_id="seller-1", case_id=f"FK{case}", trade_ids=trade_ids, occurred_at=at
            ),
        )
        confirmations.extend(written(m, result))

    assert confirmations == [
        fact(
            FakeTradesConfirmed,
            T0 + case * DAY,
            case_id=f"FK{case}",
            trade_ids=tuple(f"C{case}-T{n}" for n in range(size)),
            item_ids=tuple(sorted({f"C{case}-item-{n % 2}" for n in range(size)})),
            offence_number=offence,
            points=points,
            category=category,
            demoted_until=T0 + case * DAY + 30 * DAY,
        )
        for case, (size, (offence, points, category)) in enumerate(
            zip(case_sizes, expected, strict=True), start=1
        )
    ]


def test_search_cheating_is_recorded(market: Market) -> None:
    m = market
    m.members("seller-1")
    recorded = m.run(
        m.app.record_search_cheating,
        c.RecordSearchCheating(
            seller_id="seller-1",
            case_id="SC1",
            item_ids=("item-2", "item-1"),
            kind="keyword_stuffing",
            occurred_at=T0 + DAY,
        ),
    )

    assert written(m, recorded) == [
        fact(
            SearchCheatingRecorded,
            T0 + DAY,
            case_id="SC1",
            item_ids=("item-2", "item-1"),
            kind="keyword_stuffing",
        )
    ]


# --- Members -------------------------------------------------------------------------------


def test_registration_and_identity_verification_are_recorded(market: Market) -> None:
    m = market
    registered = m.run(m.app.register_member, c.RegisterMember(member_id="buyer-1", occurred_at=T0))
    verified = m.run(
        m.app.verify_identity, c.VerifyIdentity(member_id="buyer-1", occurred_at=T0 + DAY)
    )

    assert written(m, registered) == [fact(MemberRegistered, T0, member_id="buyer-1")]
    assert written(m, verified) == [fact(IdentityVerified, T0 + DAY, member_id="buyer-1")]
    member = m.app.member("buyer-1")
    assert member is not None
    assert member.verified_at == T0 + DAY


# --- Deadlines ---------------------------------------------------------------------------------


def test_the_deadline_worker_settles_every_due_trade_in_one_run(market: Market) -> None:
    market.shipped_trade("T1")  # express: confirms at SHIPPED + 10 d
    market.shipped_trade("T2", goods_kind="virtual")  # confirms at SHIPPED + 3 d
    market.trade("T3")
    market.pay("T3")
    market.refund("T3", "R3")  # full, before shipping: agreed by silence 48 h later
    market.succeeded_trade("T4")
    market.rate("T4", rater="buyer", score="positive")  # default at CONFIRMED + 15 d
    market.shipped_trade("T5", shipping="surface_mail")  # confirms at SHIPPED + 30 d
    now = T0 + 20 * DAY
    silence = T0 + 4 * HOUR + 48 * HOUR

    run = market.app.run_deadlines(now)

    assert run.trades_settled == 4
    # Trades are settled oldest deadline first.
    assert written(market, run) == [
        fact(RefundAgreed, silence, trade_id="T3", refund_id="R3", by="silence"),
        fact(
            RefundPaid,
            silence,
            trade_id="T3",
            refund_id="R3",
            amount_minor=PRICE,
            currency="CNY",
        ),
        fact(TradeClosed, silence, trade_id="T3", reason="refunded_in_full"),
        fact(
            ReceiptConfirmed,
            SHIPPED + 3 * DAY,
            trade_id="T2",
            by="auto",
            rating_window_closes_at=SHIPPED + 18 * DAY,
        ),
        fact(
            EscrowReleased,
            SHIPPED + 3 * DAY,
            trade_id="T2",
            amount_minor=PRICE,
            currency="CNY",
        ),
        fact(
            ReceiptConfirmed,
            SHIPPED + 10 * DAY,
            by="auto",
            rating_window_closes_at=SHIPPED + 25 * DAY,
        ),
        fact(EscrowReleased, SHIPPED + 10 * DAY, amount_minor=PRICE, currency="CNY"),
        fact(
            RatingGiven,
            WINDOW_CLOSES,
            trade_id="T4",
            rater="seller",
            score="positive",
            item_id="item-1",
            amount_minor=PRICE,
            currency="CNY",
            order_created_at=CREATED,
            succeeded_at=CONFIRMED,
            default=True,
        ),
    ]
    # T5 is not due yet, and nothing is left to settle at this time.
    assert len(trade_facts(market, "T5")) == 3  # created, paid, shipped
    again = market.app.run_deadlines(now)
    assert (again.trades_settled, again.positions) == (0, ())


def test_the_deadline_worker_settles_more_trades_than_one_batch(market: Market) -> None:
    m = market
    count = DEADLINE_BATCH_MAX + 10
    m.members("buyer-1", "seller-1")
    for n in range(count):
        trade_id = f"T{n}"
        m.trade(trade_id, register=False)
        m.pay(trade_id)
        m.ship(trade_id, at=SHIPPED + n * US)  # distinct due times, in trade order

    run = m.app.run_deadlines(SHIPPED + 10 * DAY + count * US)

    assert run.trades_settled == count
    facts = written(m, run)
    assert len(facts) == 2 * count
    assert facts[-2:] == [
        fact(
            ReceiptConfirmed,
            SHIPPED + 10 * DAY + (count - 1) * US,
            trade_id=f"T{count - 1}",
            by="auto",
            rating_window_closes_at=SHIPPED + 25 * DAY + (count - 1) * US,
        ),
        fact(
            EscrowReleased,
            SHIPPED + 10 * DAY + (count - 1) * US,
            trade_id=f"T{count - 1}",
            amount_minor=PRICE,
            currency="CNY",
        ),
    ]
    assert [f[1] for f in facts[::2]] == [SHIPPED + 10 * DAY + n * US for n in range(count)]


def test_a_command_first_settles_its_trades_due_deadlines_in_the_same_save(
    market: Market,
) -> None:
    market.shipped_trade()
    market.shipped_trade("T2")
    market.refund(amount_minor=4_000, at=S + DAY)  # agreed by silence at S + 6 d
    market.refund("T2", "R2", amount_minor=4_000, at=S + DAY)
    before = last_position(market)

    confirmed = market.confirm(at=S + 7 * DAY)

    assert written(market, confirmed) == [
        fact(RefundAgreed, S + 6 * DAY, refund_id="R1", by="silence"),
        fact(RefundPaid, S + 6 * DAY, refund_id="R1", amount_minor=4_000, currency="CNY"),
        fact(ReceiptConfirmed, S + 7 * DAY, by="buyer", rating_window_closes_at=S + 22 * DAY),
        fact(EscrowReleased, S + 7 * DAY, amount_minor=6_000, currency="CNY"),
    ]
    # The command wrote nothing else: the other trade's deadline waits for its worker.
    assert facts_after(market, before) == written(market, confirmed)
    run = market.app.run_deadlines(FAR)
    assert run.trades_settled == 1
    assert written(market, run) == [
        fact(RefundAgreed, S + 6 * DAY, trade_id="T2", refund_id="R2", by="silence"),
        fact(
            RefundPaid,
            S + 6 * DAY,
            trade_id="T2",
            refund_id="R2",
            amount_minor=4_000,
            currency="CNY",
        ),
        fact(
            ReceiptConfirmed,
            S + 15 * DAY,
            trade_id="T2",
            by="auto",
            rating_window_closes_at=S + 30 * DAY,
        ),
        fact(EscrowReleased, S + 15 * DAY, trade_id="T2", amount_minor=6_000, currency="CNY"),
    ]


def test_a_command_settles_a_chain_of_due_deadlines_in_order(market: Market) -> None:
    m = market
    m.shipped_trade()
    m.refund(amount_minor=3_000, with_return=True, at=S + DAY)  # 9 days of timer left
    # Silence agrees at S + 6 d; the return is never shipped, so the request
    # closes at S + 13 d; the timer resumes and confirms at S + 22 d.
    rated = m.rate(rater="seller", score="positive", at=S + 25 * DAY)

    assert written(m, rated) == [
        fact(RefundAgreed, S + 6 * DAY, refund_id="R1", by="silence", return_ship_by=S + 13 * DAY),
        fact(RefundClosed, S + 13 * DAY, refund_id="R1", reason="return_not_shipped"),
        fact(ReceiptConfirmed, S + 22 * DAY, by="auto", rating_window_closes_at=S + 37 * DAY),
        fact(EscrowReleased, S + 22 * DAY, amount_minor=PRICE, currency="CNY"),
        rating_fact(S + 25 * DAY, "seller", "positive", succeeded_at=S + 22 * DAY),
    ]


def test_a_default_rating_due_before_a_command_is_saved_with_it(market: Market) -> None:
    m = market
    m.succeeded_trade()
    m.rate(rater="seller", score="positive", at=CONFIRMED + DAY)
    explained = explain(m, "seller", "thanks", WINDOW_CLOSES + DAY, "buyer-1")

    assert written(m, explained) == [
        rating_fact(WINDOW_CLOSES, "buyer", "positive", default=True),
        fact(RatingExplained, WINDOW_CLOSES + DAY, rater="seller", text="thanks"),
    ]
