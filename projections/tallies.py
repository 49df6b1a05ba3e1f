"""Tallies: a member's figures kept as a timeline, moved by the view's fold.

A tally is one figure of one member under one rulebook, kept as a timeline
(``projections.timeline``) of the step changes its groups make. Credit is
tallied per role: its groups are a rater's ratings of one cap period
(``projections.credit_steps``). When a batch of facts changes trades, the fold
finds the groups whose ratings moved, evaluates each group's old and new
version from the first instant the two differ, and moves the member's timeline
by the difference. No group's steps are stored: they are a function of the
group's facts, which the view already holds as trade rows.

What a batch reads, per pair of members with changed trades: the pair's trades
created in the cap periods of the changed trades, widened while a 14-day item
chain crosses an edge (``unit_of``, ``ItemChains``); never the members'
other trades. What it writes: the month and day rows of the timeline days its
changes fall on (``projections.timeline``).

A figure is then read as of any business time from at most two rows per tally.
Tallies describe the log as it stands; a figure at an earlier log position is
computed from the member's facts instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple, Protocol

from ledger.events import Party
from projections import buyer_steps, dsr_steps, rate_steps
from projections.buyers import BuyerHistory
from projections.credit import (
    CreditResult,
    RatingRecord,
    cap_period_bounds,
    rating_record,
)
from projections.credit_steps import (
    COMPONENTS as CREDIT_COMPONENTS,
)
from projections.credit_steps import (
    CapGroup,
    ItemChains,
    cap_group,
    earliest_change,
    splits_by_cap_period,
    steps_from,
    summary_of,
    unit_of,
)
from projections.dsr import DsrResult
from projections.marketplace import ComplaintFacts, Cut, MemberFacts, TradeFacts
from projections.penalties import Rates
from projections.rulebook import Rulebook
from projections.steps import Step, grouped
from projections.timeline import Change, Vector
from projections.violations import ViolationYear, violation_years
from projections.windows import calendar_month_bounds

# A pair's range of trades is widened at most this many times, doubling each
# time: from 14 days, further than any history.
PAIR_RANGE_ROUNDS_MAX = 40
# A member's figures are tallied once its trades (as seller and as buyer) reach
# this many: below it, computing a figure from the member's facts costs about
# what reading its tally does (about 13 µs a trade), and most members of a
# marketplace stay below it, so tallying them would only slow the fold.
TALLY_FROM_TRADES = 100
CREDIT_WIDTH = len(CREDIT_COMPONENTS)
DSR_WIDTH = len(dsr_steps.COMPONENTS)
BUYER_WIDTH = len(buyer_steps.COMPONENTS)
RATES_WIDTH = len(rate_steps.COMPONENTS)
ROLES: tuple[Party, ...] = ("seller", "buyer")
# Every fact the view holds: tallies describe the log as it stands.
WHOLE_LOG = Cut(datetime.max.replace(tzinfo=UTC))

Moves = dict[str, tuple[list[Change], list[Change]]]  # key: (changes added, changes removed)


Pair = tuple[str, str]  # seller id, buyer id
Span = tuple[datetime, datetime]  # creation times, half-open


class StoredFacts(Protocol):
    """What the fold reads beyond the batch's rows, as the view held it before
    the batch."""

    def complaints_of(self, complaint_ids: Iterable[str]) -> dict[str, ComplaintFacts]:
        """These complaints, by id."""
        ...

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        """Each pair's trades created in its span, as the view held them before
        the batch (a view whose fold changes rows in place may return them as
        changed: ``Tallies.moves`` is given the old versions). One request for
        many pairs, so a SQL view answers a batch in one round trip."""
        ...

    def tallied_among(self, member_ids: Iterable[str]) -> set[str]:
        """Those of these members whose tallies the view keeps."""
        ...

    def trade_counts(self, member_ids: Iterable[str]) -> dict[str, int]:
        """How many trades each member has, as seller and as buyer (absent: none)."""
        ...

    def members_facts(
        self, member_ids: Iterable[str]
    ) -> tuple[list[TradeFacts], list[ComplaintFacts]]:
        """Every trade of these members (either role) and every complaint they filed."""
        ...


class BatchMoves(NamedTuple):
    """What a batch moves in the tallies, and the members whose tallies it starts."""

    moves: Moves
    started: frozenset[str]


def credit_key(stamp: str, role: Party, member_id: str) -> str:
    """The timeline key of a member's credit in one role under a rulebook's scoring."""
    return f"{stamp}|credit|{role}|{member_id}"


def dsr_key(stamp: str, seller_id: str) -> str:
    """The timeline key of a seller's shop scores under a rulebook's scoring."""
    return f"{stamp}|dsr|{seller_id}"


def dsr_figure(totals: Vector) -> DsrResult:
    """The shop scores from a DSR tally's value (``positions`` left empty)."""
    return dsr_steps.summary_of(totals)


