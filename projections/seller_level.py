"""eBay-style seller levels from defects (docs/rules.md §7), for rulebooks that define them.

Defects are trades closed ``seller_cancelled`` or ``out_of_stock`` and
disputes ruled ``seller_at_fault``. The evaluation window is the short one
(90 days) when the seller had enough trades in it (400), else the long one
(365 days). Trades are counted by creation time; fake trades are left out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import msgspec

from projections.marketplace import Cut, MemberFile, TradeFacts
from projections.rulebook import Rulebook, SellerLevelScoring
from projections.windows import in_trailing

LevelName = Literal["top_rated", "above_standard", "below_standard"]
DEFECT_CLOSE_REASONS = frozenset({"seller_cancelled", "out_of_stock"})


class SellerLevel(msgspec.Struct, frozen=True):
    level: LevelName
    window_days: int
    trades: int
    defects: int
    defect_rate: float | None
    defect_buyers: int
    sales_minor: int
    positions: tuple[int, ...]


def seller_level_of(file: MemberFile, cut: Cut, rulebook: Rulebook) -> SellerLevel | None:
    rules = rulebook.scoring.seller_level
    if rules is None:
        return None
    trades = [t for t in file.as_seller if cut.sees(t.created) and not cut.sees(t.fake)]
    short = [t for t in trades if in_trailing(t.created.at, cut.as_of, rules.short_window_days)]
    days = (
        rules.short_window_days
        if len(short) >= rules.short_window_min_trades
        else rules.long_window_days
    )
    window = [t for t in trades if in_trailing(t.created.at, cut.as_of, days)]
    defects = [(t, p) for t in trades for p in _defect_positions(t, cut, days)]
    buyers = len({t.buyer_id for t, _ in defects})
    rate = len(defects) / len(window) if window else None
    sales = sum(
        t.amount_minor - t.refunded_minor(cut)
        for t in trades
        if t.succeeded is not None
        and cut.sees(t.succeeded)
        and in_trailing(t.succeeded.at, cut.as_of, rules.top_rated_sales_window_days)
    )
    yearly = [
        t for t in trades if in_trailing(t.created.at, cut.as_of, rules.top_rated_sales_window_days)
    ]
    seniority_days = (cut.as_of - file.member.registered.at) / timedelta(days=1)
    top = (
        (
            (rate or 0.0) <= rules.top_rated_max_defect_rate
            or buyers <= rules.top_rated_max_defect_buyers
        )
        and len(yearly) >= rules.top_rated_min_trades
        and sales >= rules.top_rated_min_sales_major * rulebook.policy.minor_per_major
        and seniority_days >= rules.top_rated_min_days_registered
    )
    level = "top_rated" if top else _lower_level(rules, rate, buyers)
    return SellerLevel(
        level=level,
        window_days=days,
        trades=len(window),
        defects=len(defects),
        defect_rate=rate,
        defect_buyers=buyers,
        sales_minor=sales,
        positions=tuple(
            sorted(p for _, p in defects)[: rulebook.scoring.penalty.reason_positions_max]
        ),
    )


def _defect_positions(trade: TradeFacts, cut: Cut, days: int) -> list[int]:
    found = []
    if (
        trade.closed is not None
        and cut.sees(trade.closed)
        and trade.close_reason in DEFECT_CLOSE_REASONS
        and in_trailing(trade.closed.at, cut.as_of, days)
    ):
        found.append(trade.closed.position)
    ruled = trade.dispute.ruled if trade.dispute is not None else None
    if (
        trade.dispute is not None
        and ruled is not None
        and cut.sees(ruled)
        and trade.dispute.outcome == "seller_at_fault"
        and in_trailing(ruled.at, cut.as_of, days)
    ):
        found.append(ruled.position)
    return found


def _lower_level(rules: SellerLevelScoring, rate: float | None, defect_buyers: int) -> LevelName:
    below = (
        rate is not None
        and rate > rules.below_standard_min_defect_rate
        and defect_buyers >= rules.below_standard_min_defect_buyers
    )
    return "below_standard" if below else "above_standard"
