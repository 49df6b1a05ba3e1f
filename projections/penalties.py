"""The search-ranking penalty a ranking engine receives, docs/rules.md §6.

``searchable`` is false while a node's ban runs; ``multiplier`` is the
product of the rulebook factors that apply; ``sort_hidden`` is true when a
rate, positive-rate or DSR factor applies; ``demoted_items`` lists item
demotions; every reason names its figure, threshold, ``until`` and up to the
rulebook's number (20) of log positions of the facts behind it.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from ledger.commands import UtcTime
from projections.credit import CreditResult, credit_of
from projections.dsr import DsrResult, dsr_of
from projections.marketplace import Cut, MemberFile, MemberRecords, TradeFacts
from projections.rulebook import Factor, Fraction, Rulebook
from projections.violations import ViolationStanding, violations_of
from projections.windows import in_trailing


class PenaltyReason(msgspec.Struct, frozen=True):
    """A factor or ban that applies, with its figure, threshold, end and the facts behind it."""

    code: str
    figure: float | None = None
    threshold: float | None = None
    until: UtcTime | None = None
    positions: tuple[int, ...] = ()


class Rates(msgspec.Struct, frozen=True):
    paid_trades: int
    refund_rate: float | None
    dispute_rate: float | None
    disputes: int
    complaint_rate: float | None
    refund_positions: tuple[int, ...]
    dispute_positions: tuple[int, ...]
    complaint_positions: tuple[int, ...]


class SellerFigures(msgspec.Struct, frozen=True):
    """The figures the rate-based factors read, computed once per penalty."""

    rates: Rates
    credit: CreditResult
    dsr: DsrResult


class Penalty(msgspec.Struct, frozen=True):
    seller_id: str
    searchable: bool
    multiplier: Fraction
    sort_hidden: bool
    demoted_items: dict[str, UtcTime]
    demoted_items_unlisted: int
    verified: bool
    reasons: tuple[PenaltyReason, ...]


def rates_of(file: MemberFile, cut: Cut, rulebook: Rulebook) -> Rates:
    """Trailing-window rates over the seller's trades paid in the window.

    Fake trades are left out of the denominator and their disputes and
    complaints out of the counts, as if they had never happened.
    """
    days = rulebook.scoring.rates.window_days
    paid = [
        t
        for t in file.as_seller
        if t.paid is not None
        and cut.sees(t.paid)
        and in_trailing(t.paid.at, cut.as_of, days)
        and not cut.sees(t.fake)
    ]
    refunded = [t for t in paid if t.counts_as_refunded(cut)]
    fake = {t.trade_id for t in file.as_seller if cut.sees(t.fake)}
    lost = [
        t
        for t in file.as_seller
        if t.trade_id not in fake
        and t.dispute is not None
        and t.dispute.outcome == "seller_at_fault"
        and t.dispute.ruled is not None
        and cut.sees(t.dispute.ruled)
        and in_trailing(t.dispute.ruled.at, cut.as_of, days)
    ]
    upheld = [
        c
        for c in file.complaints_against
        if c.trade_id not in fake
        and c.outcome == "upheld"
        and c.ruled is not None
        and cut.sees(c.ruled)
        and in_trailing(c.ruled.at, cut.as_of, days)
    ]
    enough = len(paid) >= rulebook.scoring.rates.min_denominator

    def rate(count: int) -> float | None:
        return count / len(paid) if enough else None

    return Rates(
        paid_trades=len(paid),
        refund_rate=rate(len(refunded)),
        dispute_rate=rate(len(lost)),
        disputes=len(lost),
        complaint_rate=rate(len(upheld)),
        refund_positions=_positions(_first_paid_refund(t, cut) for t in refunded),
        dispute_positions=_positions(
            t.dispute.ruled.position for t in lost if t.dispute and t.dispute.ruled
        ),
        complaint_positions=_positions(c.ruled.position for c in upheld if c.ruled),
    )


# The reasons that list facts from the seller's trades behind a figure: a
# penalty computed from tallies (which keep counts, not facts) that has one of
# them is computed again from the seller's file to list those facts.
FIGURE_REASONS = frozenset(
    {"dispute_rate", "refund_rate", "complaint_rate", "positive_rate_180d", "dsr_low"}
)


def penalty_of(file: MemberFile, cut: Cut, rulebook: Rulebook) -> Penalty:
    figures = SellerFigures(
        rates_of(file, cut, rulebook),
        credit_of(file, "seller", cut, rulebook),
        dsr_of(file, cut, rulebook),
    )
    standing = violations_of(file, cut, rulebook)
    return penalty_from(file.member, standing, figures, cut, rulebook)


def penalty_from(
    member: MemberRecords,
    standing: ViolationStanding,
    figures: SellerFigures,
    cut: Cut,
    rulebook: Rulebook,
) -> Penalty:
    """The penalty from the seller's figures, its violation standing and its
    other own facts (no trade is read here)."""
    scoring = rulebook.scoring
    reasons = _ban_reasons(standing, cut)
    factors = _factor_reasons(member, cut, rulebook, figures)
    sort_hidden = False
    for factor, reason in factors:
        sort_hidden = sort_hidden or factor.sort_hidden
        reasons.append(reason)
    multiplier = product(factor.multiplier for factor, _ in factors)
    demoted = _demoted_items(member, cut, rulebook)
    listed = dict(sorted(demoted.items())[: scoring.penalty.demoted_items_listed_max])
    return Penalty(
        seller_id=member.member_id,
        searchable=not standing.active_bans(cut.as_of),
        multiplier=multiplier,
        sort_hidden=sort_hidden,
        demoted_items=listed,
        demoted_items_unlisted=len(demoted) - len(listed),
        verified=cut.sees(member.verified),
        # Up to the rulebook's number of log positions behind each reason.
        reasons=tuple(
            msgspec.structs.replace(
                r, positions=r.positions[: scoring.penalty.reason_positions_max]
            )
            for r in reasons
        ),
    )


def _ban_reasons(standing: ViolationStanding, cut: Cut) -> list[PenaltyReason]:
    until = standing.banned_until(cut.as_of)
    return [
        PenaltyReason(
            code=f"ban_{ban.category}_{ban.action}",
            figure=float(ban.node),
            until=until,
            positions=(ban.position,),
        )
        for ban in standing.active_bans(cut.as_of)
    ]


def _factor_reasons(
    member: MemberRecords, cut: Cut, rulebook: Rulebook, figures: SellerFigures
) -> list[tuple[Factor, PenaltyReason]]:
    penalty = rulebook.scoring.penalty
    applied = []
    for factor in penalty.factors:
        reason = _factor_reason(factor, member, cut, rulebook, figures)
        if reason is not None:
            applied.append((factor, reason))
    return applied


def _factor_reason(
    factor: Factor,
    member: MemberRecords,
    cut: Cut,
    rulebook: Rulebook,
    figures: SellerFigures,
) -> PenaltyReason | None:
    code = factor.code
    rates, credit, dsr = figures.rates, figures.credit, figures.dsr
    if code == "dispute_rate":
        hit = _above(rates.dispute_rate, factor) and rates.disputes >= factor.min_count
        return _rate_reason(factor, rates.dispute_rate, rates.dispute_positions) if hit else None
    if code == "refund_rate":
        hit = _above(rates.refund_rate, factor)
        return _rate_reason(factor, rates.refund_rate, rates.refund_positions) if hit else None
    if code == "complaint_rate":
        hit = _above(rates.complaint_rate, factor)
        return (
            _rate_reason(factor, rates.complaint_rate, rates.complaint_positions) if hit else None
        )
    if code == "positive_rate_180d":
        rate = credit.positive_rate_window
        if rate is None or credit.window_counted < factor.min_count or not _below(rate, factor):
            return None
        days = rulebook.scoring.credit.positive_rate_window_days
        behind = (
            c.record.position
            for c in credit.ratings
            if c.counted
            and c.score != "positive"
            and in_trailing(c.record.succeeded_at, cut.as_of, days)
        )
        return _rate_reason(factor, rate, _positions(behind))
    if code == "dsr_low":
        low = [v for v in dsr.means().values() if v is not None and _below(v, factor)]
        if dsr.count < factor.min_count or not low:
            return None
        return _rate_reason(factor, min(low), dsr.positions)
    if code == "fake_trade_recent":
        days = rulebook.scoring.penalty.fake_trade_window_days
        recent = [
            c
            for c in member.fake_cases
            if cut.sees(c.stamp) and in_trailing(c.stamp.at, cut.as_of, days)
        ]
        if not recent:
            return None
        last = max(c.stamp.at for c in recent)
        return PenaltyReason(
            code=code,
            until=last + timedelta(days=days),
            positions=_positions(c.stamp.position for c in recent),
        )
    return _shop_demotion_reason(member, cut, rulebook)


def _rate_reason(factor: Factor, figure: float | None, positions: tuple[int, ...]) -> PenaltyReason:
    threshold = factor.above if factor.above is not None else factor.below
    return PenaltyReason(code=factor.code, figure=figure, threshold=threshold, positions=positions)


def _above(rate: float | None, factor: Factor) -> bool:
    return rate is not None and factor.above is not None and rate > factor.above


def _below(rate: float, factor: Factor) -> bool:
    return factor.below is not None and rate < factor.below


def _demoted_items(member: MemberRecords, cut: Cut, rulebook: Rulebook) -> dict[str, datetime]:
    """Items demoted at the cut's time; a repeat rolls the end forward."""
    until: dict[str, datetime] = {}
    cheating_days = timedelta(days=rulebook.scoring.search_cheating.item_demotion_days)
    for case in member.fake_cases:
        if cut.sees(case.stamp):
            for item in case.item_ids:
                until[item] = max(until.get(item, case.demoted_until), case.demoted_until)
    for record in member.cheating:
        if cut.sees(record.stamp):
            end = record.stamp.at + cheating_days
            for item in record.item_ids:
                until[item] = max(until.get(item, end), end)
    return {item: end for item, end in until.items() if cut.as_of < end}