def rates_key(stamp: str, seller_id: str) -> str:
    """The timeline key of a seller's penalty rates under a rulebook's scoring."""
    return f"{stamp}|rates|{seller_id}"


def rates_figure(totals: Vector, rulebook: Rulebook) -> Rates:
    """The penalty rates from a rates tally's value (position lists left empty)."""
    return rate_steps.summary_of(totals, rulebook)


def buyer_key(stamp: str, buyer_id: str) -> str:
    """The timeline key of a buyer's history under a rulebook's scoring."""
    return f"{stamp}|buyer|{buyer_id}"


def buyer_figure(totals: Vector, rulebook: Rulebook) -> BuyerHistory:
    """The buyer's history and tier from a buyer tally's value."""
    return buyer_steps.summary_of(totals, rulebook)


def credit_figure(totals: Vector, rulebook: Rulebook) -> CreditResult:
    """The credit figures from a credit tally's value (``ratings`` left empty)."""
    return summary_of(totals, rulebook.scoring)


def violations_key(stamp: str, seller_id: str) -> str:
    """The key of a seller's violation years under a rulebook's scoring."""
    return f"{stamp}|violations|{seller_id}"


def tallied(rulebooks: Iterable[Rulebook]) -> tuple[Rulebook, ...]:
    """The rulebooks whose figures can be tallied (credit must split by cap period)."""
    return tuple(rulebook for rulebook in rulebooks if splits_by_cap_period(rulebook.scoring))


