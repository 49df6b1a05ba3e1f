"""Shop scores (DSR) as a sum of step changes, one step list per pair and month.

Why the figure splits into groups. Every rule of docs/rules.md §4 (and README rule
18) looks at one trade or at one (seller, buyer) pair's trades created in one
calendar month of the rulebook's zone. Whether a trade's buyer scores may count
depends on that trade alone: the buyer's rating with scores, when it shows
(from both sides' ratings of the trade), and whether the trade was confirmed
fake or the rating shielded or withdrawn. The first-3 rule then ranks, by
creation time, the trades that may count within one pair and month, and the
trailing window follows each trade's own success time. A trade's creation time
never changes, so it never moves from its pair-month. The trades counted as of
T are therefore the union over pair-months of each pair-month's counted trades,
and the count and per-dimension score sums are sums over pair-months. The group
is the pair-month rather than the whole pair because nothing couples two months
of a pair, and a smaller group makes a new fact cheaper.

Within a group, the counted trades change only at the instants of its facts
(the buyer's rating given, shielded or withdrawn, the seller's rating given,
the fake-trade confirmation) and at the instants its ratings show, as the
facts known at each of those instants tell. Between two such breakpoints
nothing changes, so evaluating the group at each breakpoint with the reference
rule (``bears_dsr`` and the first-3 ranking) and recording what each trade adds
gives the group's figures at every instant exactly. What a counted trade adds
holds while it is in the window (docs/rules.md §0: from its success until success +
window days, exclusive), so a change becomes a step up when it takes effect (or
at the success, if later) and a step back down when the trade leaves the
window. Revisions and refunds play no part in shop scores.

The component vector of a step is ``COMPONENTS``: the number of counted ratings
in the window, then the sum of their scores per dimension. Only integer counts
and sums are kept; ``summary_at`` divides them at read time, the same division
``dsr_of`` does, so the means are equal to the last bit. ``positions`` (which
ratings count) are not part of the steps: that per-rating explanation is to be
served as its own paginated list, and ``summary_at`` leaves it empty.

The steps describe the log as it stands: every fact at every log position. A
figure as of an earlier log position is still answered by ``dsr_of``.

Cost: a trade has at most 7 breakpoints (5 facts, and the instant its rating
shows before and after the seller's rating), and whether it bears shop scores
changes only at those, so each trade is judged at most 7 times; at each of
the group's breakpoints the first-trades rule walks the trades in creation
order only until it has its first ones (``_Bearing``). A new fact costs its
own pair-month's group, whose new steps replace the old ones; the seller's
other buyers and months are untouched.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from projections.credit import rating_visible_at
from projections.dsr import DIMENSIONS, DsrResult, bears_dsr
from projections.marketplace import Cut, TradeFacts
from projections.rulebook import Rulebook
from projections.steps import Step, grouped
from projections.timeline import Vector, add, subtract, sum_of, zeros
from projections.windows import calendar_month

COMPONENTS = ("count", *DIMENSIONS)
_NOTHING = zeros(len(COMPONENTS))

PairMonth = tuple[str, tuple[int, int]]  # buyer id, (year, month) of creation in the zone


def pair_month(trade: TradeFacts, rulebook: Rulebook) -> PairMonth:
    """The group a seller's trade belongs to, for good."""
    return (trade.buyer_id, calendar_month(trade.created.at, rulebook.scoring.zone))


def by_pair_month(
    trades: Iterable[TradeFacts], rulebook: Rulebook
) -> dict[PairMonth, list[TradeFacts]]:
    """One seller's trades grouped by buyer and calendar month of creation."""
    return grouped(trades, lambda trade: pair_month(trade, rulebook))


def breakpoints(trades: Iterable[TradeFacts], rulebook: Rulebook) -> list[datetime]:
    """The instants at which the group's counted trades may change, in order."""
    return sorted({instant for trade in trades for instant in _instants(trade, rulebook)})


def group_steps(trades: Iterable[TradeFacts], rulebook: Rulebook) -> tuple[Step, ...]:
    """One pair-month's step list (see COMPONENTS), for the rulebook's DSR window.
    Sorted by instant, one step per instant, no zero steps."""
    bearing = _Bearing(_one_pair_month(trades, rulebook), rulebook)
    return _followed(bearing, bearing.breakpoints(), {}, rulebook)