def _shop_demotion_reason(
    member: MemberRecords, cut: Cut, rulebook: Rulebook
) -> PenaltyReason | None:
    """The whole shop is demoted when enough distinct items were caught cheating
    within the window; the demotion runs from the latest such record."""
    rules = rulebook.scoring.search_cheating
    seen = sorted((r for r in member.cheating if cut.sees(r.stamp)), key=lambda r: r.stamp.at)
    triggers = []
    for record in seen:
        recent = [
            r
            for r in seen
            if in_trailing(r.stamp.at, record.stamp.at, rules.shop_demotion_window_days)
        ]
        if len({item for r in recent for item in r.item_ids}) >= rules.shop_demotion_distinct_items:
            triggers.append(record)
    span = timedelta(days=rules.shop_demotion_days)
    active = [r for r in triggers if r.stamp.at <= cut.as_of < r.stamp.at + span]
    if not active:
        return None
    behind = {
        r.stamp.position
        for trigger in active
        for r in seen
        if in_trailing(r.stamp.at, trigger.stamp.at, rules.shop_demotion_window_days)
    }
    return PenaltyReason(
        code="shop_demoted",
        until=max(r.stamp.at for r in active) + span,
        positions=_positions(behind),
    )


def _first_paid_refund(trade: TradeFacts, cut: Cut) -> int:
    return min(
        r.paid.position for r in trade.refunds.values() if r.paid is not None and cut.sees(r.paid)
    )


def _positions(positions: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(positions))


def product(multipliers: Iterable[float]) -> float:
    """The factors' product, multiplied as the decimals the rulebook writes
    (0.8 x 0.8 x 0.5 is 0.32, not binary floating point's 0.32000000000000006)."""
    exact = math.prod(
        (fractions.Fraction(repr(m)) for m in multipliers), start=fractions.Fraction(1)
    )
    return float(exact)
