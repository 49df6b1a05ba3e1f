"""Penalty rates from per-case step lists equal the reference ``rates_of``.

One seller's facts are drawn as the fold records them and sit on the rules'
edges: orders created at 00:00:00, 12:00 and 23:59:59 local time around a
month end in the rulebook's zone, some exactly one rate window (30 days) later
and a microsecond either side, so that one trade's window exit meets another's
payment; refunds paid or only requested, some just as the trade leaves the
window; disputes and complaints ruled either way, or not yet, inside and just
outside the window; buyer ratings with shop scores, withdrawn or shielded;
fake-trade confirmations before and after everything else. The minimum
denominator is the rulebook's own or a small one, so that rates are both null
and not. Every example is checked at each breakpoint and window exit, a
microsecond either side, and at a few instants drawn at random.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.events import ComplaintOutcome, DisputeOutcome, Dsr, RefundReason
from projections import marketplace as mp
from projections.penalties import Rates, rates_of
from projections.rate_steps import (
    COMPONENTS,
    Case,
    breakpoints,
    cases_of,
    group_steps,
    numbers_read,
    summary_at,
)
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

SELLER = "seller-1"
WINDOW = 30 * DAY  # the rate window of both rulebooks
# 31 January 2024 ends a month.
DAYS = (date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1))
CLOCKS = (time(0, 0, 0), time(12, 0), time(23, 59, 59))
# An order a window later meets the window exit of one paid earlier.
SHIFTS = (0 * DAY, 0 * DAY, WINDOW, WINDOW - MICROSECOND, WINDOW + MICROSECOND)
LATER = (0 * DAY, MICROSECOND, HOUR, 3 * DAY, WINDOW - MICROSECOND, WINDOW, WINDOW + HOUR)
REASONS: tuple[RefundReason, ...] = get_args(RefundReason)
DISPUTE_OUTCOMES: tuple[DisputeOutcome, ...] = get_args(DisputeOutcome)
COMPLAINT_OUTCOMES: tuple[ComplaintOutcome, ...] = get_args(ComplaintOutcome)


class Facts(step_support.FactDrawer):
    """Draws one seller's facts."""

    DAYS, CLOCKS, SHIFTS, LATER = DAYS, CLOCKS, SHIFTS, LATER

    def maybe_later(self, start: datetime) -> mp.Stamp | None:
        """Mostly such a fact, sometimes not (yet)."""
        return self.stamp(self.later(start)) if self.draw(st.integers(0, 3)) else None

    def trade(self, number: int) -> mp.TradeFacts:
        trade = mp.TradeFacts(
            trade_id=f"T{number:02d}",
            buyer_id=self.draw(st.sampled_from(("b1", "b2"))),
            seller_id=SELLER,
            item_id="i1",
            amount_minor=10_000,
            created=self.stamp(self.order_time()),
        )
        if self.draw(st.integers(0, 5)):
            self.pay(trade)
        if self.draw(st.integers(0, 4)) == 0:  # a fake trade counts nowhere: keep it rare
            trade.fake = self.stamp(self.later(trade.created.at))
        return trade

    def pay(self, trade: mp.TradeFacts) -> None:
        paid = trade.paid = self.stamp(trade.created.at + self.draw(st.sampled_from(LATER[:3])))
        if self.draw(st.integers(0, 2)):
            succeeded = trade.succeeded = self.stamp(self.later(paid.at))
            trade.window_closes_at = succeeded.at + timedelta(
                days=self.rulebook.policy.rating.window_days
            )
            self.rate(trade, succeeded.at)
        self.refund(trade, paid.at)

    def refund(self, trade: mp.TradeFacts, paid_at: datetime) -> None:
        for number in range(self.draw(st.sampled_from((0, 1, 1, 2)))):
            requested = self.stamp(self.later(paid_at))
            # A refund is paid, or rejected and then often escalated to a dispute.
            refund_paid = self.stamp(self.later(requested.at)) if self.draw(st.booleans()) else None
            trade.refunds[f"R{number}"] = mp.RefundFacts(
                f"R{number}", requested, 5_000, self.draw(st.sampled_from(REASONS)), refund_paid
            )
            if refund_paid is None and trade.dispute is None and self.draw(st.integers(0, 3)):
                self.dispute(trade, requested.at)

    def dispute(self, trade: mp.TradeFacts, requested_at: datetime) -> None:
        """Escalated on a rejected refund; at most one per trade."""
        escalated = self.stamp(self.later(requested_at))
        ruled = self.maybe_later(escalated.at)
        outcome = self.draw(st.sampled_from(DISPUTE_OUTCOMES)) if ruled else None
        trade.dispute = mp.DisputeFacts(escalated, ruled, outcome)

    def rate(self, trade: mp.TradeFacts, succeeded_at: datetime) -> None:
        """The buyer's rating, perhaps with shop scores, withdrawn or shielded:
        facts the rates must pass by."""
        if self.draw(st.booleans()):
            return
        scores = Dsr(5, 4, 3, 2) if self.draw(st.booleans()) else None
        given = self.stamp(succeeded_at + HOUR)
        rating = mp.RatingFacts(given, self.draw(st.sampled_from(SCORES)), False, scores)
        rating.withdrawn = self.stamp(given.at + DAY) if self.draw(st.integers(0, 3)) == 0 else None
        rating.shielded = self.stamp(given.at + DAY) if self.draw(st.integers(0, 3)) == 0 else None
        trade.ratings["buyer"] = rating

    def complaint(self, trade: mp.TradeFacts) -> mp.ComplaintFacts:
        filed = self.stamp(self.later(trade.created.at))
        ruled = self.maybe_later(filed.at)
        outcome = self.draw(st.sampled_from(COMPLAINT_OUTCOMES)) if ruled else None
        return mp.ComplaintFacts(
            complaint_id=f"C{trade.trade_id}",
            trade_id=trade.trade_id,
            buyer_id=trade.buyer_id,
            seller_id=SELLER,
            type="late_shipment",
            severity="minor",
            filed=filed,
            ruled=ruled,
            outcome=outcome,
            points=3 if outcome == "upheld" else 0,
        )