class Tallies:
    """What a batch's changed trades move in the tallies of the given rulebooks.

    Only members with at least ``from_trades`` trades are tallied: a batch
    moves the tallies of members already tallied by what it changed, and
    starts those of members it takes to the threshold from their whole file
    (a one-off cost of a history of about ``from_trades`` trades). Which
    members are tallied at the end of a log depends only on the log, so
    replaying it in any batches gives the same rows.
    """

    def __init__(self, rulebooks: Sequence[Rulebook], from_trades: int = TALLY_FROM_TRADES) -> None:
        if from_trades < 0:
            raise ValueError(f"from_trades must not be negative, got {from_trades}")
        self.rulebooks = tallied(rulebooks)
        self.from_trades = from_trades

    @property
    def stamps(self) -> frozenset[str]:
        return frozenset(rulebook.scoring_stamp for rulebook in self.rulebooks)

    def violation_years(self, members: Iterable[MemberFacts]) -> list[tuple[str, ViolationYear]]:
        """The violation years (``projections.violations``) of these tallied
        members under each rulebook, by key: a batch that adds a violation, or
        starts a member's tallies, writes them all again (a seller has a few
        years of them, and violations are rare beside trades)."""
        return [
            (violations_key(rulebook.scoring_stamp, member.member_id), row)
            for member in members
            for rulebook in self.rulebooks
            for row in violation_years(member.violations, rulebook)
        ]

    def batch_moves(
        self,
        before: Mapping[str, TradeFacts],
        after: Mapping[str, TradeFacts],
        store: StoredFacts,
        complaints: tuple[Mapping[str, ComplaintFacts], Mapping[str, ComplaintFacts]],
    ) -> BatchMoves:
        """The moves of a batch (as ``moves``) for the members tallied before it,
        and the whole tallies of the members it takes to the threshold."""
        if not self.rulebooks:
            return BatchMoves({}, frozenset())
        complaints_after = complaints[1]
        parties = _parties(after.values(), complaints_after.values())
        tallied_members = store.tallied_among(parties)
        moves = self.moves(before, after, store, complaints, members=tallied_members)
        started = self._reaching(parties - tallied_members, before, after, store)
        if started:
            trades, filed = store.members_facts(started)
            whole = {t.trade_id: t for t in trades} | {
                i: t for i, t in after.items() if {t.seller_id, t.buyer_id} & started
            }
            whole_filed = {c.complaint_id: c for c in filed} | dict(complaints_after)
            moves |= self.moves({}, whole, store, ({}, whole_filed), members=started)
        return BatchMoves(moves, started)

    def _reaching(
        self,
        candidates: set[str],
        before: Mapping[str, TradeFacts],
        after: Mapping[str, TradeFacts],
        store: StoredFacts,
    ) -> frozenset[str]:
        """The candidates whose trades, with the batch's new ones, reach the threshold."""
        if not candidates:
            return frozenset()
        counts = defaultdict(int, store.trade_counts(candidates))
        for trade_id, trade in after.items():
            if trade_id not in before:
                counts[trade.seller_id] += 1
                counts[trade.buyer_id] += 1
        return frozenset(m for m in candidates if counts[m] >= self.from_trades)

    def moves(
        self,
        before: Mapping[str, TradeFacts],
        after: Mapping[str, TradeFacts],
        store: StoredFacts,
        complaints: tuple[Mapping[str, ComplaintFacts], Mapping[str, ComplaintFacts]] = ({}, {}),
        *,
        members: Collection[str] | None = None,
    ) -> Moves:
        """The timeline changes to add and remove, per key, of ``members``' tallies
        (None: every member's).

        ``after``: the trades the batch changed, as it left them; ``before``:
        the same trades as they were (a trade the batch created is absent);
        ``complaints``: the complaints it changed, before and after, alike.
        """
        moves: Moves = defaultdict(lambda: ([], []))

        def tallied(member_id: str) -> bool:
            return members is None or member_id in members

        complaints_before, complaints_after = complaints
        after = {i: t for i, t in after.items() if tallied(t.seller_id) or tallied(t.buyer_id)}
        sellers_trades = {i: t for i, t in after.items() if tallied(t.seller_id)}
        cases = _cases(before, sellers_trades, store, complaints_before, complaints_after)
        complaints_after = {i: c for i, c in complaints_after.items() if tallied(c.buyer_id)}
        shared = _SharedSteps()
        for rulebook in self.rulebooks:
            for old_case, new_case in cases:
                _rates_moves(old_case, new_case, rulebook, moves, shared)
            for trade_id, trade in after.items():
                if tallied(trade.buyer_id):
                    old_trade = before.get(trade_id)
                    _buyer_moves(
                        old_trade, trade, trade.buyer_id, rulebook, moves=moves, shared=shared
                    )
            for complaint_id, complaint in complaints_after.items():
                old = complaints_before.get(complaint_id)
                _buyer_moves(
                    old, complaint, complaint.buyer_id, rulebook, moves=moves, shared=shared
                )
        by_pair: dict[Pair, list[str]] = defaultdict(list)
        for trade_id, trade in after.items():
            by_pair[(trade.seller_id, trade.buyer_id)].append(trade_id)
        spans = {
            pair: self._first_span([after[t].created.at for t in trade_ids])
            for pair, trade_ids in by_pair.items()
        }
        loaded = store.pairs_trades(spans) if self.rulebooks else {}
        for (seller_id, buyer_id), trade_ids in by_pair.items():
            pair = _PairRange(store, seller_id, buyer_id, before, after, trade_ids=trade_ids)
            pair.preload(spans[(seller_id, buyer_id)], loaded.get((seller_id, buyer_id), []))
            roles = [role for role in ROLES if tallied(seller_id if role == "seller" else buyer_id)]
            for rulebook in self.rulebooks:
                for role in roles:
                    _credit_moves(pair, rulebook, role, moves)
                if tallied(seller_id):
                    _dsr_moves(pair, rulebook, moves)
        return dict(moves)

    def _first_span(self, created: Sequence[datetime]) -> Span:
        """What a pair's changed trades need in the usual case, under every
        rulebook: their cap periods, widened by one item-group span each way."""
        starts, ends = [], []
        for rulebook in self.rulebooks:
            span = timedelta(days=rulebook.scoring.credit.same_item_group_days)
            for at in created:
                start, end = cap_period_bounds(at, rulebook.scoring)
                month_start, month_end = calendar_month_bounds(at, rulebook.scoring.zone)
                starts.append(min(start - span, month_start))
                ends.append(max(end + span, month_end))
        return min(starts, default=min(created)), max(ends, default=max(created))


