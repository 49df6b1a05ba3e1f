"""Credit as a sum of step changes, one step list per counterparty.

Every exclusion rule of docs/rules.md §3 looks at one rater at a time: fake,
shielded, withdrawn, the amount floor and the rulebook's allowed scores judge a
rating alone; the 14-day item groups are per (rater, item) and the cap per
(rater, cap period); visibility is per trade. So a rating's verdict as of T
depends only on the ratings from the same counterparty, and a member's credit
as of T is the sum, over counterparties, of what each counterparty's ratings
add up to as of T.

Within one counterparty's group, ``evaluate`` compares ``as_of`` only with the
instants of its ratings' facts (given, visible, revised, withdrawn, shielded,
fake-confirmed), each fact taking effect at its own instant. Between two such
breakpoints every verdict stays put, so evaluating the group at each
breakpoint and recording what changed gives the group's figures at every
instant exactly. The trailing window (docs/rules.md §0, README rule 17) follows
the trade's success time: a counted rating is in the window from its success
until success + window days (exclusive), so a change to what it adds there is
a step up when it takes effect and a step back down when the trade leaves the
window.

The component vector of a step is ``COMPONENTS``: score points, counted
positives, neutrals and negatives, unscored ratings (known but not counted,
hidden ones included), then the counted positives, neutrals and negatives of
trades that succeeded in the window ``(T - window, T]``.

Cost: a group of k ratings has b <= 6k breakpoints. It is judged once in
full, then at each breakpoint again only from the first rating with a fact
there, from a kept state of the rules that look back, until the state is
back to what it was (``_Sweep``): ratings that come in order cost each
breakpoint a few ratings, so a busy pair's month costs about O(k log k), and
an out-of-order fact (a revision, a withdrawal, a late showing) the ratings
after it up to where the cap and item groups settle, at most O(k). A new fact
costs one counterparty's group, not the member's; ``steps_from`` starts at
the first changed instant, since nothing earlier can change.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any, NamedTuple

import msgspec

from ledger.events import Party, Score
from projections.credit import (
    Counted,
    CreditResult,
    ExclusionRules,
    RatingRecord,
    RuleState,
    cap_period,
    positive_rate,
)
from projections.rulebook import Scoring
from projections.steps import Step, grouped

COMPONENTS = (
    "score",
    "positive",
    "neutral",
    "negative",
    "unscored",
    "window_positive",
    "window_neutral",
    "window_negative",
)
_SCORES: tuple[Score, ...] = ("positive", "neutral", "negative")
_LIFETIME = 5  # the components before the window ones
# Facts dated after the rating was given; each acts from its own instant on.
_LATER_FACTS = ("visible_at", "revised_at", "withdrawn_at", "shielded_at", "fake_at")

RatingKey = tuple[str, Party]
# Ratings between two kept states of the rules that look back: a breakpoint
# judges again from the last kept state before its first changed rating.
CHECKPOINT_RATINGS = 16


class _Standing(NamedTuple):
    """What one rating adds to its member's figures between two breakpoints."""

    lifetime: tuple[int, ...]
    window: tuple[int, ...]  # added only while its trade is in the window


_UNKNOWN = _Standing((0,) * _LIFETIME, (0,) * len(_SCORES))


def by_counterparty(records: Iterable[RatingRecord]) -> dict[str, list[RatingRecord]]:
    """A member's ratings in one role, grouped by the rater's member id."""
    return grouped(records, lambda record: record.rater_id)


CapGroup = tuple[str, tuple[int, int]]  # the rater's member id, the cap period of creation


def splits_by_cap_period(scoring: Scoring) -> bool:
    """Whether a counterparty's ratings split into cap groups (``unit_of``).

    They do when the item rule, if the rulebook has it, comes before the cap:
    then a rating's verdict depends on ratings of its own cap period and on
    earlier ratings of its item chain, judged by the rules before the cap.
    """
    rules = scoring.credit.exclusions
    if "same_item_14d" in rules and "pair_month_cap" in rules:
        return rules.index("same_item_14d") < rules.index("pair_month_cap")
    return True


def cap_group(record: RatingRecord, scoring: Scoring) -> CapGroup:
    """The group a rating's part belongs to, for good: its rater and cap period."""
    return (record.rater_id, cap_period(record.order_created_at, scoring))


def by_cap_group(
    records: Iterable[RatingRecord], scoring: Scoring
) -> dict[CapGroup, list[RatingRecord]]:
    return grouped(records, lambda record: cap_group(record, scoring))


