"""Domain errors: every refusal has a stable machine code and an error class.

The class decides the HTTP status family (docs/rules.md §8): malformed input is
422, an unknown entity 404, a fact that contradicts the current state 409.
Codes are part of the public contract, so they live in one enum and are never
renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    # Malformed or unacceptable input (422).
    INVALID_INPUT = "invalid_input"
    FUTURE_TIMESTAMP = "future_timestamp"
    CURRENCY_MISMATCH = "currency_mismatch"
    BUYER_IS_SELLER = "buyer_is_seller"
    DSR_FROM_SELLER = "dsr_from_seller"
    RESERVED_CLOSE_REASON = "reserved_close_reason"
    EXTENSION_DAYS_OUT_OF_RANGE = "extension_days_out_of_range"
    FOLLOW_UP_BUYER_ONLY = "follow_up_buyer_only"
    BATCH_TOO_LARGE = "batch_too_large"
    # Unknown entities (404).
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_TRADE = "unknown_trade"
    UNKNOWN_REFUND = "unknown_refund"
    UNKNOWN_RATING = "unknown_rating"
    UNKNOWN_COMPLAINT = "unknown_complaint"
    UNKNOWN_POSITION = "unknown_position"
    UNKNOWN_TREE_SIZE = "unknown_tree_size"
    POSITION_BEYOND_LOG = "position_beyond_log"
    # Contradicts the current state (409).
    OUT_OF_ORDER = "out_of_order"
    MEMBER_EXISTS = "member_exists"
    ALREADY_VERIFIED = "already_verified"
    TRADE_EXISTS = "trade_exists"
    TRADE_CLOSED = "trade_closed"
    TRADE_SUCCEEDED = "trade_succeeded"
    NOT_PAID = "not_paid"
    ALREADY_PAID = "already_paid"
    NOT_SHIPPED = "not_shipped"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_CONFIRMED = "already_confirmed"
    TIMER_NOT_RUNNING = "timer_not_running"
    EXTENSION_LIMIT = "extension_limit"
    REFUND_OPEN = "refund_open"
    REFUND_EXISTS = "refund_exists"
    REFUND_EXCEEDS_ESCROW = "refund_exceeds_escrow"
    REFUND_NOT_PENDING = "refund_not_pending"
    RETURN_NOT_EXPECTED = "return_not_expected"
    REFUND_NOT_CANCELLABLE = "refund_not_cancellable"
    NO_REJECTED_REFUND = "no_rejected_refund"
    DISPUTE_EXISTS = "dispute_exists"
    NO_DISPUTE = "no_dispute"
    DISPUTE_ALREADY_RULED = "dispute_already_ruled"
    NOT_SUCCEEDED = "not_succeeded"
    RATING_WINDOW_CLOSED = "rating_window_closed"
    ALREADY_RATED = "already_rated"
    NOT_THAT_PARTY = "not_that_party"
    RATING_FINAL = "rating_final"
    ALREADY_REVISED = "already_revised"
    REVISION_WINDOW_CLOSED = "revision_window_closed"
    ALREADY_EXPLAINED = "already_explained"
    EXPLANATION_WINDOW_CLOSED = "explanation_window_closed"
    NO_BUYER_RATING = "no_buyer_rating"
    ALREADY_FOLLOWED_UP = "already_followed_up"
    FOLLOW_UP_WINDOW_CLOSED = "follow_up_window_closed"
    ALREADY_SHIELDED = "already_shielded"
    COMPLAINT_EXISTS = "complaint_exists"
    COMPLAINT_RULED = "complaint_ruled"
    ALREADY_ESCALATED = "already_escalated"
    VIOLATION_EXISTS = "violation_exists"
    CASE_EXISTS = "case_exists"
    TRADE_OF_OTHER_SELLER = "trade_of_other_seller"
    TRADE_ALREADY_FAKE = "trade_already_fake"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    CONCURRENT_UPDATE = "concurrent_update"
    # A bulk import's refusals of the export itself: its lines, its order, and
    # facts its aggregates cannot take (the command line reports them).
    LINE_TOO_LONG = "line_too_long"
    BAD_LINE = "bad_line"
    BAD_BODY = "bad_body"
    UNKNOWN_TOPIC = "unknown_topic"
    TOPIC_MISMATCH = "topic_mismatch"
    ORIGINATOR_MISMATCH = "originator_mismatch"
    NOT_IN_LOG_ORDER = "not_in_log_order"
    VERSION_GAP = "version_gap"
    VERSION_CLASH = "version_clash"
    DOES_NOT_APPLY = "does_not_apply"


class LedgerError(Exception):
    """Base of every refusal. Nothing was written when one is raised."""

    kind: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False

    def __init__(self, code: ErrorCode, detail: str, *, field: str | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field


class InvalidInputError(LedgerError):
    """Malformed or out-of-range input (HTTP 422)."""

    kind = "invalid_input"


class NotFoundError(LedgerError):
    """An unknown member, trade, refund, rating, complaint or case (HTTP 404)."""

    kind = "not_found"


class StateConflictError(LedgerError):
    """A fact that contradicts the current state (HTTP 409)."""

    kind = "conflict"


class ConcurrentUpdateError(StateConflictError):
    """Another command changed the same aggregate first; retrying may succeed."""

    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.CONCURRENT_UPDATE, detail)
