"""A seller's complaints and refund requests page by page, in log order.

A page reads the view's index of the seller's complaints (by the position of
their filing) or refunds (by the position of their request) from the cursor
on, so a page costs the same however long the history; ``next_cursor`` is
null on the last page. The lists come oldest first, as the trade lists do,
in pages of the same sizes, and their cursors are made alike (the last
item's position and id).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from ledger.commands import UtcTime
from ledger.trade import RefundStatus
from projections.explanations import decode_cursor, encode_cursor
from projections.marketplace import ComplaintFacts, TradeFacts
from projections.trade_lists import TRADE_PAGE_DEFAULT, TRADE_PAGE_MAX

CASE_PAGE_MAX = TRADE_PAGE_MAX
CASE_PAGE_DEFAULT = TRADE_PAGE_DEFAULT


class CasesOfSellers(Protocol):
    def complaints_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[ComplaintFacts]: ...

    def refunds_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[TradeFacts, str]]: ...


class SellerComplaint(msgspec.Struct, frozen=True):
    """A complaint as the seller's list shows it; ``position`` is the log
    position of its filing. ``outcome``, ``ruled_at`` and ``points`` are those
    of its ruling (null and 0 while the case is open)."""

    complaint_id: str
    trade_id: str
    buyer_id: str
    type: str
    severity: str
    filed_at: UtcTime
    position: int
    escalated_at: UtcTime | None
    outcome: str | None
    ruled_at: UtcTime | None
    points: int


class ComplaintPage(msgspec.Struct, frozen=True):
    complaints: tuple[SellerComplaint, ...]
    next_cursor: str | None


class SellerRefund(msgspec.Struct, frozen=True):
    """A refund request as the seller's list shows it; ``position`` is the log
    position of the request. ``settled_at`` is when it was paid, cancelled or
    closed (null while it is open); ``close_reason`` says why it closed."""

    refund_id: str
    trade_id: str
    buyer_id: str
    amount_minor: int
    reason: str
    with_return: bool
    status: RefundStatus
    requested_at: UtcTime
    position: int
    paid_at: UtcTime | None
    settled_at: UtcTime | None
    close_reason: str | None


class RefundPage(msgspec.Struct, frozen=True):
    refunds: tuple[SellerRefund, ...]
    next_cursor: str | None


def complaints_page(
    view: CasesOfSellers, seller_id: str, cursor: str | None, limit: int
) -> ComplaintPage:
    """The complaints against the seller after the cursor, at most ``limit``."""
    after = _after(cursor, limit)
    found = view.complaints_after(seller_id, after, limit + 1)
    page = [_complaint(c) for c in found[:limit]]
    last = page[-1] if page and len(found) > limit else None
    next_cursor = encode_cursor((last.position, last.complaint_id)) if last else None
    return ComplaintPage(tuple(page), next_cursor)


def refunds_page(
    view: CasesOfSellers, seller_id: str, cursor: str | None, limit: int
) -> RefundPage:
    """The refunds requested of the seller after the cursor, at most ``limit``."""
    after = _after(cursor, limit)
    found = view.refunds_after(seller_id, after, limit + 1)
    page = [_refund(trade, refund_id) for trade, refund_id in found[:limit]]
    last = page[-1] if page and len(found) > limit else None
    next_cursor = encode_cursor((last.position, last.refund_id)) if last else None
    return RefundPage(tuple(page), next_cursor)


def _after(cursor: str | None, limit: int) -> int | None:
    """The position a page starts after (None: the first page)."""
    if not 1 <= limit <= CASE_PAGE_MAX:
        raise ValueError(f"a page is 1-{CASE_PAGE_MAX} items")
    return decode_cursor(cursor)[0] if cursor is not None else None


def _complaint(complaint: ComplaintFacts) -> SellerComplaint:
    return SellerComplaint(
        complaint_id=complaint.complaint_id,
        trade_id=complaint.trade_id,
        buyer_id=complaint.buyer_id,
        type=complaint.type,
        severity=complaint.severity,
        filed_at=complaint.filed.at,
        position=complaint.filed.position,
        escalated_at=complaint.escalated.at if complaint.escalated else None,
        outcome=complaint.outcome,
        ruled_at=complaint.ruled.at if complaint.ruled else None,
        points=complaint.points,
    )


def _refund(trade: TradeFacts, refund_id: str) -> SellerRefund:
    refund = trade.refunds[refund_id]
    return SellerRefund(
        refund_id=refund.refund_id,
        trade_id=trade.trade_id,
        buyer_id=trade.buyer_id,
        amount_minor=refund.amount_minor,
        reason=refund.reason,
        with_return=refund.with_return,
        status=refund.status,
        requested_at=refund.requested.at,
        position=refund.requested.position,
        paid_at=refund.paid.at if refund.paid else None,
        settled_at=refund.settled.at if refund.settled else None,
        close_reason=refund.close_reason,
    )
