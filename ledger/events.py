"""Every fact of docs/rules.md §2 as a frozen msgspec Struct.

Rules for this module (they keep stored events readable forever):
- each event names its topic explicitly with ``tag=``; the topic is stored
  with the event and is never derived from a module path or class name;
- names are past tense; fields are only ever added, with defaults, and a
  field's type never changes; a changed meaning gets a new ``.v2`` topic;
- ``occurred_at`` is business time (UTC), ``recorded_at`` the ledger's clock;
- amounts are integer minor units with their currency code;
- every event carries the policy version in force when it was recorded.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from ledger.policy import (
    ComplaintType,
    GoodsKind,
    Severity,
    ShippingMethod,
    ViolationCategory,
)

Party = Literal["buyer", "seller"]
Score = Literal["positive", "neutral", "negative"]
CloseReason = Literal[
    "unpaid", "buyer_cancelled", "seller_cancelled", "out_of_stock", "refunded_in_full"
]
RefundReason = Literal["not_received", "not_as_described", "damaged", "changed_mind", "other"]
RefundClosedReason = Literal[
    "return_not_shipped", "rejected_not_escalated", "dispute_not_seller_fault"
]
DisputeOutcome = Literal["seller_at_fault", "not_seller_fault"]
ComplaintOutcome = Literal["upheld", "dismissed"]
CompensationKind = Literal["apology", "refund", "replacement", "voucher", "cash"]
SearchCheatingKind = Literal[
    "keyword_stuffing",
    "wrong_category",
    "duplicate_listing",
    "price_cheating",
    "postage_cheating",
    "fake_sales",
]
ConfirmedBy = Literal["buyer", "auto"]
AgreedBy = Literal["seller", "silence", "ruling"]
ReceivedBy = Literal["seller", "silence"]

DsrScore = Annotated[int, msgspec.Meta(ge=1, le=5)]


class Dsr(msgspec.Struct, frozen=True):
    """Shop scores (detailed seller ratings) from the buyer, 1-5 each.

    Unknown fields are ignored, not refused: a stored event whose scores gain
    a dimension later must still decode in older readers.
    """

    as_described: DsrScore
    service: DsrScore
    shipping_speed: DsrScore
    logistics: DsrScore


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="topic"):
    originator_id: UUID
    originator_version: int
    recorded_at: datetime
    occurred_at: datetime
    policy_version: str
    # Whose request wrote the fact: the caller an API key acts for, or the
    # ledger's deadline worker. None: written before the log named callers.
    recorded_by: str | None = None


TOPIC_PREFIX = "trustledger."


@functools.cache
def topic_of(event_type: type[Event]) -> str:
    """The event's explicit topic. msgspec would tag a subclass declared
    without ``tag=`` with its class name; such a topic is refused."""
    tag = event_type.__struct_config__.tag
    if not isinstance(tag, str) or not tag.startswith(TOPIC_PREFIX):
        raise TypeError(f"{event_type.__name__} has no explicit {TOPIC_PREFIX}... topic")
    return tag


# --- Members ---------------------------------------------------------------


class MemberEvent(Event, frozen=True, kw_only=True):
    member_id: str


class MemberRegistered(MemberEvent, frozen=True, tag="trustledger.member.registered.v1"):
    pass


class IdentityVerified(MemberEvent, frozen=True, tag="trustledger.member.identity_verified.v1"):
    pass


# --- Trades, escrow, refunds, disputes, ratings ------------------------------


class TradeEvent(Event, frozen=True, kw_only=True):
    """Trade facts carry both parties so each one reads on its own."""

    trade_id: str
    buyer_id: str
    seller_id: str


class TradeCreated(TradeEvent, frozen=True, tag="trustledger.trade.created.v1"):
    item_id: str
    amount_minor: int
    currency: str
    goods_kind: GoodsKind
    shipping: ShippingMethod


class PaymentEscrowed(TradeEvent, frozen=True, tag="trustledger.trade.payment_escrowed.v1"):
    amount_minor: int
    currency: str


class TradeShipped(TradeEvent, frozen=True, tag="trustledger.trade.shipped.v1"):
    confirm_due_at: datetime


class ConfirmTimerExtended(
    TradeEvent, frozen=True, tag="trustledger.trade.confirm_timer_extended.v1"
):
    days: int
    confirm_due_at: datetime


class ReceiptConfirmed(TradeEvent, frozen=True, tag="trustledger.trade.receipt_confirmed.v1"):
    """Success (交易成功): receipt confirmed by the buyer or automatically."""

    by: ConfirmedBy
    rating_window_closes_at: datetime


class EscrowReleased(TradeEvent, frozen=True, tag="trustledger.trade.escrow_released.v1"):
    amount_minor: int
    currency: str


class TradeClosed(TradeEvent, frozen=True, tag="trustledger.trade.closed.v1"):
    reason: CloseReason
    escrow_returned_minor: int = 0


class RefundEvent(TradeEvent, frozen=True, kw_only=True):
    refund_id: str


class RefundRequested(RefundEvent, frozen=True, tag="trustledger.refund.requested.v1"):
    amount_minor: int
    currency: str
    reason: RefundReason
    with_return: bool
    respond_by: datetime


class RefundAgreed(RefundEvent, frozen=True, tag="trustledger.refund.agreed.v1"):
    by: AgreedBy
    return_ship_by: datetime | None = None


class RefundRejected(RefundEvent, frozen=True, tag="trustledger.refund.rejected.v1"):
    escalate_by: datetime


class ReturnShipped(RefundEvent, frozen=True, tag="trustledger.refund.return_shipped.v1"):
    confirm_by: datetime


class ReturnReceived(RefundEvent, frozen=True, tag="trustledger.refund.return_received.v1"):
    by: ReceivedBy


class RefundPaid(RefundEvent, frozen=True, tag="trustledger.refund.paid.v1"):
    amount_minor: int
    currency: str


class RefundCancelled(RefundEvent, frozen=True, tag="trustledger.refund.cancelled.v1"):
    pass


class RefundClosed(RefundEvent, frozen=True, tag="trustledger.refund.closed.v1"):
    reason: RefundClosedReason


class DisputeEscalated(RefundEvent, frozen=True, tag="trustledger.dispute.escalated.v1"):
    pass


class DisputeRuled(RefundEvent, frozen=True, tag="trustledger.dispute.ruled.v1"):
    outcome: DisputeOutcome


class RatingEvent(TradeEvent, frozen=True, kw_only=True):
    rater: Party


class RatingGiven(RatingEvent, frozen=True, tag="trustledger.rating.given.v1"):
    """A rating, with the trade context the counting rules need (docs/rules.md §3)."""

    score: Score
    item_id: str
    amount_minor: int
    currency: str
    order_created_at: datetime
    succeeded_at: datetime
    dsr: Dsr | None = None
    comment: str = ""
    default: bool = False


class RatingRevised(RatingEvent, frozen=True, tag="trustledger.rating.revised.v1"):
    score: Score


class RatingWithdrawn(RatingEvent, frozen=True, tag="trustledger.rating.withdrawn.v1"):
    pass


class RatingExplained(RatingEvent, frozen=True, tag="trustledger.rating.explained.v1"):
    text: str


class FollowUpReviewed(RatingEvent, frozen=True, tag="trustledger.rating.follow_up_reviewed.v1"):
    text: str


class RatingShielded(RatingEvent, frozen=True, tag="trustledger.rating.shielded.v1"):
    reason: str


# --- Complaints --------------------------------------------------------------


class ComplaintEvent(Event, frozen=True, kw_only=True):
    complaint_id: str
    trade_id: str
    buyer_id: str
    seller_id: str


class ComplaintFiled(ComplaintEvent, frozen=True, tag="trustledger.complaint.filed.v1"):
    type: ComplaintType
    severity: Severity
    amount_minor: int
    currency: str
    evidence: str = ""


class ComplaintSlotTaken(ComplaintEvent, frozen=True, tag="trustledger.complaint.slot_taken.v1"):
    """The trade's one complaint case is this one (docs/rules.md §2: one per trade)."""