@st.composite
def seller_file(draw: st.DrawFn, rulebook: Rulebook) -> mp.MemberFile:
    facts = Facts(draw, rulebook)
    trades = [facts.trade(n) for n in range(draw(st.integers(0, 24)))]
    # One case per trade: at most one complaint on each.
    complained = draw(st.lists(st.sampled_from(trades), unique_by=id)) if trades else []
    complaints = [facts.complaint(trade) for trade in complained]
    seller = mp.MemberFacts(SELLER, mp.Stamp(datetime(2023, 1, 1, tzinfo=UTC), 0))
    return mp.MemberFile(seller, trades, [], complaints, [])


def with_min_denominator(data: st.DataObject, rulebook: Rulebook) -> Rulebook:
    """The rulebook, or the same with a small minimum so that rates are often not null."""
    rates = rulebook.scoring.rates
    minimum = data.draw(st.sampled_from((rates.min_denominator, 1, 2, 5)))
    scoring = msgspec.structs.replace(
        rulebook.scoring, rates=msgspec.structs.replace(rates, min_denominator=minimum)
    )
    return msgspec.structs.replace(rulebook, scoring=scoring)


def steps_of(file: mp.MemberFile, rulebook: Rulebook) -> dict[str, tuple[Step, ...]]:
    return {key: group_steps(case, rulebook) for key, case in cases_of(file).items()}


def probe_instants(data: st.DataObject, file: mp.MemberFile, rulebook: Rulebook) -> list[datetime]:
    """Every breakpoint (window exits included) and a microsecond either side,
    and a few instants drawn between the first and a window after the last."""
    edges = [at for case in cases_of(file).values() for at in breakpoints(case, rulebook)]
    around = {edge + shift for edge in edges for shift in (-MICROSECOND, 0 * DAY, MICROSECOND)}
    first = min(edges, default=datetime(2024, 1, 1, tzinfo=UTC))
    span = (max(edges, default=first) + WINDOW - first) // MICROSECOND
    drawn = data.draw(st.lists(st.integers(0, span), max_size=4))
    return sorted(around | {first + offset * MICROSECOND for offset in drawn})


def without_positions(rates: Rates) -> Rates:
    return msgspec.structs.replace(
        rates, refund_positions=(), dispute_positions=(), complaint_positions=()
    )


@per_rulebook
def test_the_summary_from_steps_is_the_reference_rates(name: str, data: st.DataObject) -> None:
    rulebook = with_min_denominator(data, RULEBOOKS[name])
    file = data.draw(seller_file(rulebook))
    steps = steps_of(file, rulebook)
    for as_of in probe_instants(data, file, rulebook):
        expected = without_positions(rates_of(file, mp.Cut(as_of), rulebook))
        assert summary_at(steps, as_of, rulebook) == expected, as_of


def reordered(data: st.DataObject, trade: mp.TradeFacts) -> mp.TradeFacts:
    """The same trade with its refunds recorded in another order."""
    refunds = data.draw(st.permutations(list(trade.refunds.items())))
    return msgspec.structs.replace(trade, refunds=dict(refunds))


