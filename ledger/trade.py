"""Trade: escrow, shipping, receipt, refunds, one dispute, and ratings both ways.

One trade is one order line (one buyer, one seller, one item). Its deadlines
(automatic receipt confirmation, refund by seller silence, returns not shipped
or not confirmed, rejected requests closing, default positive ratings) are
facts recorded with their **due time** as ``occurred_at``; ``settle`` records
every one due at or before a given time, and the application calls it before
deciding any command, so no outcome depends on when a worker last ran.

A fact made elsewhere (a bulk import) is admitted by the rules marked
``@admits``: the checks of the command that records it, a match with what the
trade copies into it (its parties, amounts, item and times), and no deadline
due before it left unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import msgspec

from ledger.aggregate import Aggregate, Context, Records, admits, evolves
from ledger.commands import (
    CloseTrade,
    CreateTrade,
    ExplainRating,
    GiveRating,
    RequestRefund,
    ReviewFollowUp,
    ShieldRating,
)
from ledger.errors import (
    ErrorCode,
    InvalidInputError,
    NotFoundError,
    StateConflictError,
)
from ledger.events import (
    EVENT_TYPES,
    AgreedBy,
    ConfirmedBy,
    ConfirmTimerExtended,
    DisputeEscalated,
    DisputeOutcome,
    DisputeRuled,
    Dsr,
    EscrowReleased,
    FollowUpReviewed,
    Party,
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
    RefundReason,
    RefundRejected,
    RefundRequested,
    ReturnReceived,
    ReturnShipped,
    Score,
    TradeClosed,
    TradeCreated,
    TradeEvent,
    TradeShipped,
)
from ledger.member import registered_member
from ledger.policy import GoodsKind, ShippingMethod

# A trade has at most a handful of deadlines in a row (refund steps, receipt,
# default rating); this bounds the settle loop against a logic error.
DEADLINES_PER_SETTLE_MAX = 32

# Every trade fact but the one that creates the trade.
LATER_FACTS = tuple(t for t in EVENT_TYPES if issubclass(t, TradeEvent) and t is not TradeCreated)


class RefundStatus(StrEnum):
    REQUESTED = "requested"
    AWAITING_RETURN = "awaiting_return"
    RETURN_SHIPPED = "return_shipped"
    REJECTED = "rejected"
    DISPUTED = "disputed"
    PAID = "paid"
    CANCELLED = "cancelled"
    CLOSED = "closed"


CANCELLABLE_REFUND = {
    RefundStatus.REQUESTED,
    RefundStatus.REJECTED,
    RefundStatus.AWAITING_RETURN,
}


class Refund(msgspec.Struct):
    refund_id: str
    amount_minor: int
    reason: RefundReason
    with_return: bool
    status: RefundStatus
    # The refund's next deadline; its meaning follows the status.
    due_at: datetime | None


class Rating(msgspec.Struct):
    rater: Party
    score: Score
    given_at: datetime
    default: bool
    dsr: Dsr | None = None
    revised: bool = False
    withdrawn: bool = False
    explained: bool = False
    shielded: bool = False


class Dispute(msgspec.Struct):
    refund_id: str
    outcome: DisputeOutcome | None = None


def _other(party: Party) -> Party:
    return "seller" if party == "buyer" else "buyer"


def check_parties_differ(buyer_id: str, seller_id: str) -> None:
    if buyer_id == seller_id:
        raise InvalidInputError(
            ErrorCode.BUYER_IS_SELLER,
            "buyer and seller must differ",
            field="seller_id",
        )


def known_trade(trade: Trade | None, trade_id: str) -> Trade:
    """The trade a command or fact names, which must exist."""
    if trade is None:
        raise NotFoundError(ErrorCode.UNKNOWN_TRADE, f"no trade {trade_id}", field="trade_id")
    return trade


class Trade(Aggregate):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.trade_id = self.buyer_id = self.seller_id = self.item_id = self.currency = ""
        self.amount_minor = 0
        self.goods_kind: GoodsKind = "physical"
        self.shipping: ShippingMethod = "express"
        self.created_at: datetime | None = None
        self.paid_at: datetime | None = None
        self.shipped_at: datetime | None = None
        self.succeeded_at: datetime | None = None
        self.closed_at: datetime | None = None
        # The confirm timer: a due time while running, the time left while paused.
        self.confirm_due_at: datetime | None = None
        self.confirm_remaining: timedelta | None = None
        self.extensions = 0
        self.refunded_minor = 0
        self.refunds: dict[str, Refund] = {}
        self.open_refund_id: str | None = None
        self.dispute: Dispute | None = None
        self.rating_window_closes_at: datetime | None = None
        self.ratings: dict[Party, Rating] = {}
        self.followed_up = False

    # --- Derived state -------------------------------------------------------

    def party_id(self, party: Party) -> str:
        return self.buyer_id if party == "buyer" else self.seller_id

    @property
    def escrow_left_minor(self) -> int:
        return self.amount_minor - self.refunded_minor if self.paid_at else 0

    @property
    def open_refund(self) -> Refund | None:
        return self.refunds[self.open_refund_id] if self.open_refund_id else None

    def _fields(self) -> dict[str, str]:
        return {
            "trade_id": self.trade_id,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
        }

    # --- Commands: creation, escrow, shipping, receipt -------------------------

    @classmethod
    def create(cls, aggregate_id: UUID, command: CreateTrade, context: Context) -> Trade:
        trade = cls(aggregate_id).begin(context)
        trade.record(
            TradeCreated,
            occurred_at=command.occurred_at,
            trade_id=command.trade_id,
            buyer_id=command.buyer_id,
            seller_id=command.seller_id,
            item_id=command.item_id,
            amount_minor=command.amount_minor,
            currency=command.currency,
            goods_kind=command.goods_kind,
            shipping=command.shipping,
        )
        return trade

    def pay(self, at: datetime) -> None:
        self._check_payable(at)
        self.record(
            PaymentEscrowed,
            occurred_at=at,
            amount_minor=self.amount_minor,
            currency=self.currency,
            **self._fields(),
        )

    def ship(self, at: datetime) -> None:
        self._check_shippable(at)
        timer = self.context.book.policy.confirm_timer.duration(self.goods_kind, self.shipping)
        self.record(TradeShipped, occurred_at=at, confirm_due_at=at + timer, **self._fields())

    def confirm_receipt(self, at: datetime) -> None:
        if self.succeeded_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_CONFIRMED,
                f"receipt of trade {self.trade_id} is already confirmed",
            )
        self._check_open(at)
        if self.shipped_at is None:
            raise StateConflictError(
                ErrorCode.NOT_SHIPPED, f"trade {self.trade_id} has not been shipped"
            )
        self._check_no_open_refund("confirm receipt")
        self._succeed(at, by="buyer")

    def extend_confirm_timer(self, days: int, at: datetime) -> None:
        timer = self.context.book.policy.confirm_timer
        if not timer.extension_min_days <= days <= timer.extension_max_days:
            raise InvalidInputError(
                ErrorCode.EXTENSION_DAYS_OUT_OF_RANGE,
                f"an extension is {timer.extension_min_days}-{timer.extension_max_days} days, "
                f"not {days}",
                field="days",
            )
        self._check_open(at)
        if self.confirm_due_at is None:
            raise StateConflictError(
                ErrorCode.TIMER_NOT_RUNNING,
                f"the confirm timer of trade {self.trade_id} is not running",
            )
        if self.extensions >= timer.extension_max_count:
            raise StateConflictError(
                ErrorCode.EXTENSION_LIMIT,
                f"trade {self.trade_id} already had {self.extensions} extensions",
            )
        self.record(
            ConfirmTimerExtended,
            occurred_at=at,
            days=days,
            confirm_due_at=self.confirm_due_at + timedelta(days=days),
            **self._fields(),
        )

    def close(self, command: CloseTrade) -> None:
        at = command.occurred_at
        if command.reason == "refunded_in_full":
            raise InvalidInputError(
                ErrorCode.RESERVED_CLOSE_REASON,
                "refunded_in_full is recorded by the ledger when a full refund is paid",
                field="reason",
            )
        self._check_open(at)
        if command.reason in ("unpaid", "buyer_cancelled") and self.paid_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_PAID,
                f"trade {self.trade_id} is paid: the buyer asks for a refund instead",
            )
        if self.shipped_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_SHIPPED, f"trade {self.trade_id} is already shipped"
            )
        self._check_no_open_refund("close the trade")
        self.record(
            TradeClosed,
            occurred_at=at,
            reason=command.reason,
            escrow_returned_minor=self.escrow_left_minor,
            **self._fields(),
        )

    # --- Commands: refunds and disputes -------------------------------------------

    def request_refund(self, command: RequestRefund) -> None:
        at = command.occurred_at
        self._check_refund_request(command.refund_id, command.amount_minor, command.with_return, at)
        silence = self.context.book.policy.refund.seller_silence(
            shipped=self.shipped_at is not None, goods_kind=self.goods_kind
        )
        self.record(
            RefundRequested,
            occurred_at=at,
            refund_id=command.refund_id,
            amount_minor=command.amount_minor,
            currency=self.currency,
            reason=command.reason,
            with_return=command.with_return,
            respond_by=at + silence,
            **self._fields(),
        )

    def agree_refund(self, refund_id: str, at: datetime) -> None:
        refund = self._refund_in(
            refund_id, at, {RefundStatus.REQUESTED}, ErrorCode.REFUND_NOT_PENDING
        )
        self._agree(refund, at, by="seller")

    def reject_refund(self, refund_id: str, at: datetime) -> None:
        self._refund_in(refund_id, at, {RefundStatus.REQUESTED}, ErrorCode.REFUND_NOT_PENDING)
        days = self.context.book.policy.refund.rejected_open_days
        self.record(
            RefundRejected,
            occurred_at=at,
            refund_id=refund_id,
            escalate_by=at + timedelta(days=days),
            **self._fields(),
        )

    def ship_return(self, refund_id: str, at: datetime) -> None:
        self._refund_in(
            refund_id, at, {RefundStatus.AWAITING_RETURN}, ErrorCode.RETURN_NOT_EXPECTED
        )
        window = self.context.book.policy.refund.return_confirm(self.shipping)
        self.record(
            ReturnShipped,
            occurred_at=at,
            refund_id=refund_id,
            confirm_by=at + window,
            **self._fields(),
        )

    def confirm_return_receipt(self, refund_id: str, at: datetime) -> None:
        refund = self._refund_in(
            refund_id, at, {RefundStatus.RETURN_SHIPPED}, ErrorCode.RETURN_NOT_EXPECTED
        )
        self.record(
            ReturnReceived,
            occurred_at=at,
            refund_id=refund_id,
            by="seller",
            **self._fields(),
        )
        self._pay_refund(refund, at)

    def cancel_refund(self, refund_id: str, at: datetime) -> None:
        self._refund_in(refund_id, at, CANCELLABLE_REFUND, ErrorCode.REFUND_NOT_CANCELLABLE)
        self.record(RefundCancelled, occurred_at=at, refund_id=refund_id, **self._fields())

    def escalate_dispute(self, refund_id: str, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if self.dispute is not None:
            raise StateConflictError(
                ErrorCode.DISPUTE_EXISTS,
                f"trade {self.trade_id} already had its one dispute",
            )
        self._refund_in(refund_id, at, {RefundStatus.REJECTED}, ErrorCode.NO_REJECTED_REFUND)
        self.record(DisputeEscalated, occurred_at=at, refund_id=refund_id, **self._fields())

    def rule_dispute(self, outcome: DisputeOutcome, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        refund = self.refunds[self._dispute_to_rule().refund_id]
        self.record(
            DisputeRuled,
            occurred_at=at,
            refund_id=refund.refund_id,
            outcome=outcome,
            **self._fields(),
        )
        if outcome == "seller_at_fault":
            self._agree(refund, at, by="ruling")
        else:
            self.record(
                RefundClosed,
                occurred_at=at,
                refund_id=refund.refund_id,
                reason="dispute_not_seller_fault",
                **self._fields(),
            )

    # --- Commands: ratings -----------------------------------------------------------

    def give_rating(self, command: GiveRating) -> None:
        at, rater = command.occurred_at, command.rater
        if command.dsr is not None and rater == "seller":
            raise InvalidInputError(
                ErrorCode.DSR_FROM_SELLER,
                "only the buyer gives shop scores",
                field="dsr",
            )
        comment_max = self.context.book.policy.rating.comment_max_chars
        if len(command.comment) > comment_max:
            raise InvalidInputError(
                ErrorCode.INVALID_INPUT,
                f"a comment is at most {comment_max} characters",
                field="comment",
            )
        self.check_not_before_last_fact(at)
        if self.succeeded_at is None or self.rating_window_closes_at is None:
            raise StateConflictError(
                ErrorCode.NOT_SUCCEEDED,
                f"trade {self.trade_id} has not succeeded: nothing to rate yet",
            )
        self._check_party(rater, command.rater_id, field="rater_id")
        if at >= self.rating_window_closes_at:
            raise StateConflictError(
                ErrorCode.RATING_WINDOW_CLOSED,
                f"the rating window of trade {self.trade_id} closed at "
                f"{self.rating_window_closes_at.isoformat()}",
            )
        if rater in self.ratings:
            raise StateConflictError(
                ErrorCode.ALREADY_RATED,
                f"the {rater} already rated trade {self.trade_id}",
            )
        self._record_rating(rater, command.score, at, dsr=command.dsr, comment=command.comment)

    def revise_rating(self, rater: Party, rater_id: str | None, at: datetime) -> None:
        self._revisable(rater, rater_id, at)
        self.record(
            RatingRevised,
            occurred_at=at,
            rater=rater,
            score="positive",
            **self._fields(),
        )

    def withdraw_rating(self, rater: Party, rater_id: str | None, at: datetime) -> None:
        self._revisable(rater, rater_id, at)
        self.record(RatingWithdrawn, occurred_at=at, rater=rater, **self._fields())

    def explain_rating(self, command: ExplainRating) -> None:
        at = command.occurred_at
        self.check_not_before_last_fact(at)
        rating = self._rating(command.rater)
        self._check_party(_other(command.rater), command.author_id, field="author_id")
        if rating.explained:
            raise StateConflictError(
                ErrorCode.ALREADY_EXPLAINED,
                f"the {command.rater}'s rating is already explained",
            )
        days = self.context.book.policy.rating.explanation_days
        if at >= rating.given_at + timedelta(days=days):
            raise StateConflictError(
                ErrorCode.EXPLANATION_WINDOW_CLOSED,
                f"an explanation comes within {days} days of the rating",
            )
        self.record(
            RatingExplained,
            occurred_at=at,
            rater=command.rater,
            text=command.text,
            **self._fields(),
        )

    def review_follow_up(self, command: ReviewFollowUp) -> None:
        at = command.occurred_at
        if command.rater != "buyer":
            raise InvalidInputError(
                ErrorCode.FOLLOW_UP_BUYER_ONLY,
                "only the buyer writes a follow-up review",
                field="rater",
            )
        self.check_not_before_last_fact(at)
        self._check_party("buyer", command.author_id, field="author_id")
        rating = self.ratings.get("buyer")
        if rating is None or rating.default:
            raise StateConflictError(
                ErrorCode.NO_BUYER_RATING,
                f"the buyer of trade {self.trade_id} has not rated it",
            )
        if self.followed_up:
            raise StateConflictError(
                ErrorCode.ALREADY_FOLLOWED_UP,
                "the follow-up review was already written",
            )
        days = self.context.book.policy.rating.follow_up_days
        if self.succeeded_at is not None and at >= self.succeeded_at + timedelta(days=days):
            raise StateConflictError(
                ErrorCode.FOLLOW_UP_WINDOW_CLOSED,
                f"a follow-up review comes within {days} days of success",
            )
        self.record(
            FollowUpReviewed,
            occurred_at=at,
            rater="buyer",
            text=command.text,
            **self._fields(),
        )

    def shield_rating(self, command: ShieldRating) -> None:
        at = command.occurred_at
        self.check_not_before_last_fact(at)
        rating = self._rating(command.rater)
        if rating.shielded:
            raise StateConflictError(
                ErrorCode.ALREADY_SHIELDED,
                f"the {command.rater}'s rating is already shielded",
            )
        self.record(
            RatingShielded,
            occurred_at=at,
            rater=command.rater,
            reason=command.reason,
            **self._fields(),
        )

    # --- Deadlines -----------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        due = self._next_due()
        return due[0] if due else None

    def settle(self, until: datetime) -> None:
        for _ in range(DEADLINES_PER_SETTLE_MAX):
            due = self._next_due()
            if due is None or due[0] > until:
                return
            at, fire = due
            fire(at)
        raise RuntimeError(
            f"trade {self.trade_id}: more than {DEADLINES_PER_SETTLE_MAX} deadlines at once"
        )

    def _next_due(self) -> tuple[datetime, Callable[[datetime], None]] | None:
        """The earliest pending deadline and what firing it records."""
        if self.closed_at is not None:
            return None
        refund = self.open_refund
        if refund is not None and refund.due_at is not None:
            return refund.due_at, self._refund_deadline(refund)
        if self.confirm_due_at is not None:
            return self.confirm_due_at, self._auto_confirm
        if self._default_rating_pending() and self.rating_window_closes_at is not None:
            return self.rating_window_closes_at, self._default_rating
        return None

    def _refund_deadline(self, refund: Refund) -> Callable[[datetime], None]:
        if refund.status == RefundStatus.REQUESTED:
            return lambda at: self._agree(refund, at, by="silence")
        if refund.status == RefundStatus.AWAITING_RETURN:
            return lambda at: self._close_refund(refund, at, "return_not_shipped")
        if refund.status == RefundStatus.RETURN_SHIPPED:
            return lambda at: self._receive_return_by_silence(refund, at)
        return lambda at: self._close_refund(refund, at, "rejected_not_escalated")

    def _auto_confirm(self, at: datetime) -> None:
        self._succeed(at, by="auto")

    def _receive_return_by_silence(self, refund: Refund, at: datetime) -> None:
        self.record(
            ReturnReceived,
            occurred_at=at,
            refund_id=refund.refund_id,
            by="silence",
            **self._fields(),
        )
        self._pay_refund(refund, at)

    def _close_refund(self, refund: Refund, at: datetime, reason: str) -> None:
        self.record(
            RefundClosed,
            occurred_at=at,
            refund_id=refund.refund_id,
            reason=reason,
            **self._fields(),
        )

    def _default_rating_pending(self) -> bool:
        """docs/rules.md §2: exactly one side rated, positively, by window close."""
        if (
            self.succeeded_at is None
            or self.rating_window_closes_at is None
            or not self.context.book.policy.rating.default_positive
            or len(self.ratings) != 1
            or (self.last_at is not None and self.last_at >= self.rating_window_closes_at)
        ):
            return False
        (rating,) = self.ratings.values()
        return rating.score == "positive" and not rating.withdrawn and not rating.default

    def _default_rating(self, at: datetime) -> None:
        (rating,) = self.ratings.values()
        self._record_rating(_other(rating.rater), "positive", at, default=True)

    # --- Shared steps --------------------------------------------------------------

    def _succeed(self, at: datetime, by: ConfirmedBy) -> None:
        window = timedelta(days=self.context.book.policy.rating.window_days)
        self.record(
            ReceiptConfirmed,
            occurred_at=at,
            by=by,
            rating_window_closes_at=at + window,
            **self._fields(),
        )
        self.record(
            EscrowReleased,
            occurred_at=at,
            amount_minor=self.escrow_left_minor,
            currency=self.currency,
            **self._fields(),
        )

    def _agree(self, refund: Refund, at: datetime, by: AgreedBy) -> None:
        if refund.with_return:
            days = self.context.book.policy.refund.return_ship_days
            self.record(
                RefundAgreed,
                occurred_at=at,
                refund_id=refund.refund_id,
                by=by,
                return_ship_by=at + timedelta(days=days),
                **self._fields(),
            )
            return
        self.record(
            RefundAgreed,
            occurred_at=at,
            refund_id=refund.refund_id,
            by=by,
            **self._fields(),
        )
        self._pay_refund(refund, at)

    def _pay_refund(self, refund: Refund, at: datetime) -> None:
        self.record(
            RefundPaid,
            occurred_at=at,
            refund_id=refund.refund_id,
            amount_minor=refund.amount_minor,
            currency=self.currency,
            **self._fields(),
        )
        if self.refunded_minor == self.amount_minor:
            self.record(TradeClosed, occurred_at=at, reason="refunded_in_full", **self._fields())

    def _record_rating(
        self,
        rater: Party,
        score: Score,
        at: datetime,
        *,
        dsr: Dsr | None = None,
        comment: str = "",
        default: bool = False,
    ) -> None:
        if self.created_at is None or self.succeeded_at is None:
            raise RuntimeError("a rating needs a created, succeeded trade")
        self.record(
            RatingGiven,
            occurred_at=at,
            rater=rater,
            score=score,
            item_id=self.item_id,
            amount_minor=self.amount_minor,
            currency=self.currency,
            order_created_at=self.created_at,
            succeeded_at=self.succeeded_at,
            dsr=dsr,
            comment=comment,
            default=default,
            **self._fields(),
        )

    # --- Checks ----------------------------------------------------------------------

    def _check_open(self, at: datetime) -> None:
        self.check_not_before_last_fact(at)
        if self.closed_at is not None:
            raise StateConflictError(ErrorCode.TRADE_CLOSED, f"trade {self.trade_id} is closed")
        if self.succeeded_at is not None:
            raise StateConflictError(
                ErrorCode.TRADE_SUCCEEDED,
                f"trade {self.trade_id} has succeeded and its escrow was released",
            )

    def _check_paid(self) -> None:
        if self.paid_at is None:
            raise StateConflictError(ErrorCode.NOT_PAID, f"trade {self.trade_id} is not paid")

    def _check_payable(self, at: datetime) -> None:
        self._check_open(at)
        if self.paid_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_PAID, f"trade {self.trade_id} is already paid"
            )

    def _check_shippable(self, at: datetime) -> None:
        self._check_open(at)
        self._check_paid()
        if self.shipped_at is not None:
            raise StateConflictError(
                ErrorCode.ALREADY_SHIPPED, f"trade {self.trade_id} is already shipped"
            )
        self._check_no_open_refund("ship")

    def _check_refund_request(
        self, refund_id: str, amount_minor: int, with_return: bool, at: datetime
    ) -> None:
        self._check_open(at)
        self._check_paid()
        self._check_no_open_refund("request another refund")
        if refund_id in self.refunds:
            raise StateConflictError(ErrorCode.REFUND_EXISTS, f"refund {refund_id} already exists")
        # A command's amount is positive by its field constraint; a fact's is checked here.
        if not 0 < amount_minor <= self.escrow_left_minor:
            raise StateConflictError(
                ErrorCode.REFUND_EXCEEDS_ESCROW,
                f"{amount_minor} asked, {self.escrow_left_minor} left in escrow",
                field="amount_minor",
            )
        if with_return and self.shipped_at is None:
            raise StateConflictError(
                ErrorCode.NOT_SHIPPED,
                "nothing to return: the trade has not been shipped",
            )

    def _dispute_to_rule(self) -> Dispute:
        if self.dispute is None:
            raise StateConflictError(ErrorCode.NO_DISPUTE, f"trade {self.trade_id} has no dispute")
        if self.dispute.outcome is not None:
            raise StateConflictError(
                ErrorCode.DISPUTE_ALREADY_RULED,
                f"the dispute on trade {self.trade_id} is already ruled",
            )
        return self.dispute

    def _check_no_open_refund(self, action: str) -> None:
        if self.open_refund_id is not None:
            raise StateConflictError(
                ErrorCode.REFUND_OPEN,
                f"refund {self.open_refund_id} is open on trade {self.trade_id}: cannot {action}",
            )

    def _check_party(self, party: Party, member_id: str | None, *, field: str) -> None:
        if member_id is not None and member_id != self.party_id(party):
            raise StateConflictError(
                ErrorCode.NOT_THAT_PARTY,
                f"{member_id} is not the {party} of trade {self.trade_id}",
                field=field,
            )

    def _refund_in(
        self, refund_id: str, at: datetime, allowed: set[RefundStatus], code: ErrorCode
    ) -> Refund:
        self.check_not_before_last_fact(at)
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise NotFoundError(
                ErrorCode.UNKNOWN_REFUND,
                f"trade {self.trade_id} has no refund {refund_id}",
            )
        if refund.status not in allowed:
            raise StateConflictError(code, f"refund {refund_id} is {refund.status}")
        return refund

    def _rating(self, rater: Party) -> Rating:
        rating = self.ratings.get(rater)
        if rating is None:
            raise NotFoundError(
                ErrorCode.UNKNOWN_RATING,
                f"the {rater} has not rated trade {self.trade_id}",
            )
        return rating

    def _revisable(self, rater: Party, rater_id: str | None, at: datetime) -> Rating:
        self.check_not_before_last_fact(at)
        rating = self._rating(rater)
        self._check_party(rater, rater_id, field="rater_id")
        if rating.revised or rating.withdrawn:
            raise StateConflictError(
                ErrorCode.ALREADY_REVISED, f"the {rater}'s rating was already revised"
            )
        if rating.score == "positive":
            raise StateConflictError(ErrorCode.RATING_FINAL, "a positive rating is final")
        days = self.context.book.policy.rating.revision_days
        if at >= rating.given_at + timedelta(days=days):
            raise StateConflictError(
                ErrorCode.REVISION_WINDOW_CLOSED,
                f"a rating is revised within {days} days of giving it",
            )
        return rating

    # --- Admitting facts made elsewhere -------------------------------------------------

    @admits(TradeCreated)
    def _created_between_members(self, e: TradeCreated, records: Records) -> None:
        check_parties_differ(e.buyer_id, e.seller_id)
        registered_member(records.member(e.buyer_id), e.buyer_id, e.occurred_at)
        registered_member(records.member(e.seller_id), e.seller_id, e.occurred_at)

    @admits(*LATER_FACTS)
    def _follows_the_trade(self, e: TradeEvent, records: Records) -> None:
        """A later fact names the trade's parties, and its deadlines fired in time.

        The command path settles a trade before deciding, so a deadline due
        before a fact is recorded before it; a log that lacks one is refused.
        """
        if (e.buyer_id, e.seller_id) != (self.buyer_id, self.seller_id):
            raise StateConflictError(
                ErrorCode.NOT_THAT_PARTY,
                f"the fact names {e.buyer_id}/{e.seller_id}, trade {self.trade_id} "
                f"is between {self.buyer_id}/{self.seller_id}",
            )
        due = self.next_deadline()
        if due is not None and due < e.occurred_at:
            raise StateConflictError(
                ErrorCode.OUT_OF_ORDER,
                f"trade {self.trade_id} had a deadline due at {due.isoformat()} that is "
                "not recorded before this fact",
            )

    @admits(PaymentEscrowed)
    def _paid_once(self, e: PaymentEscrowed, records: Records) -> None:
        self._check_payable(e.occurred_at)
        self.check_copied("amount_minor", e.amount_minor, self.amount_minor)

    @admits(TradeShipped)
    def _shipped_once(self, e: TradeShipped, records: Records) -> None:
        self._check_shippable(e.occurred_at)

    @admits(EscrowReleased)
    def _releases_what_is_left(self, e: EscrowReleased, records: Records) -> None:
        self.check_copied("amount_minor", e.amount_minor, self.escrow_left_minor)

    @admits(RefundRequested)
    def _refund_request_allowed(self, e: RefundRequested, records: Records) -> None:
        self._check_refund_request(e.refund_id, e.amount_minor, e.with_return, e.occurred_at)

    @admits(RefundPaid)
    def _pays_the_refund(self, e: RefundPaid, records: Records) -> None:
        refund = self.refunds.get(e.refund_id)
        if refund is not None:  # an unknown refund does not apply
            self.check_copied("amount_minor", e.amount_minor, refund.amount_minor)

    @admits(DisputeRuled)
    def _rules_the_dispute(self, e: DisputeRuled, records: Records) -> None:
        if self._dispute_to_rule().refund_id != e.refund_id:
            raise StateConflictError(
                ErrorCode.NO_DISPUTE,
                f"trade {self.trade_id} has no dispute on refund {e.refund_id} to rule",
            )

    @admits(RatingGiven)
    def _rates_this_trade(self, e: RatingGiven, records: Records) -> None:
        self.check_copied("amount_minor", e.amount_minor, self.amount_minor)
        self.check_copied("item_id", e.item_id, self.item_id)
        self.check_copied("order_created_at", e.order_created_at, self.created_at)
        self.check_copied("succeeded_at", e.succeeded_at, self.succeeded_at)

    def check_copied(self, field: str, value: object, held: object) -> None:
        """A fact carries what the trade holds: the commands copy it from there."""
        if value != held:
            raise InvalidInputError(
                ErrorCode.INVALID_INPUT,
                f"{field} is {value}, trade {self.trade_id} holds {held}",
                field=field,
            )

    # --- Evolution -------------------------------------------------------------------

    @evolves(TradeCreated)
    def _created(self, e: TradeCreated) -> None:
        self.trade_id, self.buyer_id, self.seller_id = (
            e.trade_id,
            e.buyer_id,
            e.seller_id,
        )
        self.item_id, self.amount_minor, self.currency = (
            e.item_id,
            e.amount_minor,
            e.currency,
        )
        self.goods_kind, self.shipping, self.created_at = (
            e.goods_kind,
            e.shipping,
            e.occurred_at,
        )

    @evolves(PaymentEscrowed)
    def _paid(self, e: PaymentEscrowed) -> None:
        self.paid_at = e.occurred_at

    @evolves(TradeShipped)
    def _shipped(self, e: TradeShipped) -> None:
        self.shipped_at = e.occurred_at
        self.confirm_due_at = e.confirm_due_at

    @evolves(ConfirmTimerExtended)
    def _extended(self, e: ConfirmTimerExtended) -> None:
        self.extensions += 1
        self.confirm_due_at = e.confirm_due_at

    @evolves(ReceiptConfirmed)
    def _confirmed(self, e: ReceiptConfirmed) -> None:
        self.succeeded_at = e.occurred_at
        self.confirm_due_at = None
        self.rating_window_closes_at = e.rating_window_closes_at

    @evolves(EscrowReleased)
    def _released(self, e: EscrowReleased) -> None:
        pass

    @evolves(TradeClosed)
    def _closed(self, e: TradeClosed) -> None:
        self.closed_at = e.occurred_at
        self.confirm_due_at = self.confirm_remaining = None

    @evolves(RefundRequested)
    def _refund_requested(self, e: RefundRequested) -> None:
        self.refunds[e.refund_id] = Refund(
            e.refund_id,
            e.amount_minor,
            e.reason,
            e.with_return,
            RefundStatus.REQUESTED,
            e.respond_by,
        )
        self.open_refund_id = e.refund_id
        # docs/rules.md §2: the confirm timer pauses while a refund request is open.
        if self.confirm_due_at is not None:
            self.confirm_remaining = self.confirm_due_at - e.occurred_at
            self.confirm_due_at = None

    @evolves(RefundAgreed)
    def _refund_agreed(self, e: RefundAgreed) -> None:
        refund = self.refunds[e.refund_id]
        refund.status = RefundStatus.AWAITING_RETURN if e.return_ship_by else RefundStatus.PAID
        refund.due_at = e.return_ship_by

    @evolves(RefundRejected)
    def _refund_rejected(self, e: RefundRejected) -> None:
        refund = self.refunds[e.refund_id]
        refund.status, refund.due_at = RefundStatus.REJECTED, e.escalate_by

    @evolves(ReturnShipped)
    def _return_shipped(self, e: ReturnShipped) -> None:
        refund = self.refunds[e.refund_id]
        refund.status, refund.due_at = RefundStatus.RETURN_SHIPPED, e.confirm_by

    @evolves(ReturnReceived)
    def _return_received(self, e: ReturnReceived) -> None:
        self.refunds[e.refund_id].due_at = None

    @evolves(RefundPaid)
    def _refund_paid(self, e: RefundPaid) -> None:
        self.refunded_minor += e.amount_minor
        self._end_refund(e.refund_id, RefundStatus.PAID, e.occurred_at)

    @evolves(RefundCancelled)
    def _refund_cancelled(self, e: RefundCancelled) -> None:
        self._end_refund(e.refund_id, RefundStatus.CANCELLED, e.occurred_at)

    @evolves(RefundClosed)
    def _refund_closed(self, e: RefundClosed) -> None:
        self._end_refund(e.refund_id, RefundStatus.CLOSED, e.occurred_at)

    def _end_refund(self, refund_id: str, status: RefundStatus, at: datetime) -> None:
        refund = self.refunds[refund_id]
        refund.status, refund.due_at = status, None
        self.open_refund_id = None
        # The timer resumes with the time it had left; it does not restart.
        if self.confirm_remaining is not None:
            self.confirm_due_at = at + self.confirm_remaining
            self.confirm_remaining = None

    @evolves(DisputeEscalated)
    def _dispute_escalated(self, e: DisputeEscalated) -> None:
        self.dispute = Dispute(e.refund_id)
        refund = self.refunds[e.refund_id]
        refund.status, refund.due_at = RefundStatus.DISPUTED, None

    @evolves(DisputeRuled)
    def _dispute_ruled(self, e: DisputeRuled) -> None:
        if self.dispute is not None:
            self.dispute.outcome = e.outcome

    @evolves(RatingGiven)
    def _rating_given(self, e: RatingGiven) -> None:
        self.ratings[e.rater] = Rating(e.rater, e.score, e.occurred_at, e.default, e.dsr)

    @evolves(RatingRevised)
    def _rating_revised(self, e: RatingRevised) -> None:
        rating = self.ratings[e.rater]
        rating.score, rating.revised = e.score, True

    @evolves(RatingWithdrawn)
    def _rating_withdrawn(self, e: RatingWithdrawn) -> None:
        self.ratings[e.rater].withdrawn = True

    @evolves(RatingExplained)
    def _rating_explained(self, e: RatingExplained) -> None:
        self.ratings[e.rater].explained = True

    @evolves(FollowUpReviewed)
    def _followed_up(self, e: FollowUpReviewed) -> None:
        self.followed_up = True

    @evolves(RatingShielded)
    def _rating_shielded(self, e: RatingShielded) -> None:
        self.ratings[e.rater].shielded = True
