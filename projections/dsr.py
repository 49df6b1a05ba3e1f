"""Shop scores (DSR), docs/rules.md §4.

Each dimension is the plain mean of the buyer's scores on visible ratings
whose trade succeeded in the trailing window (180 days); only a pair's first
3 DSR-bearing trades, by creation time, in a calendar month count; fake trades
drop out. Decision where §4 is silent: a shielded or withdrawn rating's
scores drop out too (a shielded rating "scores nothing").
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from projections.credit import rating_visible_at
from projections.marketplace import Cut, MemberFile, TradeFacts
from projections.rulebook import Rulebook
from projections.windows import calendar_month, in_trailing

DIMENSIONS = ("as_described", "service", "shipping_speed", "logistics")


class DsrResult(msgspec.Struct, frozen=True):
    as_described: float | None
    service: float | None
    shipping_speed: float | None
    logistics: float | None
    count: int
    positions: tuple[int, ...]

    def means(self) -> dict[str, float | None]:
        return {d: getattr(self, d) for d in DIMENSIONS}


def dsr_of(file: MemberFile, cut: Cut, rulebook: Rulebook) -> DsrResult:
    scoring = rulebook.scoring
    bearing = sorted(
        (t for t in file.as_seller if bears_dsr(t, cut, rulebook)),
        key=lambda t: (t.created.at, t.trade_id),
    )
    taken: dict[tuple[str, tuple[int, int]], int] = defaultdict(int)
    chosen: list[TradeFacts] = []
    for trade in bearing:
        pair_month = (trade.buyer_id, calendar_month(trade.created.at, scoring.zone))
        if taken[pair_month] < scoring.dsr.first_trades_per_pair_month:
            taken[pair_month] += 1
            chosen.append(trade)
    recent = [
        t
        for t in chosen
        if t.succeeded is not None
        and in_trailing(t.succeeded.at, cut.as_of, scoring.dsr.window_days)
    ]
    scores = [t.ratings["buyer"].dsr for t in recent]
    means: dict[str, float | None] = {}
    for dimension in DIMENSIONS:
        values = [getattr(s, dimension) for s in scores if s is not None]
        means[dimension] = sum(values) / len(values) if values else None
    return DsrResult(
        **means,
        count=len(recent),
        positions=tuple(t.ratings["buyer"].given.position for t in recent),
    )


def bears_dsr(trade: TradeFacts, cut: Cut, rulebook: Rulebook) -> bool:
    """Whether the buyer's shop scores on this trade may count as the cut sees it,
    before the first-trades-per-pair-month rule and the window."""
    rating = trade.ratings.get("buyer")
    if rating is None or rating.dsr is None or not cut.sees(rating.given):
        return False
    if cut.sees(trade.fake) or cut.sees(rating.shielded) or cut.sees(rating.withdrawn):
        return False
    shown = rating_visible_at(trade, "buyer", cut, rulebook.scoring)
    return shown is not None and shown <= cut.as_of