class ItemChains:
    """A pair's ratings per rater and item, in order-creation order: where the
    14-day item rule chains ratings together (consecutive orders less than the
    rule's days apart). Built once per pair, so that finding one rating's chain
    costs its chain, not the pair."""

    def __init__(self, pair: Iterable[RatingRecord], scoring: Scoring) -> None:
        self.active = "same_item_14d" in scoring.credit.exclusions
        self.span = timedelta(days=scoring.credit.same_item_group_days)
        chains: dict[tuple[str, str], list[RatingRecord]] = defaultdict(list)
        for record in pair:
            chains[(record.rater_id, record.item_id)].append(record)
        self.chains = {
            key: sorted(chain, key=lambda r: r.order_key) for key, chain in chains.items()
        }

    def before(self, record: RatingRecord) -> list[RatingRecord]:
        """The ratings ordered before this one that its chain reaches back to, latest first."""
        chain = self._chain(record)
        if not self.active or not chain:
            return []
        found = []
        after = record.order_created_at
        for index in range(bisect_left(chain, record.order_key, key=_order_key) - 1, -1, -1):
            earlier = chain[index]
            if after - earlier.order_created_at >= self.span:
                break
            found.append(earlier)
            after = earlier.order_created_at
        return found

    def after(self, record: RatingRecord) -> list[RatingRecord]:
        """The ratings ordered after this one chained to it, in order."""
        chain = self._chain(record)
        if not self.active or not chain:
            return []
        found = []
        before = record.order_created_at
        for later in chain[bisect_right(chain, record.order_key, key=_order_key) :]:
            if later.order_created_at - before >= self.span:
                break
            found.append(later)
            before = later.order_created_at
        return found

    def _chain(self, record: RatingRecord) -> list[RatingRecord]:
        return self.chains.get((record.rater_id, record.item_id), [])


def unit_of(
    group: Sequence[RatingRecord],
    pair: Iterable[RatingRecord] | ItemChains,
    scoring: Scoring,
) -> list[RatingRecord]:
    """A cap group's ratings and the context their verdicts depend on.

    Within one rater's ratings, a rating's verdict depends on ratings ordered
    before it only: the cap runs over its own cap period, and a 14-day item
    group starts at the first rating of a chain of the same item whose
    consecutive orders are less than the rule's days apart (a gap of that many
    days always starts a new group, whichever ratings survive the earlier
    rules). So a cap group's verdicts need, besides its own ratings, the
    pair's earlier ratings chained to each of its items. ``pair`` holds at
    least those (or is their ``ItemChains``); ratings of other raters in it
    are passed over.
    """
    unit = list(group)
    chains = pair if isinstance(pair, ItemChains) else ItemChains(pair, scoring)
    if not chains.active:
        return unit
    first: dict[tuple[str, str], RatingRecord] = {}
    for record in sorted(group, key=lambda r: r.order_key):
        first.setdefault((record.rater_id, record.item_id), record)
    for record in first.values():
        unit += chains.before(record)
    return unit


def chained_after(
    record: RatingRecord, pair: Iterable[RatingRecord] | ItemChains, scoring: Scoring
) -> list[RatingRecord]:
    """The pair's later ratings of the same item chained to this one: their
    verdicts may move when this rating's facts do."""
    chains = pair if isinstance(pair, ItemChains) else ItemChains(pair, scoring)
    return chains.after(record)


def _order_key(record: RatingRecord) -> tuple[datetime, str]:
    return record.order_key


def breakpoints(records: Iterable[RatingRecord]) -> list[datetime]:
    """The instants at which some verdict of the group may change, in order."""
    return sorted({instant for record in records for instant in _instants(record)})


def group_steps(
    records: Iterable[RatingRecord],
    scoring: Scoring,
    *,
    minor_per_major: int,
    window_days: int | None = None,
    counted: Container[RatingKey] | None = None,
) -> tuple[Step, ...]:
    """One counterparty's step list; ``window_days`` defaults to the rulebook's
    positive-rate window. Sorted by instant, one step per instant, no zero steps.

    ``counted``: the ratings whose parts the steps add up (default: all);
    the others are the context their verdicts depend on (see ``unit_of``).
    """
    group = _one_counterparty(records)
    steps = _Steps(_window(scoring, window_days))
    sweep = _Sweep(group, scoring, minor_per_major, counted)
    for instant in breakpoints(group):
        sweep.advance(instant, steps)
    return steps.merged()