def steps_from(
    trades: Iterable[TradeFacts], since: datetime, rulebook: Rulebook
) -> tuple[Step, ...]:
    """The steps the group's facts make at or after ``since``, beyond what its
    counted trades just before ``since`` already add.

    For two versions of a group that agree before ``since`` (``earliest_change``),
    the difference of their ``steps_from`` is the difference of their step
    lists: what a view moves a seller's shop-score tally by when the group's
    facts change. Only the breakpoints from ``since`` on are evaluated, so a
    busy pair-month costs a new fact its recent breakpoints, not all of them.
    """
    bearing = _Bearing(_one_pair_month(trades, rulebook), rulebook)
    instants = bearing.breakpoints()
    earlier = [instant for instant in instants if instant < since]
    before = bearing.counted(earlier[-1]) if earlier else {}
    return _followed(bearing, instants[len(earlier) :], before, rulebook)


def earliest_change(before: Iterable[TradeFacts], after: Iterable[TradeFacts]) -> datetime | None:
    """The earliest instant from which two versions of a group may count
    differently (to pass as ``since``); None when no fact shop scores read moved.

    What counts as of T depends only on the facts dated up to T (a rating's
    showing too is judged from those), so the first fact that differs is
    where the versions part.
    """
    old = {trade.trade_id: _facts(trade) for trade in before}
    new = {trade.trade_id: _facts(trade) for trade in after}
    nothing: tuple[_Fact, ...] = (None,) * _FACT_COUNT
    moved = [
        fact[0]
        for trade_id in old.keys() | new.keys()
        for was, now in zip(old.get(trade_id, nothing), new.get(trade_id, nothing), strict=True)
        if was != now
        for fact in (was, now)
        if fact is not None
    ]
    return min(moved, default=None)


_Fact = tuple[datetime, object] | None  # when a fact took effect, and what it says
_FACT_COUNT = 5


def _facts(trade: TradeFacts) -> tuple[_Fact, ...]:
    """The facts shop scores read: the buyer's rating with its scores, its
    shielding and withdrawal, the fake-trade confirmation, the seller's rating."""
    buyer, seller = trade.ratings.get("buyer"), trade.ratings.get("seller")
    stamps = (
        buyer.shielded if buyer is not None else None,
        buyer.withdrawn if buyer is not None else None,
        trade.fake,
        seller.given if seller is not None else None,
    )
    return (
        (buyer.given.at, buyer.dsr) if buyer is not None else None,
        *((stamp.at, None) if stamp is not None else None for stamp in stamps),
    )


def _followed(
    bearing: _Bearing,
    instants: Iterable[datetime],
    before: dict[str, Vector],
    rulebook: Rulebook,
) -> tuple[Step, ...]:
    """Evaluate the group at each instant and record what each trade's part moved by."""
    window = timedelta(days=rulebook.scoring.dsr.window_days)
    steps: list[Step] = []
    for instant in instants:
        now = bearing.counted(instant)
        for trade_id in before.keys() | now.keys():
            change = subtract(now.get(trade_id, _NOTHING), before.get(trade_id, _NOTHING))
            if any(change):
                steps += _while_in_window(instant, bearing.trades[trade_id], window, change)
        before = now
    return _merged(steps)


