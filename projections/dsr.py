"""Shop scores (DSR), docs/rules.md §4.

Each dimension is the plain mean of the buyer's scores on visible ratings
whose trade succeeded in the trailing window (180 days); only a pair's first
3 DSR-bearing trades, by creation time, in a calendar month count; fake trades
drop out. Decision where §4 is silent: a shielded or withdrawn rating's
scores drop out too (a shielded rating "scores nothing").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

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
    sums = DsrSums(cut, rulebook, positions=True)
    sums.add(sorted(file.as_seller, key=lambda t: (t.created.at, t.trade_id)))
    return sums.result()


class DsrSums:
    """The shop scores of a seller's trades fed in creation order (then trade
    id), summed as they come: holding only the current calendar month's
    pair counts, and the positions counted when ``positions`` asks for them."""

    def __init__(self, cut: Cut, rulebook: Rulebook, *, positions: bool = False) -> None:
        self.cut, self.rulebook = cut, rulebook
        self.keep_positions = positions
        self.month: tuple[int, int] | None = None
        self.taken: dict[str, int] = defaultdict(int)  # the month's DSR-bearing trades per buyer
        self.totals = dict.fromkeys(DIMENSIONS, 0)
        self.count = 0
        self.positions: list[int] = []

    def add(self, trades: Iterable[TradeFacts]) -> None:
        scoring = self.rulebook.scoring
        for trade in trades:
            if not bears_dsr(trade, self.cut, self.rulebook):
                continue
            month = calendar_month(trade.created.at, scoring.zone)
            if month != self.month:
                self.month, self.taken = month, defaultdict(int)
            if self.taken[trade.buyer_id] >= scoring.dsr.first_trades_per_pair_month:
                continue
            self.taken[trade.buyer_id] += 1
            succeeded = trade.succeeded
            if succeeded is None or not in_trailing(
                succeeded.at, self.cut.as_of, scoring.dsr.window_days
            ):
                continue
            rating = trade.ratings["buyer"]
            scores = rating.dsr
            if scores is None:  # bears_dsr has seen to it; this tells the type checker
                continue
            self.count += 1
            for dimension in DIMENSIONS:
                self.totals[dimension] += getattr(scores, dimension)
            if self.keep_positions:
                self.positions.append(rating.given.position)

    def result(self) -> DsrResult:
        means = {d: self.totals[d] / self.count if self.count else None for d in DIMENSIONS}
        return DsrResult(**means, count=self.count, positions=tuple(self.positions))


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