def steps_from(
    records: Iterable[RatingRecord],
    since: datetime,
    scoring: Scoring,
    *,
    minor_per_major: int,
    counted: Container[RatingKey] | None = None,
) -> tuple[Step, ...]:
    """The steps the group's facts make at or after ``since``, beyond what its
    verdicts just before ``since`` already add.

    For two versions of a group that agree before ``since`` (``earliest_change``),
    the difference of their ``steps_from`` is the difference of their whole step
    lists: what a view adds to and takes from a member's timeline when the
    group's facts change, without keeping the group's steps anywhere.
    """
    group = _one_counterparty(records)
    steps = _Steps(_window(scoring, None))
    sweep = _Sweep(group, scoring, minor_per_major, counted)
    instants = breakpoints(group)
    earlier = [instant for instant in instants if instant < since]
    if earlier:
        sweep.start(earlier[-1])
    for instant in instants[len(earlier) :]:
        sweep.advance(instant, steps)
    return steps.merged()


def group_steps_since(
    previous: Sequence[Step],
    records: Iterable[RatingRecord],
    since: datetime,
    scoring: Scoring,
    *,
    minor_per_major: int,
    window_days: int | None = None,
) -> tuple[Step, ...]:
    """The group's steps after new facts, none of them earlier than ``since``.

    ``previous`` is the group's step list before the new facts (same rulebook
    and window). Its steps before ``since`` still hold, because no verdict
    before the first changed instant can move; only the breakpoints at or
    after ``since`` are evaluated again. ``earliest_change`` finds ``since``;
    a later one gives wrong steps.
    """
    group = _one_counterparty(records)
    steps = _Steps(_window(scoring, window_days))
    sweep = _Sweep(group, scoring, minor_per_major, None)
    for step in previous:
        if step.instant < since:
            steps.add(step.instant, step.values)
    instants = breakpoints(group)
    earlier = [instant for instant in instants if instant < since]
    if earlier:
        sweep.start(earlier[-1])
        _carry_window(group, sweep.standings(), since, steps)
    for instant in instants[len(earlier) :]:
        sweep.advance(instant, steps)
    return steps.merged()


def earliest_change(
    before: Iterable[RatingRecord], after: Iterable[RatingRecord]
) -> datetime | None:
    """The earliest instant from which two versions of a group may differ, to
    pass as ``since``; None when they hold the same ratings."""
    old = {_key(record): record for record in before}
    new = {_key(record): record for record in after}
    changed = [
        _first_difference(old.get(key), new.get(key))
        for key in old.keys() | new.keys()
        if old.get(key) != new.get(key)
    ]
    return min(changed, default=None)


def member_summary_at(
    steps_by_group: Mapping[Any, Sequence[Step]], as_of: datetime, scoring: Scoring
) -> CreditResult:
    """The member's credit as of a time, from the step lists of its counterparties.

    Each list is sorted by instant, as ``group_steps`` returns it. The figures
    are those ``evaluate`` returns (the window ones for the window the steps
    were made with); ``ratings`` is left empty, as the per-rating explanation
    is not part of the steps.
    """
    totals = [0] * len(COMPONENTS)
    for steps in steps_by_group.values():
        for step in steps:
            if step.instant > as_of:
                break
            totals = [total + value for total, value in zip(totals, step.values, strict=True)]
    return summary_of(totals, scoring)


def summary_of(totals: Sequence[int], scoring: Scoring) -> CreditResult:
    """The credit figures from the sums of ``COMPONENTS`` (``ratings`` left empty)."""
    score, positive, neutral, negative, unscored = totals[:_LIFETIME]
    lifetime = dict(zip(_SCORES, (positive, neutral, negative), strict=True))
    window = dict(zip(_SCORES, totals[_LIFETIME:], strict=True))
    credit = scoring.credit
    return CreditResult(
        score=score,
        level=scoring.level(score),
        positive=positive,
        neutral=neutral,
        negative=negative,
        unscored=unscored,
        positive_rate_lifetime=positive_rate(lifetime, credit),
        positive_rate_window=positive_rate(window, credit),
        window_counted=sum(window[kind] for kind in credit.positive_rate_denominator),
        ratings=(),
    )