class _Bearing:
    """When each trade of a group bears shop scores (``bears_dsr``), and which
    trades count at an instant.

    Whether a trade bears them changes only at its own breakpoints (``_instants``),
    so each trade is judged once per breakpoint of its own, not per breakpoint
    of its group; the first-trades rule then takes the first bearing trades in
    creation order, walking no further than it needs.
    """

    def __init__(self, group: Sequence[TradeFacts], rulebook: Rulebook) -> None:
        self.first = rulebook.scoring.dsr.first_trades_per_pair_month
        ordered = sorted(group, key=lambda trade: (trade.created.at, trade.trade_id))
        self.trades = {trade.trade_id: trade for trade in ordered}
        self.changes: list[tuple[TradeFacts, list[datetime], list[bool]]] = []
        for trade in ordered:
            instants = sorted(_instants(trade, rulebook))
            if instants:
                bears = [bears_dsr(trade, Cut(instant), rulebook) for instant in instants]
                self.changes.append((trade, instants, bears))

    def breakpoints(self) -> list[datetime]:
        """The instants at which the group's counted trades may change, in order."""
        return sorted({instant for _, instants, _ in self.changes for instant in instants})

    def counted(self, instant: datetime) -> dict[str, Vector]:
        """What each counted trade of the group adds as of ``instant``, window aside."""
        found: dict[str, Vector] = {}
        for trade, instants, bears in self.changes:
            reached = bisect_right(instants, instant)
            if reached and bears[reached - 1]:
                found[trade.trade_id] = _scores(trade)
                if len(found) == self.first:
                    break
        return found


def summary_at(steps_by_group: Mapping[PairMonth, Sequence[Step]], as_of: datetime) -> DsrResult:
    """The seller's shop scores as of a time, from the step lists of its pair-months.

    Each list is sorted by instant, as ``group_steps`` returns it. The figures
    are those ``dsr_of`` returns with every fact known, for the window the steps
    were made with; ``positions`` is left empty (see the module docstring).
    """
    reached = (
        step.values
        for steps in steps_by_group.values()
        for step in steps[: bisect_right(steps, as_of, key=lambda step: step.instant)]
    )
    return summary_of(sum_of([_NOTHING, *reached]))


def summary_of(totals: Vector) -> DsrResult:
    """The shop scores from the sums of ``COMPONENTS`` (``positions`` left empty)."""
    count, *sums = totals
    means = {
        dimension: total / count if count else None
        for dimension, total in zip(DIMENSIONS, sums, strict=True)
    }
    return DsrResult(**means, count=count, positions=())


def _scores(trade: TradeFacts) -> Vector:
    dsr = trade.ratings["buyer"].dsr
    if dsr is None:
        raise ValueError(f"trade {trade.trade_id} is counted without shop scores")
    return (1, *(getattr(dsr, dimension) for dimension in DIMENSIONS))


def _while_in_window(
    starts: datetime, trade: TradeFacts, window: timedelta, change: Vector
) -> list[Step]:
    """A change to what a trade adds, taking effect at ``starts``: it holds while
    the trade is in the window and is undone when the trade leaves it."""
    if trade.succeeded is None:
        return []  # counted but never in any window
    ends = trade.succeeded.at + window
    starts = max(starts, trade.succeeded.at)
    if starts >= ends:
        return []
    return [Step(starts, change), Step(ends, subtract(_NOTHING, change))]


def _merged(steps: Iterable[Step]) -> tuple[Step, ...]:
    by_instant: dict[datetime, Vector] = defaultdict(lambda: _NOTHING)
    for step in steps:
        by_instant[step.instant] = add(by_instant[step.instant], step.values)
    return tuple(
        Step(instant, values) for instant, values in sorted(by_instant.items()) if any(values)
    )


def _instants(trade: TradeFacts, rulebook: Rulebook) -> set[datetime]:
    """The instants of the trade's facts that shop scores look at, and the instants
    its buyer rating shows as known at each of them; none if it carries no scores."""
    buyer = trade.ratings.get("buyer")
    if buyer is None or buyer.dsr is None:
        return set()
    seller = trade.ratings.get("seller")
    stamps = (
        buyer.given,
        buyer.shielded,
        buyer.withdrawn,
        trade.fake,
        seller.given if seller is not None else None,
    )
    facts = {stamp.at for stamp in stamps if stamp is not None}
    scoring = rulebook.scoring
    shown = {rating_visible_at(trade, "buyer", Cut(instant), scoring) for instant in facts}
    return facts | {instant for instant in shown if instant is not None}


def _one_pair_month(trades: Iterable[TradeFacts], rulebook: Rulebook) -> list[TradeFacts]:
    group = list(trades)
    keys = {(trade.seller_id, *pair_month(trade, rulebook)) for trade in group}
    if len(keys) > 1:
        raise ValueError(f"a step group holds one pair's trades of one month, got {sorted(keys)}")
    return group