class ComplaintEscalated(ComplaintEvent, frozen=True, tag="trustledger.complaint.escalated.v1"):
    pass


class ComplaintFollowUpRecorded(
    ComplaintEvent, frozen=True, tag="trustledger.complaint.follow_up_recorded.v1"
):
    text: str


class CompensationPaid(
    ComplaintEvent, frozen=True, tag="trustledger.complaint.compensation_paid.v1"
):
    kind: CompensationKind
    amount_minor: int | None = None
    currency: str | None = None


class ComplaintRuled(ComplaintEvent, frozen=True, tag="trustledger.complaint.ruled.v1"):
    outcome: ComplaintOutcome
    complaint_type: ComplaintType
    severity: Severity
    points: int
    category: ViolationCategory


# --- Seller enforcement ------------------------------------------------------


class EnforcementEvent(Event, frozen=True, kw_only=True):
    seller_id: str


class ViolationRecorded(
    EnforcementEvent, frozen=True, tag="trustledger.enforcement.violation_recorded.v1"
):
    violation_id: str
    category: ViolationCategory
    points: int
    reason: str
    reference: str = ""


class FakeTradesConfirmed(
    EnforcementEvent,
    frozen=True,
    tag="trustledger.enforcement.fake_trades_confirmed.v1",
):
    case_id: str
    trade_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    offence_number: int
    points: int
    category: ViolationCategory
    demoted_until: datetime