class _PairRange:
    """One pair's trades in a range of creation times, loaded as it widens, in
    two versions: before the batch and after it."""

    def __init__(
        self,
        store: StoredFacts,
        seller_id: str,
        buyer_id: str,
        before: Mapping[str, TradeFacts],
        after: Mapping[str, TradeFacts],
        *,
        trade_ids: Sequence[str],
    ) -> None:
        self.store, self.seller_id, self.buyer_id = store, seller_id, buyer_id
        self.changed_after = {i: after[i] for i in trade_ids}
        self.changed_before = {i: before[i] for i in trade_ids if i in before}
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.stored: dict[str, TradeFacts] = {}

    def covers(self, start: datetime, end: datetime) -> bool:
        return (
            self.start is not None
            and self.end is not None
            and self.start <= start <= end <= self.end
        )

    def cover(self, start: datetime, end: datetime) -> None:
        if self.start is None or self.end is None:
            self._load(start, end)
            self.start, self.end = start, end
            return
        if start < self.start:
            self._load(start, self.start)
            self.start = start
        if end > self.end:
            self._load(self.end, end)
            self.end = end

    def preload(self, span: Span, trades: Iterable[TradeFacts]) -> None:
        self.start, self.end = span
        self.stored.update((trade.trade_id, trade) for trade in trades)

    def _load(self, start: datetime, end: datetime) -> None:
        pair = (self.seller_id, self.buyer_id)
        for trade in self.store.pairs_trades({pair: (start, end)}).get(pair, []):
            self.stored[trade.trade_id] = trade

    def version(self, which: Literal["before", "after"]) -> list[TradeFacts]:
        if which == "after":
            trades = {**self.stored, **self.changed_after}
        else:
            trades = {**self.stored, **self.changed_before}
            for new in self.changed_after.keys() - self.changed_before.keys():
                trades.pop(new, None)
        start, end = self.start, self.end
        if start is None or end is None:
            return []
        return [t for t in trades.values() if start <= t.created.at < end]


def _credit_moves(pair: _PairRange, rulebook: Rulebook, role: Party, moves: Moves) -> None:
    """Move the credit tally of the pair's member rated in ``role``."""
    scoring = rulebook.scoring
    rater: Party = "buyer" if role == "seller" else "seller"
    ratee = pair.seller_id if role == "seller" else pair.buyer_id
    span = timedelta(days=scoring.credit.same_item_group_days)
    changed_at = [trade.created.at for trade in pair.changed_after.values()]
    bounds = [cap_period_bounds(at, scoring) for at in changed_at]
    pair.cover(min(b[0] for b in bounds), max(b[1] for b in bounds))
    widen = span
    for _ in range(PAIR_RANGE_ROUNDS_MAX):
        old = _records(pair.version("before"), rater, scoring_of=rulebook)
        new = _records(pair.version("after"), rater, scoring_of=rulebook)
        group_of = {trade_id: cap_group(record, scoring) for trade_id, record in new.items()}
        groups, needed = _touched_groups(pair, old, new, group_of, rulebook=rulebook, span=span)
        if not groups:
            return
        if pair.covers(*needed):
            key = credit_key(rulebook.scoring_stamp, role, ratee)
            _move(groups, old, new, group_of, rulebook, key=key, moves=moves)
            return
        start, end = needed
        if pair.start is not None and start < pair.start:
            start = min(start, pair.start - widen)
        if pair.end is not None and end > pair.end:
            end = max(end, pair.end + widen)
        pair.cover(start, end)
        widen *= 2
    raise RuntimeError(f"the trades of pair {pair.seller_id}/{pair.buyer_id} did not settle")


