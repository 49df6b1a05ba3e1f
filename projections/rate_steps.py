"""Penalty rates as a sum of step changes, one step list per case: a trade and its complaint.

Why the figure splits into cases. ``rates_of`` (docs/rules.md §6 "Rates", README
rule 19) counts over the seller's trades and the complaints against the seller,
and judges each alone, save for one link: a complaint drops out once its trade
is confirmed fake. A trade is in the denominator when its payment is in the
trailing window and it is not yet confirmed fake; it counts as refunded when, in
addition, a refund on it was paid; its dispute counts when ruled
``seller_at_fault`` in the window and the trade is not fake; a complaint counts
when upheld in the window and its trade is not fake. So a case, one trade with
the complaint filed on it (one case per trade, docs/rules.md §2; more than one would
still be exact), holds everything its counts read, and the denominator and the
counts as of T are sums over the seller's cases of what each adds as of T. The
rates are not sums: ``summary_at`` derives them at read time from the sums, with
the same division and the same minimum denominator as the reference, so they
are equal to the last bit.

Why evaluating a case at its breakpoints is exact. The reference compares the
as-of time only with the instants of the case's facts (payment, refunds paid,
the dispute's ruling, the complaint's ruling, the fake-trade confirmation),
each acting from its own instant on, and with the window bounds: a fact at t is
in the trailing window as of T while ``T - N d < t <= T`` (docs/rules.md §0), so it
enters at t and leaves at ``t + N d``, exclusive. Between two consecutive
breakpoints (those instants and the window exits) nothing the reference reads
changes, so evaluating ``rates_of`` on a file holding the one case at each
breakpoint, and recording what moved, gives the case's part at every instant.
The window exits are steps placed in advance: time passing needs no new fact.

The component vector of a step is ``COMPONENTS``, integer counts only: trades
paid in the window, the refunded among them, disputes lost in the window,
complaints upheld in the window.

What the steps do not answer. They hold the figures as the log knows them now
(a ``Cut`` with no log position): an auditor's ``at_position`` question still
needs the reference. The per-fact lists (``refund_positions``,
``dispute_positions``, ``complaint_positions``) are not part of the steps; they
are to be served as a paginated explanation, and ``summary_at`` leaves them
empty.

Cost. A new fact concerns one case (a fake-trade confirmation: each of its
trades, each its own case). Its case is evaluated again at each of its
breakpoints (at most two per fact: when it acts and, for a fact counted in the
window, when it leaves), each a computation over that single trade and its
complaint: the cost grows with the facts of one trade, never with the seller's
history, and the seller's other cases keep their steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from projections.marketplace import ComplaintFacts, Cut, MemberFacts, MemberFile, Stamp, TradeFacts
from projections.penalties import Rates, rates_of
from projections.rulebook import Rulebook
from projections.steps import Step, steps_from_parts, sum_as_of
from projections.timeline import Vector

COMPONENTS = ("paid_trades", "refunded", "disputes_lost", "complaints_upheld")


class Case(NamedTuple):
    """One of the seller's trades with the complaints filed on it."""

    trade: TradeFacts
    complaints: tuple[ComplaintFacts, ...] = ()


def cases_of(file: MemberFile) -> dict[str, Case]:
    """The seller's cases by trade id. A complaint names its trade, which is
    always one of the seller's; one that is not means the file is damaged."""
    complaints: dict[str, list[ComplaintFacts]] = defaultdict(list)
    for complaint in file.complaints_against:
        complaints[complaint.trade_id].append(complaint)
    unknown = complaints.keys() - {trade.trade_id for trade in file.as_seller}
    if unknown:
        raise ValueError(f"complaints on trades the seller does not hold: {sorted(unknown)}")
    return {
        trade.trade_id: Case(trade, tuple(complaints.get(trade.trade_id, ())))
        for trade in file.as_seller
    }


def numbers_read(rulebook: Rulebook) -> tuple[object, ...]:
    """The rulebook's numbers a case's steps depend on: two rulebooks that agree
    on them give every case the same steps (the minimum denominator only acts
    at read; it is listed so that rulebooks differing in it never share)."""
    rates = rulebook.scoring.rates
    return (rates.window_days, rates.min_denominator)


def breakpoints(case: Case, rulebook: Rulebook) -> list[datetime]:
    """The instants at which the case's part of the figures may change, in order."""
    window = timedelta(days=rulebook.scoring.rates.window_days)
    trade = case.trade
    windowed = [trade.paid, trade.dispute.ruled if trade.dispute else None]
    windowed += [complaint.ruled for complaint in case.complaints]
    refunds = [refund.paid for refund in trade.refunds.values()]
    entries = _instants([*windowed, *refunds, trade.fake])
    exits = {instant + window for instant in _instants(windowed)}
    return sorted({*entries, *exits})


def group_steps(case: Case, rulebook: Rulebook) -> tuple[Step, ...]:
    """One case's step list (see COMPONENTS): sorted by instant, one step per
    instant, no zero steps. Before its first breakpoint a case adds nothing."""
    _check_one_trade(case)
    parts = ((instant, _part(case, instant, rulebook)) for instant in breakpoints(case, rulebook))
    return steps_from_parts(parts, len(COMPONENTS))


def summary_at(
    steps_by_case: Mapping[str, Sequence[Step]], as_of: datetime, rulebook: Rulebook
) -> Rates:
    """The seller's rates as of a time, from the step lists of its cases (each
    sorted by instant, as ``group_steps`` returns it): the figures ``rates_of``
    returns for the same time, with the position lists left empty."""
    return summary_of(sum_as_of(steps_by_case.values(), as_of, len(COMPONENTS)), rulebook)


def summary_of(totals: Vector, rulebook: Rulebook) -> Rates:
    """The rates from the sums of ``COMPONENTS`` (position lists left empty)."""
    paid, refunded, lost, upheld = totals
    enough = paid >= rulebook.scoring.rates.min_denominator

    def rate(count: int) -> float | None:
        return count / paid if enough else None

    return Rates(
        paid_trades=paid,
        refund_rate=rate(refunded),
        dispute_rate=rate(lost),
        disputes=lost,
        complaint_rate=rate(upheld),
        refund_positions=(),
        dispute_positions=(),
        complaint_positions=(),
    )


def _part(case: Case, as_of: datetime, rulebook: Rulebook) -> Vector:
    """What the case adds to the counts as of a time, by the reference itself.
    Each position list holds one position per fact counted, so its length is the count."""
    rates = rates_of(_file_of(case), Cut(as_of), rulebook)
    return (
        rates.paid_trades,
        len(rates.refund_positions),
        rates.disputes,
        len(rates.complaint_positions),
    )


def _file_of(case: Case) -> MemberFile:
    """A file holding this one case; the seller's own facts play no part in the rates."""
    trade = case.trade
    seller = MemberFacts(trade.seller_id, trade.created)
    return MemberFile(seller, [trade], [], list(case.complaints), [])


def _check_one_trade(case: Case) -> None:
    strays = sorted(c.complaint_id for c in case.complaints if c.trade_id != case.trade.trade_id)
    if strays:
        raise ValueError(f"complaints {strays} are not on trade {case.trade.trade_id}")


def _instants(stamps: Iterable[Stamp | None]) -> list[datetime]:
    return sorted({stamp.at for stamp in stamps if stamp is not None})
