"""Commands: what platform services ask the ledger to record (imperative names).

Field constraints live here as msgspec metadata; ``LedgerApp`` checks every
command against them before deciding anything (``ledger.limits``), so the same
rules hold for HTTP callers, the CLI and tests. The command's tag names it in the
idempotency hash, so one key cannot be replayed for a different use case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ledger.events import (
    CompensationKind,
    ComplaintOutcome,
    DisputeOutcome,
    Dsr,
    Party,
    RefundReason,
    Score,
    SearchCheatingKind,
)
from ledger.ids import PlatformId
from ledger.policy import (
    ComplaintType,
    GoodsKind,
    Severity,
    ShippingMethod,
    ViolationCategory,
)

# Named limits (docs/rules.md §8: oversized text or batches are refused).
AMOUNT_MINOR_MAX = 10**15
TEXT_MAX_CHARS = 2_000
REASON_MAX_CHARS = 500
FAKE_TRADE_CASE_TRADES_MAX = 5_000
SEARCH_CHEATING_ITEMS_MAX = 1_000
TIMER_EXTENSION_DAYS_MAX = 365
VIOLATION_POINTS_MAX = 48  # the most points one recorded violation may carry

UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
AmountMinor = Annotated[int, msgspec.Meta(gt=0, le=AMOUNT_MINOR_MAX)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=TEXT_MAX_CHARS)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=REASON_MAX_CHARS)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]


class Command(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="command",
):
    occurred_at: UtcTime


# --- Members -------------------------------------------------------------------


class RegisterMember(Command, frozen=True, tag="register_member"):
    member_id: PlatformId


class VerifyIdentity(Command, frozen=True, tag="verify_identity"):
    member_id: PlatformId


# --- Trades and escrow -----------------------------------------------------------


class TradeCommand(Command, frozen=True, kw_only=True):
    trade_id: PlatformId


class CreateTrade(TradeCommand, frozen=True, tag="create_trade"):
    buyer_id: PlatformId
    seller_id: PlatformId
    item_id: PlatformId
    amount_minor: AmountMinor
    currency: Currency
    goods_kind: GoodsKind
    shipping: ShippingMethod


class PayIntoEscrow(TradeCommand, frozen=True, tag="pay_into_escrow"):
    pass


class ShipTrade(TradeCommand, frozen=True, tag="ship_trade"):
    pass


class ConfirmReceipt(TradeCommand, frozen=True, tag="confirm_receipt"):
    by: Literal["buyer"] = "buyer"


class ExtendConfirmTimer(TradeCommand, frozen=True, tag="extend_confirm_timer"):
    days: Annotated[int, msgspec.Meta(ge=1, le=TIMER_EXTENSION_DAYS_MAX)]


class CloseTrade(TradeCommand, frozen=True, tag="close_trade"):
    reason: Literal[
        "unpaid",
        "buyer_cancelled",
        "seller_cancelled",
        "out_of_stock",
        "refunded_in_full",
    ]


# --- Refunds and disputes --------------------------------------------------------


class RefundCommand(TradeCommand, frozen=True, kw_only=True):
    refund_id: PlatformId


class RequestRefund(RefundCommand, frozen=True, tag="request_refund"):
    amount_minor: AmountMinor
    reason: RefundReason
    with_return: bool


class AgreeRefund(RefundCommand, frozen=True, tag="agree_refund"):
    pass


class RejectRefund(RefundCommand, frozen=True, tag="reject_refund"):
    pass


class ShipReturn(RefundCommand, frozen=True, tag="ship_return"):
    pass


class ConfirmReturnReceipt(RefundCommand, frozen=True, tag="confirm_return_receipt"):
    pass


class CancelRefund(RefundCommand, frozen=True, tag="cancel_refund"):
    pass


class EscalateDispute(RefundCommand, frozen=True, tag="escalate_dispute"):
    pass


class RuleDispute(TradeCommand, frozen=True, tag="rule_dispute"):
    outcome: DisputeOutcome


# --- Ratings ---------------------------------------------------------------------


class RatingCommand(TradeCommand, frozen=True, kw_only=True):
    rater: Party


class GiveRating(RatingCommand, frozen=True, tag="give_rating"):
    score: Score
    rater_id: PlatformId | None = None
    dsr: Dsr | None = None
    comment: Annotated[str, msgspec.Meta(max_length=TEXT_MAX_CHARS)] = ""


class ReviseRating(RatingCommand, frozen=True, tag="revise_rating"):
    score: Literal["positive"] = "positive"
    rater_id: PlatformId | None = None


class WithdrawRating(RatingCommand, frozen=True, tag="withdraw_rating"):
    rater_id: PlatformId | None = None


class ExplainRating(RatingCommand, frozen=True, tag="explain_rating"):
    text: Text
    author_id: PlatformId | None = None


class ReviewFollowUp(RatingCommand, frozen=True, tag="review_follow_up"):
    text: Text
    author_id: PlatformId | None = None


class ShieldRating(RatingCommand, frozen=True, tag="shield_rating"):
    reason: Reason


# --- Complaints ------------------------------------------------------------------


class ComplaintCommand(Command, frozen=True, kw_only=True):
    complaint_id: PlatformId


class FileComplaint(ComplaintCommand, frozen=True, tag="file_complaint"):
    trade_id: PlatformId
    type: ComplaintType
    severity: Severity
    evidence: Annotated[str, msgspec.Meta(max_length=TEXT_MAX_CHARS)] = ""
    filed_by: PlatformId | None = None


class EscalateComplaint(ComplaintCommand, frozen=True, tag="escalate_complaint"):
    pass


class RecordComplaintFollowUp(ComplaintCommand, frozen=True, tag="record_complaint_follow_up"):
    text: Text


class PayCompensation(ComplaintCommand, frozen=True, tag="pay_compensation"):
    kind: CompensationKind
    amount_minor: AmountMinor | None = None


class RuleComplaint(ComplaintCommand, frozen=True, tag="rule_complaint"):
    outcome: ComplaintOutcome


# --- Seller enforcement ----------------------------------------------------------


class SellerCommand(Command, frozen=True, kw_only=True):
    seller_id: PlatformId


class RecordViolation(SellerCommand, frozen=True, tag="record_violation"):
    violation_id: PlatformId
    category: ViolationCategory
    points: Annotated[int, msgspec.Meta(ge=1, le=VIOLATION_POINTS_MAX)]
    reason: Reason
    reference: Annotated[str, msgspec.Meta(max_length=REASON_MAX_CHARS)] = ""


class ConfirmFakeTrades(SellerCommand, frozen=True, tag="confirm_fake_trades"):
    case_id: PlatformId
    trade_ids: Annotated[
        tuple[PlatformId, ...],
        msgspec.Meta(min_length=1, max_length=FAKE_TRADE_CASE_TRADES_MAX),
    ]


class RecordSearchCheating(SellerCommand, frozen=True, tag="record_search_cheating"):
    case_id: PlatformId
    item_ids: Annotated[
        tuple[PlatformId, ...],
        msgspec.Meta(min_length=1, max_length=SEARCH_CHEATING_ITEMS_MAX),
    ]
    kind: SearchCheatingKind


AnyCommand = (
    RegisterMember
    | VerifyIdentity
    | CreateTrade
    | PayIntoEscrow
    | ShipTrade
    | ConfirmReceipt
    | ExtendConfirmTimer
    | CloseTrade
    | RequestRefund
    | AgreeRefund
    | RejectRefund
    | ShipReturn
    | ConfirmReturnReceipt
    | CancelRefund
    | EscalateDispute
    | RuleDispute
    | GiveRating
    | ReviseRating
    | WithdrawRating
    | ExplainRating
    | ReviewFollowUp
    | ShieldRating
    | FileComplaint
    | EscalateComplaint
    | RecordComplaintFollowUp
    | PayCompensation
    | RuleComplaint
    | RecordViolation
    | ConfirmFakeTrades
    | RecordSearchCheating
)