def _parties(trades: Iterable[TradeFacts], complaints: Iterable[ComplaintFacts]) -> set[str]:
    """The members whose figures these trades and complaints may move."""
    parties = {member for trade in trades for member in (trade.seller_id, trade.buyer_id)}
    return parties | {complaint.buyer_id for complaint in complaints}


def _cases(
    before: Mapping[str, TradeFacts],
    after: Mapping[str, TradeFacts],
    store: StoredFacts,
    complaints_before: Mapping[str, ComplaintFacts],
    complaints_after: Mapping[str, ComplaintFacts],
) -> list[tuple[rate_steps.Case | None, rate_steps.Case]]:
    """Each changed trade's case (the trade and its complaints), before and after."""
    named = {c for trade in after.values() for c in trade.complaint_ids}
    unchanged = store.complaints_of(named - complaints_after.keys()) if named else {}
    latest = {**unchanged, **complaints_after}
    earlier = {**unchanged, **complaints_before}
    cases: list[tuple[rate_steps.Case | None, rate_steps.Case]] = []
    for trade_id, trade in after.items():
        new = rate_steps.Case(trade, tuple(latest[c] for c in trade.complaint_ids))
        old_trade = before.get(trade_id)
        old = None
        if old_trade is not None:
            filed = tuple(earlier[c] for c in old_trade.complaint_ids if c in earlier)
            old = rate_steps.Case(old_trade, filed)
        cases.append((old, new))
    return cases


class _SharedSteps:
    """A group's steps computed once for every tallied rulebook that gives the
    producer the same numbers (its ``numbers_read``): the built-in rulebooks
    share the tier window, the visibility delay and the rates window, so a
    batch evaluates each trade's buyer-history and rate steps once, not per
    rulebook. Groups are keyed by identity: they live as long as the batch."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int, tuple[object, ...]], tuple[Step, ...]] = {}

    def rates(self, case: rate_steps.Case, rulebook: Rulebook) -> tuple[Step, ...]:
        key = ("rates", id(case), rate_steps.numbers_read(rulebook))
        if key not in self._found:
            self._found[key] = rate_steps.group_steps(case, rulebook)
        return self._found[key]

    def buyer(self, group: buyer_steps.Group, rulebook: Rulebook) -> tuple[Step, ...]:
        key = ("buyer", id(group), buyer_steps.numbers_read(rulebook))
        if key not in self._found:
            self._found[key] = buyer_steps.group_steps(group, rulebook)
        return self._found[key]


def _rates_moves(
    old: rate_steps.Case | None,
    new: rate_steps.Case,
    rulebook: Rulebook,
    moves: Moves,
    shared: _SharedSteps,
) -> None:
    """Move the seller's rates tally by one case's change."""
    if old == new:
        return
    added, removed = moves[rates_key(rulebook.scoring_stamp, new.trade.seller_id)]
    added.extend(Change(s.instant, s.values) for s in shared.rates(new, rulebook))
    if old is not None:
        removed.extend(Change(s.instant, s.values) for s in shared.rates(old, rulebook))


def _buyer_moves(
    old: buyer_steps.Group | None,
    new: buyer_steps.Group,
    buyer_id: str,
    rulebook: Rulebook,
    *,
    moves: Moves,
    shared: _SharedSteps,
) -> None:
    """Move the buyer's history tally by one trade's or complaint's change: the
    group is the one fact object, so its old steps go and its new ones come."""
    if old == new:
        return
    added, removed = moves[buyer_key(rulebook.scoring_stamp, buyer_id)]
    added.extend(Change(s.instant, s.values) for s in shared.buyer(new, rulebook))
    if old is not None:
        removed.extend(Change(s.instant, s.values) for s in shared.buyer(old, rulebook))


def _dsr_moves(pair: _PairRange, rulebook: Rulebook, moves: Moves) -> None:
    """Move the seller's shop-score tally by the pair-months whose trades changed."""
    months = {
        dsr_steps.pair_month(trade, rulebook): trade.created.at
        for trade in pair.changed_after.values()
    }
    added, removed = moves[dsr_key(rulebook.scoring_stamp, pair.seller_id)]
    for month, created in months.items():
        pair.cover(*calendar_month_bounds(created, rulebook.scoring.zone))
        old, new = (
            [t for t in pair.version(which) if dsr_steps.pair_month(t, rulebook) == month]
            for which in ("before", "after")
        )
        since = dsr_steps.earliest_change(old, new)
        if since is None:
            continue
        added.extend(
            Change(s.instant, s.values) for s in dsr_steps.steps_from(new, since, rulebook)
        )
        if old:
            steps = dsr_steps.steps_from(old, since, rulebook)
            removed.extend(Change(s.instant, s.values) for s in steps)


