"""Buyer history from per-trade and per-complaint step lists equals the reference.

The facts are drawn as the fold records them and sit on the rules' edges:
orders created at 23:59:59 and 00:00:00 local time around month ends in the
rulebook's zone, later orders exactly one tier window (365 days) after earlier
ones and a microsecond either side, so that one trade's window end meets
another's facts; amounts around the tier table's spend thresholds; refunds
paid or only requested, before and after success; disputes, ratings shown or
still hidden, revised, withdrawn or shielded; fake-trade confirmations before
and after everything else. Every example is checked at each breakpoint and
window end, one microsecond either side, and at a few random instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.events import ComplaintOutcome, DisputeOutcome, Party, RefundReason, Score
from projections import marketplace as mp
from projections.buyer_steps import (
    COMPONENTS,
    breakpoints,
    group_steps,
    groups_of,
    numbers_read,
    summary_at,
)
from projections.buyers import buyer_history
from projections.rulebook import Rulebook
from projections.steps import Step
from tests.unit import step_support
from tests.unit.step_support import (
    DAY,
    HOUR,
    MICROSECOND,
    PROPERTY,
    RULEBOOKS,
    SCORES,
    per_rulebook,
)

BUYER = "buyer-1"
US = MICROSECOND
YEAR = timedelta(days=365)  # the tier window of both rulebooks
DEFAULT_SCORE: Score = "positive"
REASONS: tuple[RefundReason, ...] = get_args(RefundReason)
# Month ends: 31 January, 29 February (a leap year) and 31 March 2024.
DAYS = (date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 29), date(2024, 3, 31))
CLOCKS = (time(0, 0, 0), time(23, 59, 59), time(12, 0))
# An order in the second year meets the window end of one in the first.
YEARS = (0 * DAY, 0 * DAY, YEAR, YEAR - US, YEAR + US)
LATER = (0 * DAY, US, HOUR, 3 * DAY, 16 * DAY, 200 * DAY, YEAR, YEAR + HOUR)
# Around the spend thresholds of 1,000 and 5,000 major units, in minor units.
AMOUNTS = (100, 99_999, 100_000, 100_001, 250_000, 500_000, 2_000_000)


class Facts(step_support.FactDrawer):
    """Draws one buyer's facts."""

    DAYS, CLOCKS, SHIFTS, LATER = DAYS, CLOCKS, YEARS, LATER

    def maybe_later(self, start: datetime) -> mp.Stamp | None:
        """Mostly no such fact."""
        return self.stamp(self.later(start)) if self.draw(st.integers(0, 2)) == 0 else None

    def paid_or_not(self, requested_at: datetime) -> mp.Stamp | None:
        """Mostly paid: a refund only requested counts nowhere."""
        return self.stamp(self.later(requested_at)) if self.draw(st.integers(0, 3)) else None

    def trade(self, number: int) -> mp.TradeFacts:
        trade = mp.TradeFacts(
            trade_id=f"T{number}",
            buyer_id=BUYER,
            seller_id=self.draw(st.sampled_from(("s1", "s2"))),
            item_id="i1",
            amount_minor=self.draw(st.sampled_from(AMOUNTS)),
            created=self.stamp(self.order_time()),
        )
        if self.draw(st.integers(0, 4)):
            self.pay(trade)
        if self.draw(st.integers(0, 4)) == 0:  # a fake trade counts nowhere else: keep it rare
            trade.fake = self.stamp(self.later(trade.created.at))
        return trade

    def pay(self, trade: mp.TradeFacts) -> None:
        trade.paid = self.stamp(self.later(trade.created.at))
        if self.draw(st.integers(0, 3)):
            succeeded = self.stamp(self.later(trade.paid.at))
            trade.succeeded = succeeded
            trade.window_closes_at = succeeded.at + timedelta(
                days=self.rulebook.policy.rating.window_days
            )
            self.rate(trade, "buyer")
            self.rate(trade, "seller")
        else:
            trade.closed, trade.close_reason = self.maybe_later(trade.paid.at), "refunded"
        self.refund(trade)

    def refund(self, trade: mp.TradeFacts) -> None:
        if trade.paid is None:
            return
        left = trade.amount_minor
        for number in range(self.draw(st.integers(0, 2))):
            amount = self.draw(st.sampled_from((left, left // 2 or 1, 1)))
            requested = self.stamp(self.later(trade.paid.at))
            trade.refunds[f"R{number}"] = mp.RefundFacts(
                f"R{number}",
                requested,
                amount,
                self.draw(st.sampled_from(REASONS)),
                self.paid_or_not(requested.at),
            )
            if number == 0 and self.draw(st.booleans()):
                self.dispute(trade, requested.at)
            left = max(left - amount, 1)

    def dispute(self, trade: mp.TradeFacts, requested_at: datetime) -> None:
        escalated = self.stamp(self.later(requested_at))
        ruled = self.maybe_later(escalated.at)
        outcomes: tuple[DisputeOutcome, ...] = get_args(DisputeOutcome)
        outcome = self.draw(st.sampled_from(outcomes)) if ruled else None
        trade.dispute = mp.DisputeFacts(escalated, ruled, outcome)

    def rate(self, trade: mp.TradeFacts, rater: Party) -> None:
        """A rating within the window, a default at its close, or none yet."""
        if trade.succeeded is None or trade.window_closes_at is None:
            return
        kind = self.draw(st.sampled_from(("own", "default", "none")))
        if kind == "none":
            return
        allowed = (
            SCORES if rater == "buyer" else self.rulebook.scoring.credit.seller_to_buyer_scores
        )
        if kind == "default":
            given_at, score = trade.window_closes_at, DEFAULT_SCORE
        else:
            offset = self.draw(st.sampled_from((0 * DAY, US, HOUR, 3 * DAY)))
            given_at, score = trade.succeeded.at + offset, self.draw(st.sampled_from(allowed))
        rating = mp.RatingFacts(self.stamp(given_at), score, kind == "default")
        rating.revised = self.maybe_later(given_at)
        rating.revised_score = self.draw(st.sampled_from(SCORES)) if rating.revised else None
        rating.withdrawn = self.maybe_later(given_at)
        rating.shielded = self.maybe_later(given_at)
        trade.ratings[rater] = rating

    def complaint(self, number: int, trade: mp.TradeFacts) -> mp.ComplaintFacts:
        filed = self.stamp(self.later(trade.created.at))
        ruled = self.maybe_later(filed.at)
        outcomes: tuple[ComplaintOutcome, ...] = get_args(ComplaintOutcome)
        outcome = self.draw(st.sampled_from(outcomes)) if ruled else None
        return mp.ComplaintFacts(
            complaint_id=f"C{number}",
            trade_id=trade.trade_id,
            buyer_id=BUYER,
            seller_id=trade.seller_id,
            type="not_as_described",
            severity="general",
            filed=filed,
            ruled=ruled,
            outcome=outcome,
            points=3 if outcome == "upheld" else 0,
        )


@st.composite
def buyer_file(draw: st.DrawFn, rulebook: Rulebook) -> mp.MemberFile:
    facts = Facts(draw, rulebook)
    trades = [facts.trade(n) for n in range(draw(st.integers(0, 8)))]
    complaints = [
        facts.complaint(n, draw(st.sampled_from(trades)))
        for n in range(draw(st.integers(0, 3)) if trades else 0)
    ]
    member = mp.MemberFacts(BUYER, mp.Stamp(datetime(2023, 1, 1, tzinfo=UTC), 0))
    return mp.MemberFile(member, [], trades, [], complaints)


def steps_of(file: mp.MemberFile, rulebook: Rulebook) -> dict[str, tuple[Step, ...]]:
    return {key: group_steps(group, rulebook) for key, group in groups_of(file).items()}


def probe_instants(data: st.DataObject, file: mp.MemberFile, rulebook: Rulebook) -> list[datetime]:
    """Every breakpoint (window ends included) and a microsecond either side,
    and a few instants drawn between the first and a year after the last."""
    edges = [at for group in groups_of(file).values() for at in breakpoints(group, rulebook)]
    around = {edge + shift for edge in edges for shift in (-US, 0 * US, US)}
    first = min(edges, default=datetime(2024, 1, 1, tzinfo=UTC))
    span = (max(edges, default=first) + YEAR - first) // US
    drawn = data.draw(st.lists(st.integers(0, span), max_size=4))
    return sorted(around | {first + offset * US for offset in drawn})


@per_rulebook
def test_the_summary_from_steps_is_the_reference_history(name: str, data: st.DataObject) -> None:
    rulebook = RULEBOOKS[name]
    file = data.draw(buyer_file(rulebook))
    steps = steps_of(file, rulebook)
    for as_of in probe_instants(data, file, rulebook):
        expected = msgspec.structs.asdict(buyer_history(file, mp.Cut(as_of), rulebook))
        assert msgspec.structs.asdict(summary_at(steps, as_of, rulebook)) == expected, as_of


def reordered(data: st.DataObject, trade: mp.TradeFacts) -> mp.TradeFacts:
    """The same trade with its refunds and ratings recorded in another order."""
    refunds = data.draw(st.permutations(list(trade.refunds.items())))
    ratings = data.draw(st.permutations(list(trade.ratings.items())))
    return msgspec.structs.replace(trade, refunds=dict(refunds), ratings=dict(ratings))


@per_rulebook
def test_steps_are_sorted_merged_and_do_not_depend_on_input_order(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    file = data.draw(buyer_file(rulebook))
    steps = steps_of(file, rulebook)
    for key, group in groups_of(file).items():
        if isinstance(group, mp.TradeFacts):
            assert group_steps(reordered(data, group), rulebook) == steps[key]
        instants = [step.instant for step in steps[key]]
        assert instants == sorted(set(instants))
        assert all(any(step.values) and len(step.values) == len(COMPONENTS) for step in steps[key])
    shuffled = msgspec.structs.replace(
        file,
        as_buyer=data.draw(st.permutations(file.as_buyer)),
        complaints_filed=data.draw(st.permutations(file.complaints_filed)),
    )
    assert steps_of(shuffled, rulebook) == steps


T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
TAOBAO = RULEBOOKS["taobao-classic"]


def a_purchase(number: int = 1, amount_minor: int = 100_000) -> mp.TradeFacts:
    return mp.TradeFacts(
        trade_id=f"T{number}",
        buyer_id=BUYER,
        seller_id="s1",
        item_id="i1",
        amount_minor=amount_minor,
        created=mp.Stamp(T0, 1),
        paid=mp.Stamp(T0 + HOUR, 2),
        succeeded=mp.Stamp(T0 + DAY, 3),
        window_closes_at=T0 + 16 * DAY,
    )


def vector(**figures: int) -> tuple[int, ...]:
    return tuple(figures.get(name, 0) for name in COMPONENTS)


def test_a_purchase_enters_the_tier_window_at_success_and_leaves_a_year_later() -> None:
    trade = a_purchase()
    spend = trade.amount_minor
    assert group_steps(trade, TAOBAO) == (
        Step(T0, vector(trades=1)),
        Step(
            T0 + DAY,
            vector(
                purchases=1, net_spend_minor=spend, window_purchases=1, window_net_spend_minor=spend
            ),
        ),
        Step(T0 + DAY + YEAR, vector(window_purchases=-1, window_net_spend_minor=-spend)),
    )


def test_a_refund_paid_lowers_net_spend_and_takes_the_purchase_out_of_the_tier() -> None:
    trade = a_purchase()
    paid_at = T0 + 5 * DAY
    trade.refunds["R1"] = mp.RefundFacts(
        "R1", mp.Stamp(T0 + 2 * DAY, 4), 30_000, "damaged", mp.Stamp(paid_at, 5)
    )
    assert group_steps(trade, TAOBAO)[2] == Step(
        paid_at,
        vector(
            net_spend_minor=-30_000,
            refunded_minor=30_000,
            refunds_damaged=1,
            window_purchases=-1,
            window_net_spend_minor=-100_000,
        ),
    )


def test_the_tier_follows_the_window_and_a_fake_trade_counts_only_as_fake() -> None:
    trades = [a_purchase(n, amount_minor=20_000) for n in range(5)]
    file = mp.MemberFile(mp.MemberFacts(BUYER, mp.Stamp(T0, 0)), [], trades, [], [])
    steps = steps_of(file, TAOBAO)
    assert summary_at(steps, T0 + DAY, TAOBAO).tier == "junior"  # five purchases
    assert summary_at(steps, T0 + DAY + YEAR, TAOBAO).tier == "novice"
    trades[0].fake = mp.Stamp(T0 + 10 * DAY, 9)
    steps = steps_of(file, TAOBAO)
    after = summary_at(steps, T0 + 10 * DAY, TAOBAO)
    assert (after.tier, after.trades, after.purchases, after.fake_trades) == ("novice", 4, 4, 1)


def test_an_unknown_refund_reason_is_refused() -> None:
    trade = a_purchase()
    trade.refunds["R1"] = mp.RefundFacts(
        "R1", mp.Stamp(T0 + 2 * DAY, 4), 1, "lost", mp.Stamp(T0 + 3 * DAY, 5)
    )
    with pytest.raises(ValueError, match="refund reasons outside the known list"):
        group_steps(trade, TAOBAO)


@PROPERTY
@given(data=st.data())
def test_steps_depend_only_on_the_numbers_they_read(data: st.DataObject) -> None:
    """The built-in rulebooks differ in most things but agree on these numbers,
    so a view computes each group's steps once for both."""
    taobao, ebay = RULEBOOKS["taobao-classic"], RULEBOOKS["ebay-style"]
    assert numbers_read(taobao) == numbers_read(ebay)
    file = data.draw(buyer_file(taobao))
    for group in groups_of(file).values():
        assert group_steps(group, taobao) == group_steps(group, ebay)
