"""Buyer history and tier, docs/rules.md §5.

Fake trades stop counting for the buyer as for the seller: they are left out
of every trade figure (trades, purchases, spend, refunds, disputes, ratings,
tier) except ``fake_trades``, which counts them. Complaints filed are
customer-service cases and count whatever became of the trade. Ratings count
once they show (docs/rules.md §3: hidden ratings count nowhere yet).
"""

from __future__ import annotations

from collections import Counter

import msgspec

from ledger.events import Party
from projections.credit import rating_visible_at
from projections.marketplace import Cut, MemberFile, TradeFacts
from projections.rulebook import BuyerTier, Rulebook
from projections.windows import in_trailing


class BuyerHistory(msgspec.Struct, frozen=True, kw_only=True):
    """A buyer's history and tier (keyword-only fields, so the stamps an answer
    adds to them come first: msgspec writes positional fields before these)."""

    trades: int
    purchases: int
    net_spend_minor: int
    refunds: int
    refunded_minor: int
    refund_reasons: dict[str, int]
    disputes: int
    disputes_won: int
    disputes_lost: int
    complaints_filed: int
    complaints_upheld: int
    complaints_dismissed: int
    ratings_given: int
    ratings_given_negative_share: float | None
    ratings_received: int
    fake_trades: int
    tier: str
    tier_label: str
    window_purchases: int
    window_net_spend_minor: int


def buyer_history(file: MemberFile, cut: Cut, rulebook: Rulebook) -> BuyerHistory:
    scoring = rulebook.scoring
    known = [t for t in file.as_buyer if cut.sees(t.created)]
    fake = [t for t in known if cut.sees(t.fake)]
    real = [t for t in known if not cut.sees(t.fake)]
    purchases = [t for t in real if cut.sees(t.succeeded)]
    refunds = [r for t in real for r in t.refunds.values() if cut.sees(r.paid)]
    disputes = [t.dispute for t in real if t.dispute is not None and cut.sees(t.dispute.escalated)]
    rulings = [d.outcome for d in disputes if cut.sees(d.ruled)]
    complaints = [c for c in file.complaints_filed if cut.sees(c.filed)]
    outcomes = [c.outcome for c in complaints if cut.sees(c.ruled)]
    given = [t.ratings["buyer"] for t in real if _shown(t, "buyer", cut, rulebook)]
    given_own = [r for r in given if not r.default]
    received = [t for t in real if _shown(t, "seller", cut, rulebook)]
    window = [
        t
        for t in purchases
        if t.succeeded is not None
        and in_trailing(t.succeeded.at, cut.as_of, scoring.buyer_tiers.window_days)
        and not t.counts_as_refunded(cut)
    ]
    window_spend = sum(t.amount_minor for t in window)
    tier = tier_of(len(window), window_spend, rulebook)
    negative = sum(1 for r in given_own if r.score_seen(cut) == "negative")
    return BuyerHistory(
        trades=len(real),
        purchases=len(purchases),
        net_spend_minor=sum(t.amount_minor - t.refunded_minor(cut) for t in purchases),
        refunds=len(refunds),
        refunded_minor=sum(r.amount_minor for r in refunds),
        refund_reasons=dict(Counter(r.reason for r in refunds)) if refunds else {},
        disputes=len(disputes),
        disputes_won=rulings.count("seller_at_fault"),
        disputes_lost=rulings.count("not_seller_fault"),
        complaints_filed=len(complaints),
        complaints_upheld=outcomes.count("upheld"),
        complaints_dismissed=outcomes.count("dismissed"),
        ratings_given=len(given_own),
        ratings_given_negative_share=negative / len(given_own) if given_own else None,
        ratings_received=len(received),
        fake_trades=len(fake),
        tier=tier.name,
        tier_label=tier.label,
        window_purchases=len(window),
        window_net_spend_minor=window_spend,
    )


def tier_of(purchases: int, spend_minor: int, rulebook: Rulebook) -> BuyerTier:
    """The higher of the tiers reached by purchases and by net spend."""
    major = rulebook.policy.minor_per_major
    reached = rulebook.scoring.buyer_tiers.tiers[0]
    for tier in rulebook.scoring.buyer_tiers.tiers:
        by_spend = tier.min_net_spend_major > 0 and spend_minor >= tier.min_net_spend_major * major
        if purchases >= tier.min_purchases or by_spend:
            reached = tier
    return reached


def _shown(trade: TradeFacts, rater: Party, cut: Cut, rulebook: Rulebook) -> bool:
    shown = rating_visible_at(trade, rater, cut, rulebook.scoring)
    return shown is not None and shown <= cut.as_of