def _records(
    trades: Iterable[TradeFacts], rater: Party, *, scoring_of: Rulebook
) -> dict[str, RatingRecord]:
    found = (rating_record(trade, rater, WHOLE_LOG, scoring_of.scoring) for trade in trades)
    return {record.trade_id: record for record in found if record is not None}


def _touched_groups(
    pair: _PairRange,
    old: Mapping[str, RatingRecord],
    new: Mapping[str, RatingRecord],
    group_of: Mapping[str, CapGroup],
    *,
    rulebook: Rulebook,
    span: timedelta,
) -> tuple[set[CapGroup], tuple[datetime, datetime]]:
    """The cap groups whose verdicts the changed ratings may move, and the range
    of creation times their units need loaded."""
    scoring = rulebook.scoring
    changed = [
        record
        for trade_id in pair.changed_after
        if (record := new.get(trade_id)) is not None and old.get(trade_id) != record
    ]
    if not changed:
        return set(), (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))
    chains = ItemChains(new.values(), scoring)
    named: dict[CapGroup, RatingRecord] = {}
    ends = []
    for record in changed:
        named.setdefault(group_of[record.trade_id], record)
        chain = chains.after(record)
        for later in chain:
            named.setdefault(group_of[later.trade_id], later)
        ends.append((chain[-1] if chain else record).order_created_at + span)
    starts = []
    members_of = grouped(new.values(), lambda record: group_of[record.trade_id])
    for group, record in named.items():
        period_start, period_end = cap_period_bounds(record.order_created_at, scoring)
        unit = unit_of(members_of[group], chains, scoring)
        starts += [period_start, min(r.order_created_at for r in unit) - span]
        ends.append(period_end)
    return set(named), (min(starts), max(ends))


def _move(
    groups: Iterable[CapGroup],
    old: Mapping[str, RatingRecord],
    new: Mapping[str, RatingRecord],
    group_of: Mapping[str, CapGroup],
    rulebook: Rulebook,
    *,
    key: str,
    moves: Moves,
) -> None:
    scoring, minor_per_major = rulebook.scoring, rulebook.policy.minor_per_major
    old_chains, new_chains = ItemChains(old.values(), scoring), ItemChains(new.values(), scoring)
    # A trade's group is fixed by its creation time, the same in both versions.
    old_groups, new_groups = (
        grouped(version.values(), lambda record: group_of[record.trade_id])
        for version in (old, new)
    )
    added, removed = moves[key]
    for group in groups:
        old_group, new_group = old_groups.get(group, []), new_groups.get(group, [])
        old_unit = unit_of(old_group, old_chains, scoring)
        new_unit = unit_of(new_group, new_chains, scoring)
        since = earliest_change(old_unit, new_unit)
        if since is None:
            continue
        for unit, members, into in ((new_unit, new_group, added), (old_unit, old_group, removed)):
            if not members:
                continue  # a group new in this batch has nothing to take back
            counted = {(r.trade_id, r.rater) for r in members}
            steps = steps_from(
                unit, since, scoring, minor_per_major=minor_per_major, counted=counted
            )
            into.extend(Change(step.instant, step.values) for step in steps)
