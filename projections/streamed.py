"""Figures of a big member at any cut, from its trades read page by page.

What the tallies cannot answer — a figure at a log position (an auditor's
"what did the log hold at P"), or under a rulebook the view keeps no tallies
for — is computed from the member's facts. For a member the view tallies (a
long history), credit and shop scores are streamed instead of loading the
member's file: its trades are read in creation order a page at a time and
summed as they come (``credit.CreditSums``, ``dsr.DsrSums``), so memory holds
one page and its pairs' context, however long the history; the time is still
the history's.
"""

from __future__ import annotations

from ledger.events import Party
from projections.credit import CreditResult, CreditSums
from projections.dsr import DsrResult, DsrSums
from projections.explanations import EXPLANATION_PAGE_MAX, TradesInOrder, credit_page
from projections.marketplace import Cut
from projections.rulebook import Rulebook
from projections.timeline import micros

# Pages a streamed figure reads at most: 10^5 pages of 1,000 ratings or trades.
STREAMED_PAGES_MAX = 100_000
TRADES_PER_PAGE = 1_000


class StreamTooLongError(RuntimeError):
    """A member's history outgrew ``STREAMED_PAGES_MAX`` pages."""


def credit_streamed(
    view: TradesInOrder,
    member_id: str,
    role: Party,
    cut: Cut,
    rulebook: Rulebook,
    *,
    page_size: int = EXPLANATION_PAGE_MAX,
) -> CreditResult:
    """``credit_of`` for the member, from the explanation's pages (``ratings`` left empty)."""
    sums = CreditSums(cut.as_of, rulebook.scoring)
    cursor = None
    for _ in range(STREAMED_PAGES_MAX):
        page = credit_page(view, member_id, role, cut, rulebook, cursor=cursor, limit=page_size)
        sums.add(page.ratings)
        if page.next_cursor is None:
            return sums.result()
        cursor = page.next_cursor
    raise StreamTooLongError(
        f"the ratings of {member_id} fill more than {STREAMED_PAGES_MAX} pages"
    )


def dsr_streamed(
    view: TradesInOrder,
    seller_id: str,
    cut: Cut,
    rulebook: Rulebook,
    *,
    page_size: int = TRADES_PER_PAGE,
) -> DsrResult:
    """``dsr_of`` for the seller, from its trades in creation order (``positions`` left empty)."""
    sums = DsrSums(cut, rulebook)
    after = None
    for _ in range(STREAMED_PAGES_MAX):
        trades = view.trades_after(seller_id, "seller", after, page_size)
        sums.add(trades)
        if len(trades) < page_size:
            return sums.result()
        last = trades[-1]
        after = (micros(last.created.at), last.trade_id)
    raise StreamTooLongError(f"the trades of {seller_id} fill more than {STREAMED_PAGES_MAX} pages")
