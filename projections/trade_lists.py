"""A member's trades page by page, in the order they were created: a seller's
orders, a buyer's purchases, each with its refunds and complaints.

A page reads the view's index of the member's trades from the cursor on
(creation time, then trade id), so a page costs the same however long the
history; ``next_cursor`` is null on the last page. Cursors are those of the
credit explanation (``projections.explanations``).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from ledger.commands import UtcTime
from ledger.events import Party
from projections.explanations import decode_cursor, encode_cursor
from projections.marketplace import RefundFacts, TradeFacts
from projections.timeline import micros

TRADE_PAGE_MAX = 1_000
TRADE_PAGE_DEFAULT = 100


class TradesOfMembers(Protocol):
    def trades_after(
        self, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[TradeFacts]: ...


class RefundSummary(msgspec.Struct, frozen=True):
    refund_id: str
    amount_minor: int
    reason: str
    requested_at: UtcTime
    paid_at: UtcTime | None


class TradeSummary(msgspec.Struct, frozen=True):
    """A trade as a list shows it; ``position`` is the log position of its creation."""

    trade_id: str
    buyer_id: str
    seller_id: str
    item_id: str
    amount_minor: int
    created_at: UtcTime
    position: int
    paid_at: UtcTime | None
    succeeded_at: UtcTime | None
    closed_at: UtcTime | None
    close_reason: str | None
    refunds: tuple[RefundSummary, ...]
    disputed: bool
    complaint_ids: tuple[str, ...]
    fake: bool


class TradePage(msgspec.Struct, frozen=True):
    trades: tuple[TradeSummary, ...]
    next_cursor: str | None


def trades_page(
    view: TradesOfMembers, member_id: str, role: Party, cursor: str | None, limit: int
) -> TradePage:
    """The member's trades in ``role`` after the cursor, at most ``limit``."""
    if not 1 <= limit <= TRADE_PAGE_MAX:
        raise ValueError(f"a page is 1-{TRADE_PAGE_MAX} trades")
    after = decode_cursor(cursor) if cursor is not None else None
    found = view.trades_after(member_id, role, after, limit + 1)
    page = found[:limit]
    more = len(found) > limit
    last = page[-1] if page else None
    next_cursor = encode_cursor((micros(last.created.at), last.trade_id)) if more and last else None
    return TradePage(tuple(_summary(t) for t in page), next_cursor)


def _summary(trade: TradeFacts) -> TradeSummary:
    return TradeSummary(
        trade_id=trade.trade_id,
        buyer_id=trade.buyer_id,
        seller_id=trade.seller_id,
        item_id=trade.item_id,
        amount_minor=trade.amount_minor,
        created_at=trade.created.at,
        position=trade.created.position,
        paid_at=trade.paid.at if trade.paid else None,
        succeeded_at=trade.succeeded.at if trade.succeeded else None,
        closed_at=trade.closed.at if trade.closed else None,
        close_reason=trade.close_reason,
        refunds=tuple(_refund(r) for r in trade.refunds.values()),
        disputed=trade.dispute is not None,
        complaint_ids=tuple(trade.complaint_ids),
        fake=trade.fake is not None,
    )


def _refund(refund: RefundFacts) -> RefundSummary:
    paid = refund.paid.at if refund.paid else None
    return RefundSummary(
        refund.refund_id, refund.amount_minor, refund.reason, refund.requested.at, paid
    )
