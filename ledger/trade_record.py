"""A trade read back: its state as the ledger holds it now and every fact
recorded about it, each with its log position.

This is what a platform service asks after a timeout ("did my shipment
land?") and what a reviewer opens first; the figures built from trades are
the projections' (``projections.queries``). It reads the trade's own events
once, and their positions in one more query.
"""

from __future__ import annotations

import msgspec

from ledger.commands import UtcTime
from ledger.complaint import Complaint
from ledger.events import ComplaintOutcome, Event, topic_of
from ledger.policy import ComplaintType, GoodsKind, Severity, ShippingMethod
from ledger.trade import Dispute, Rating, Refund, Trade


class RecordedFact(msgspec.Struct, frozen=True):
    """One fact about the trade: where it stands in the log, what and when."""

    position: int
    version: int
    topic: str
    occurred_at: UtcTime
    recorded_at: UtcTime
    # Whose request wrote it: a caller (the service an API key acts for) or
    # the ledger's deadline worker; null for facts written before callers were kept.
    recorded_by: str | None = None


class ComplaintRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The customer-service case on a trade (one a trade at most): where it
    stands and every fact about it, with positions."""

    complaint_id: str
    type: ComplaintType
    severity: Severity
    escalated: bool
    cash_paid_minor: int
    outcome: ComplaintOutcome | None  # null while the case is open
    facts: tuple[RecordedFact, ...]


class TradeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A trade as its facts leave it, and the facts (oldest first)."""

    trade_id: str
    buyer_id: str
    seller_id: str
    item_id: str
    amount_minor: int
    currency: str
    goods_kind: GoodsKind
    shipping: ShippingMethod
    created_at: UtcTime | None
    paid_at: UtcTime | None
    shipped_at: UtcTime | None
    succeeded_at: UtcTime | None
    closed_at: UtcTime | None
    confirm_due_at: UtcTime | None
    extensions: int
    escrow_left_minor: int
    refunded_minor: int
    refunds: tuple[Refund, ...]
    dispute: Dispute | None
    ratings: tuple[Rating, ...]
    rating_window_closes_at: UtcTime | None
    # The next deadline the ledger will settle on its own (automatic receipt,
    # a refund agreed by silence, a default rating...), if any.
    next_deadline_at: UtcTime | None
    facts: tuple[RecordedFact, ...]
    position: int  # the log position of its last fact
    complaint: ComplaintRecord | None = None  # the trade's complaint, if one was filed


def recorded_facts(events: tuple[Event, ...], positions: list[int]) -> tuple[RecordedFact, ...]:
    return tuple(
        RecordedFact(
            p, e.originator_version, topic_of(type(e)), e.occurred_at, e.recorded_at, e.recorded_by
        )
        for p, e in zip(positions, events, strict=True)
    )


def complaint_record(
    complaint: Complaint, events: tuple[Event, ...], positions: list[int]
) -> ComplaintRecord:
    return ComplaintRecord(
        complaint_id=complaint.complaint_id,
        type=complaint.type,
        severity=complaint.severity,
        escalated=complaint.escalated,
        cash_paid_minor=complaint.cash_paid_minor,
        outcome=complaint.outcome,
        facts=recorded_facts(events, positions),
    )


def trade_record(
    trade: Trade,
    events: tuple[Event, ...],
    positions: list[int],
    complaint: ComplaintRecord | None = None,
) -> TradeRecord:
    """The record of a replayed trade, from its events and their positions."""
    facts = recorded_facts(events, positions)
    case_positions = [fact.position for fact in complaint.facts] if complaint else []
    return TradeRecord(
        trade_id=trade.trade_id,
        buyer_id=trade.buyer_id,
        seller_id=trade.seller_id,
        item_id=trade.item_id,
        amount_minor=trade.amount_minor,
        currency=trade.currency,
        goods_kind=trade.goods_kind,
        shipping=trade.shipping,
        created_at=trade.created_at,
        paid_at=trade.paid_at,
        shipped_at=trade.shipped_at,
        succeeded_at=trade.succeeded_at,
        closed_at=trade.closed_at,
        confirm_due_at=trade.confirm_due_at,
        extensions=trade.extensions,
        escrow_left_minor=trade.escrow_left_minor,
        refunded_minor=trade.refunded_minor,
        refunds=tuple(trade.refunds.values()),
        dispute=trade.dispute,
        ratings=tuple(trade.ratings.values()),
        rating_window_closes_at=trade.rating_window_closes_at,
        next_deadline_at=trade.next_deadline(),
        facts=facts,
        position=max(positions + case_positions, default=0),
        complaint=complaint,
    )