@per_rulebook
def test_steps_are_sorted_merged_and_do_not_depend_on_input_order(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    file = data.draw(seller_file(rulebook))
    steps = steps_of(file, rulebook)
    for key, case in cases_of(file).items():
        again = Case(reordered(data, case.trade), case.complaints)
        assert group_steps(again, rulebook) == steps[key]
        instants = [step.instant for step in steps[key]]
        assert instants == sorted(set(instants))
        assert all(any(step.values) and len(step.values) == len(COMPONENTS) for step in steps[key])
    shuffled = msgspec.structs.replace(
        file,
        as_seller=data.draw(st.permutations(file.as_seller)),
        complaints_against=data.draw(st.permutations(file.complaints_against)),
    )
    assert steps_of(shuffled, rulebook) == steps


T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
TAOBAO = RULEBOOKS["taobao-classic"]


def a_paid_trade(number: int = 1, **facts: object) -> mp.TradeFacts:
    fields: dict[str, object] = {
        "trade_id": f"T{number}",
        "buyer_id": "b1",
        "seller_id": SELLER,
        "item_id": "i1",
        "amount_minor": 10_000,
        "created": mp.Stamp(T0, 10 * number),
        "paid": mp.Stamp(T0 + HOUR, 10 * number + 1),
    }
    fields.update(facts)
    return mp.TradeFacts(**fields)  # type: ignore[arg-type]


def upheld_complaint(trade: mp.TradeFacts, ruled_at: datetime) -> mp.ComplaintFacts:
    return mp.ComplaintFacts(
        complaint_id="C1",
        trade_id=trade.trade_id,
        buyer_id=trade.buyer_id,
        seller_id=SELLER,
        type="late_shipment",
        severity="minor",
        filed=mp.Stamp(ruled_at - DAY, 90),
        ruled=mp.Stamp(ruled_at, 91),
        outcome="upheld",
        points=3,
    )


def test_a_paid_trade_counts_from_its_payment_until_it_leaves_the_window() -> None:
    paid_at = T0 + HOUR
    refund_paid = mp.Stamp(paid_at + 2 * DAY, 13)
    refund = mp.RefundFacts("R1", mp.Stamp(paid_at + DAY, 12), 5_000, "damaged", refund_paid)
    trade = a_paid_trade(refunds={"R1": refund})
    assert group_steps(Case(trade), TAOBAO) == (
        Step(paid_at, (1, 0, 0, 0)),
        Step(refund_paid.at, (0, 1, 0, 0)),
        Step(paid_at + WINDOW, (-1, -1, 0, 0)),
    )


def test_a_complaint_drops_out_when_its_trade_is_confirmed_fake() -> None:
    fake_at = T0 + 10 * DAY
    trade = a_paid_trade(fake=mp.Stamp(fake_at, 99))
    complaint = upheld_complaint(trade, T0 + 5 * DAY)
    steps = {trade.trade_id: group_steps(Case(trade, (complaint,)), TAOBAO)}
    assert steps[trade.trade_id] == (
        Step(T0 + HOUR, (1, 0, 0, 0)),
        Step(T0 + 5 * DAY, (0, 0, 0, 1)),
        Step(fake_at, (-1, 0, 0, -1)),
    )
    assert summary_at(steps, fake_at - MICROSECOND, TAOBAO).paid_trades == 1
    assert summary_at(steps, fake_at, TAOBAO).paid_trades == 0


def test_rates_are_null_below_the_minimum_denominator_and_shares_above_it() -> None:
    trades = [a_paid_trade(n) for n in range(1, 21)]
    complaint = upheld_complaint(trades[0], T0 + DAY)
    file = mp.MemberFile(mp.MemberFacts(SELLER, mp.Stamp(T0, 0)), trades, [], [complaint], [])
    steps = steps_of(file, TAOBAO)
    assert summary_at(steps, T0 + DAY, TAOBAO).complaint_rate == 1 / 20
    file.as_seller.pop()
    fewer = steps_of(file, TAOBAO)
    assert summary_at(fewer, T0 + DAY, TAOBAO) == without_positions(
        rates_of(file, mp.Cut(T0 + DAY), TAOBAO)
    )
    assert summary_at(fewer, T0 + DAY, TAOBAO).complaint_rate is None


def test_a_case_holds_one_trade_and_the_complaints_on_it() -> None:
    trade, other = a_paid_trade(1), a_paid_trade(2)
    with pytest.raises(ValueError, match="not on trade"):
        group_steps(Case(trade, (upheld_complaint(other, T0),)), TAOBAO)
    file = mp.MemberFile(
        mp.MemberFacts(SELLER, mp.Stamp(T0, 0)), [trade], [], [upheld_complaint(other, T0)], []
    )
    with pytest.raises(ValueError, match="does not hold"):
        cases_of(file)


@PROPERTY
@given(data=st.data())
def test_steps_depend_only_on_the_numbers_they_read(data: st.DataObject) -> None:
    """The built-in rulebooks differ in most things but agree on these numbers,
    so a view computes each group's steps once for both."""
    taobao, ebay = RULEBOOKS["taobao-classic"], RULEBOOKS["ebay-style"]
    assert numbers_read(taobao) == numbers_read(ebay)
    file = data.draw(seller_file(taobao))
    for group in cases_of(file).values():
        assert group_steps(group, taobao) == group_steps(group, ebay)