class _Steps:
    """Step changes of one group as they are found, merged per instant at the end."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self.by_instant: dict[datetime, list[int]] = defaultdict(lambda: [0] * len(COMPONENTS))

    def add(self, instant: datetime, values: Sequence[int]) -> None:
        moved = self.by_instant[instant]
        for index, value in enumerate(values):
            moved[index] += value

    def lifetime(self, instant: datetime, change: Sequence[int]) -> None:
        if any(change):
            self.add(instant, [*change, *(0,) * len(_SCORES)])

    def windowed(self, starts: datetime, succeeded_at: datetime, change: Sequence[int]) -> None:
        """A change to what a rating adds in the window, taking effect at ``starts``:
        it holds while the trade is in the window and is undone when it leaves."""
        ends = succeeded_at + self.window
        starts = max(starts, succeeded_at)
        if starts < ends:
            self.add(starts, [*(0,) * _LIFETIME, *change])
            self.add(ends, [*(0,) * _LIFETIME, *_negated(change)])

    def merged(self) -> tuple[Step, ...]:
        return tuple(
            Step(instant, tuple(values))
            for instant, values in sorted(self.by_instant.items())
            if any(values)
        )


class _Sweep:
    """One group judged at its breakpoints in time order, each time again only
    from the first rating (in order-creation order) with a fact at that instant.

    A rating's verdict depends only on itself and the ratings ordered before it
    (``ExclusionRules``), and between two breakpoints no rating's facts move;
    so at a breakpoint the verdicts before the first rating with a fact there
    stand, and the rules that look back need only their state at that rating,
    kept every ``CHECKPOINT_RATINGS`` ratings (one copy serves while no rating
    moves it). Judging stops where only ratings not yet given follow, or once,
    past the last rating with a fact at the instant, the state is what it was
    after the same rating last time: every later verdict then stands too. A
    rating moves only its own entries of the state (its rater's item group and
    cap period), so what each rating left there is kept, and the entries that
    differ are known as judging goes. A group whose ratings come in order
    costs each breakpoint a few ratings, not the group.
    """

    def __init__(
        self,
        group: Sequence[RatingRecord],
        scoring: Scoring,
        minor_per_major: int,
        counted: Container[RatingKey] | None,
    ) -> None:
        self.ordered = sorted(group, key=lambda record: record.order_key)
        self.rules = ExclusionRules(scoring, minor_per_major=minor_per_major)
        self.counts = [counted is None or _key(record) in counted for record in self.ordered]
        self.changing: dict[datetime, tuple[int, int]] = {}  # first and last rating with a fact
        for index, record in enumerate(self.ordered):
            for instant in _instants(record):
                first, _ = self.changing.get(instant, (index, index))
                self.changing[instant] = (first, index)
        self.entries = [self.rules.entries(record) for record in self.ordered]
        # The earliest time any rating from each one on is given.
        self.given_from = list(accumulate(reversed([r.given_at for r in self.ordered]), min))[::-1]
        self.now: list[_Standing] = [_UNKNOWN] * len(self.ordered)
        # What each known rating left in its own entries, the last time it was judged.
        self.left: list[tuple[object, object] | None] = [None] * len(self.ordered)
        blocks = len(self.ordered) // CHECKPOINT_RATINGS + 1
        self.checkpoints = [RuleState() for _ in range(blocks)]

    def start(self, instant: datetime) -> None:
        """Judge every rating as of ``instant``, recording nothing."""
        self._judge(instant, 0, len(self.ordered), None)

    def advance(self, instant: datetime, steps: _Steps) -> None:
        """Judge the group at its next breakpoint, recording how each counted
        rating's part moved."""
        first, last = self.changing[instant]
        self._judge(instant, first, last, steps)

    def standings(self) -> dict[RatingKey, _Standing]:
        """What each counted rating adds as of the last instant judged."""
        return {
            _key(record): standing
            for record, standing, counts in zip(self.ordered, self.now, self.counts, strict=True)
            if counts and standing is not _UNKNOWN
        }

    def _judge(self, instant: datetime, first: int, last: int, steps: _Steps | None) -> None:
        begin = first - first % CHECKPOINT_RATINGS
        state = self.checkpoints[begin // CHECKPOINT_RATINGS].copy()
        kept: RuleState | None = self.checkpoints[begin // CHECKPOINT_RATINGS]
        differing: set[object] = set()  # state entries that differ from last time
        for index in range(begin, len(self.ordered)):
            if self.given_from[index] > instant:
                self._keep_from(index, kept if kept is not None else state.copy())
                return  # the rest are unknown yet
            if index > last and not differing:
                return  # the rest judge as they did
            if index % CHECKPOINT_RATINGS == 0 and index > begin:
                kept = kept if kept is not None else state.copy()
                self.checkpoints[index // CHECKPOINT_RATINGS] = kept
            record = self.ordered[index]
            if record.given_at > instant:
                continue  # unknown yet: it neither counts nor moves the state
            kept = None  # judging it may move the state
            after = _standing(self.rules.judge(record, instant, state))
            self._compare(index, state, differing)
            before = self.now[index]
            if after == before:
                continue
            self.now[index] = after
            if steps is not None and self.counts[index]:
                steps.lifetime(instant, _minus(after.lifetime, before.lifetime))
                window_change = _minus(after.window, before.window)
                if any(window_change):
                    steps.windowed(instant, record.succeeded_at, window_change)
        self._keep_from(len(self.ordered), kept if kept is not None else state.copy())

    def _keep_from(self, index: int, state: RuleState) -> None:
        """Every kept state from ``index`` on is ``state``: no rating there is
        known yet. Kept states are never changed, so they may be shared."""
        block = -(-index // CHECKPOINT_RATINGS)
        self.checkpoints[block:] = [state] * (len(self.checkpoints) - block)

    def _compare(self, index: int, state: RuleState, differing: set[object]) -> None:
        """Note whether this rating's entries now differ from what it left last
        time (a rating unknown last time left nothing known: they may differ)."""
        item, bucket = self.entries[index]
        now = (state.items.get(item), state.nets.get(bucket))
        was = self.left[index]
        self.left[index] = now
        for entry, value, old in ((item, now[0], was and was[0]), (bucket, now[1], was and was[1])):
            if was is not None and value == old:
                differing.discard(entry)
            else:
                differing.add(entry)


def _carry_window(
    group: Sequence[RatingRecord],
    standings: Mapping[RatingKey, _Standing],
    since: datetime,
    steps: _Steps,
) -> None:
    """Re-add the window steps that facts before ``since`` placed at or after it:
    the kept steps stop short of ``since``, but a rating counted before then
    still enters the window at its success and leaves it window days later."""
    for record in group:
        window = standings.get(_key(record), _UNKNOWN).window
        if not any(window):
            continue
        if record.succeeded_at >= since:
            steps.add(record.succeeded_at, [*(0,) * _LIFETIME, *window])
        if record.succeeded_at + steps.window >= since:
            steps.add(record.succeeded_at + steps.window, [*(0,) * _LIFETIME, *_negated(window)])


def _standing(verdict: Counted) -> _Standing:
    if not verdict.counted:
        return _Standing((0, 0, 0, 0, 1), (0,) * len(_SCORES))
    kinds = tuple(int(verdict.score == kind) for kind in _SCORES)
    return _Standing((verdict.points, *kinds, 0), kinds)


def _minus(after: Sequence[int], before: Sequence[int]) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(after, before, strict=True))


def _negated(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(-value for value in values)


def _one_counterparty(records: Iterable[RatingRecord]) -> list[RatingRecord]:
    group = list(records)
    raters = {(record.rater, record.rater_id) for record in group}
    if len(raters) > 1:
        raise ValueError(f"a step group holds one counterparty's ratings, got {sorted(raters)}")
    return group


def _window(scoring: Scoring, window_days: int | None) -> timedelta:
    days = scoring.credit.positive_rate_window_days if window_days is None else window_days
    if days <= 0:
        raise ValueError(f"window_days must be positive, got {days}")
    return timedelta(days=days)


def _key(record: RatingRecord) -> RatingKey:
    return (record.trade_id, record.rater)


def _instants(record: RatingRecord) -> list[datetime]:
    """The instants at which a fact about this rating takes effect."""
    facts = (
        record.given_at,
        record.visible_at,
        record.revised_at,
        record.withdrawn_at,
        record.shielded_at,
        record.fake_at,
    )
    return [instant for instant in facts if instant is not None]


def _first_difference(was: RatingRecord | None, now: RatingRecord | None) -> datetime:
    """Where two versions of one rating start to differ in effect: a rating is
    unknown before it is given, and a later fact acts only from its instant."""
    if was is None or now is None:
        present = was or now
        if present is None:
            raise ValueError("a rating with no version has no difference")
        return present.given_at
    if _undated(was) != _undated(now):
        return min(was.given_at, now.given_at)
    moved: list[datetime | None] = [
        getattr(version, field)
        for field in _LATER_FACTS
        if getattr(was, field) != getattr(now, field)
        for version in (was, now)
    ]
    if was.revised_score != now.revised_score:
        moved += [was.revised_at, now.revised_at]
    return min(instant for instant in moved if instant is not None)


def _undated(record: RatingRecord) -> RatingRecord:
    """The rating without the facts that follow its giving."""
    cleared: dict[str, object] = dict.fromkeys((*_LATER_FACTS, "revised_score"))
    return msgspec.structs.replace(record, **cleared)