class SearchCheatingRecorded(
    EnforcementEvent,
    frozen=True,
    tag="trustledger.enforcement.search_cheating_recorded.v1",
):
    case_id: str
    item_ids: tuple[str, ...]
    kind: SearchCheatingKind


EVENT_TYPES: tuple[type[Event], ...] = (
    MemberRegistered,
    IdentityVerified,
    TradeCreated,
    PaymentEscrowed,
    TradeShipped,
    ConfirmTimerExtended,
    ReceiptConfirmed,
    EscrowReleased,
    TradeClosed,
    RefundRequested,
    RefundAgreed,
    RefundRejected,
    ReturnShipped,
    ReturnReceived,
    RefundPaid,
    RefundCancelled,
    RefundClosed,
    DisputeEscalated,
    DisputeRuled,
    RatingGiven,
    RatingRevised,
    RatingWithdrawn,
    RatingExplained,
    FollowUpReviewed,
    RatingShielded,
    ComplaintFiled,
    ComplaintSlotTaken,
    ComplaintEscalated,
    ComplaintFollowUpRecorded,
    CompensationPaid,
    ComplaintRuled,
    ViolationRecorded,
    FakeTradesConfirmed,
    SearchCheatingRecorded,
)

AnyEvent = (
    MemberRegistered
    | IdentityVerified
    | TradeCreated
    | PaymentEscrowed
    | TradeShipped
    | ConfirmTimerExtended
    | ReceiptConfirmed
    | EscrowReleased
    | TradeClosed
    | RefundRequested
    | RefundAgreed
    | RefundRejected
    | ReturnShipped
    | ReturnReceived
    | RefundPaid
    | RefundCancelled
    | RefundClosed
    | DisputeEscalated
    | DisputeRuled
    | RatingGiven
    | RatingRevised
    | RatingWithdrawn
    | RatingExplained
    | FollowUpReviewed
    | RatingShielded
    | ComplaintFiled
    | ComplaintSlotTaken
    | ComplaintEscalated
    | ComplaintFollowUpRecorded
    | CompensationPaid
    | ComplaintRuled
    | ViolationRecorded
    | FakeTradesConfirmed
    | SearchCheatingRecorded
)
