"""Credit from per-counterparty step lists equals the reference ``evaluate``.

The ratings are drawn to sit on the rules' edges: amounts around 1 major unit,
orders created at 23:59:59 and 00:00:00 local time around a month end and
several Monday-Sunday week ends in the rulebook's zone, items re-bought 14 days
apart to the second, and later facts at shared instants. Every example is
checked at each of its breakpoints, at each trade's window end, and one
microsecond either side of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import strategies as st

from ledger.events import Party, Score
from projections.credit import RatingRecord, cap_period, evaluate, verdicts
from projections.credit_steps import (
    COMPONENTS,
    breakpoints,
    by_cap_group,
    by_counterparty,
    cap_group,
    chained_after,
    earliest_change,
    group_steps,
    group_steps_since,
    member_summary_at,
    splits_by_cap_period,
    steps_from,
    unit_of,
)
from projections.rulebook import Rulebook
from projections.steps import Step, sum_as_of
from tests.unit.step_support import (
    DAY,
    HOUR,
    MICROSECOND,
    RULEBOOKS,
    SCORES,
    moved_sums,
    per_rulebook,
)

# Wednesday 31 January 2024 ends a month; Sundays 28 January, 4 and 11 February end weeks.
THREE_WEEKS = tuple(date(2024, 1, 24) + n * DAY for n in range(21))
MONTH_END_WEEK = THREE_WEEKS[4:12]  # Sunday 28 January to Sunday 4 February
LATER_OFFSETS = (0 * HOUR, HOUR, 2 * DAY, 30 * DAY, 179 * DAY, 181 * DAY)


def optional_after(start: datetime) -> st.SearchStrategy[datetime | None]:
    """Mostly no such fact, so that enough ratings reach the item and cap rules."""
    offsets = st.sampled_from((*(None,) * 3 * len(LATER_OFFSETS), *LATER_OFFSETS))
    return offsets.map(lambda offset: None if offset is None else start + offset)


class Member(msgspec.Struct, frozen=True):
    """What one member's ratings share: who rates, and how they tend to score."""

    rater: Party
    raters: tuple[str, ...]
    items: tuple[str, ...]
    scores: tuple[Score, ...]
    quiet: bool  # no withdrawals, shields or fakes, no small amounts
    days: tuple[date, ...]  # when orders are created


def later_fact(draw: st.DrawFn, member: Member, start: datetime) -> datetime | None:
    return None if member.quiet else draw(optional_after(start))


@st.composite
def rating(draw: st.DrawFn, *, number: int, member: Member, rulebook: Rulebook) -> RatingRecord:
    day = draw(st.sampled_from(member.days))
    clock = draw(st.sampled_from((time(0, 0, 0), time(23, 59, 59), time(12, 0))))
    created = datetime.combine(day, clock, tzinfo=rulebook.scoring.zone).astimezone(UTC)
    succeeded = created + draw(st.sampled_from((0 * HOUR, HOUR, 3 * DAY, 10 * DAY)))
    given_at = succeeded + draw(st.sampled_from((0 * HOUR, HOUR, 2 * DAY, 15 * DAY)))
    revised_at = draw(optional_after(given_at))
    return RatingRecord(
        trade_id=f"T{number:03d}",
        rater=member.rater,
        rater_id=draw(st.sampled_from(member.raters)),
        ratee_id="member",
        item_id=draw(st.sampled_from(member.items)),
        amount_minor=2_500 if member.quiet else draw(st.sampled_from((99, 100, 101, 2_500))),
        order_created_at=created,
        succeeded_at=succeeded,
        given_at=given_at,
        score=draw(st.sampled_from(member.scores)),
        position=number,
        visible_at=given_at + draw(st.sampled_from((0 * HOUR, 48 * HOUR, 3 * DAY))),
        default=draw(st.booleans()),
        revised_at=revised_at,
        revised_score=draw(st.sampled_from(SCORES)) if revised_at else None,
        withdrawn_at=later_fact(draw, member, given_at),
        shielded_at=later_fact(draw, member, given_at),
        # A fake-trade case may be confirmed at any time after the order.
        fake_at=later_fact(draw, member, created + 5 * DAY),
    )


@st.composite
def member_ratings(draw: st.DrawFn, rulebook: Rulebook) -> list[RatingRecord]:
    """One member's ratings in one role, from a few counterparties. Few items
    make 14-day groups; a quiet, one-sided member with many items reaches the cap."""
    member = Member(
        rater=draw(st.sampled_from(("buyer", "seller"))),
        raters=("c1", "c2", "c3")[: draw(st.integers(1, 3))],
        items=draw(st.sampled_from((("i1", "i2"), tuple(f"i{n}" for n in range(20))))),
        scores=draw(st.sampled_from((SCORES, ("positive",), ("negative", "neutral")))),
        quiet=draw(st.booleans()),
        days=draw(st.sampled_from((THREE_WEEKS, MONTH_END_WEEK))),
    )
    count = draw(st.integers(0, 20))
    return [draw(rating(number=n, member=member, rulebook=rulebook)) for n in range(count)]


def window(rulebook: Rulebook) -> timedelta:
    return timedelta(days=rulebook.scoring.credit.positive_rate_window_days)


def probe_instants(records: Iterable[RatingRecord], rulebook: Rulebook) -> list[datetime]:
    records = list(records)
    edges = breakpoints(records) + [r.succeeded_at + window(rulebook) for r in records]
    edges.append(datetime(2024, 1, 1, tzinfo=UTC))
    return sorted(
        {edge + shift for edge in edges for shift in (-MICROSECOND, 0 * DAY, MICROSECOND)}
    )


def steps_of(records: Iterable[RatingRecord], rulebook: Rulebook) -> dict[str, tuple[Step, ...]]:
    return {
        rater_id: group_steps(
            group, rulebook.scoring, minor_per_major=rulebook.policy.minor_per_major
        )
        for rater_id, group in by_counterparty(records).items()
    }


def assert_sums_are_the_reference(
    steps: Mapping[Any, Sequence[Step]], records: list[RatingRecord], rulebook: Rulebook
) -> None:
    """At every probe instant, the figures from the steps are those ``evaluate`` gives."""
    for as_of in probe_instants(records, rulebook):
        expected = evaluate(
            records, as_of, rulebook.scoring, minor_per_major=rulebook.policy.minor_per_major
        )
        summary = member_summary_at(steps, as_of, rulebook.scoring)
        assert summary == msgspec.structs.replace(expected, ratings=()), as_of


@per_rulebook
def test_the_summary_from_steps_is_the_reference_credit(name: str, data: st.DataObject) -> None:
    rulebook = RULEBOOKS[name]
    records = data.draw(member_ratings(rulebook))
    steps = steps_of(records, rulebook)
    assert_sums_are_the_reference(steps, records, rulebook)


@per_rulebook
def test_group_steps_are_sorted_merged_and_do_not_depend_on_record_order(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    records = data.draw(member_ratings(rulebook))
    for group in by_counterparty(records).values():
        shuffled = data.draw(st.permutations(group))
        minor_per_major = rulebook.policy.minor_per_major
        steps = group_steps(group, rulebook.scoring, minor_per_major=minor_per_major)
        assert group_steps(shuffled, rulebook.scoring, minor_per_major=minor_per_major) == steps
        instants = [step.instant for step in steps]
        assert instants == sorted(set(instants))
        assert all(any(step.values) and len(step.values) == len(COMPONENTS) for step in steps)


def earlier_version(
    data: st.DataObject, group: list[RatingRecord], rulebook: Rulebook
) -> list[RatingRecord]:
    """The group as the log knew it at an earlier time: ratings given later not
    there yet, later facts not recorded yet, and a rating not yet shown may
    have been due to show later (the other side had not rated yet)."""
    known_at = data.draw(st.sampled_from(probe_instants(group, rulebook)))
    earlier = []
    for record in group:
        if record.given_at > known_at:
            continue
        facts = {
            field: None if at is None or at > known_at else at
            for field in ("revised_at", "withdrawn_at", "shielded_at", "fake_at")
            for at in [getattr(record, field)]
        }
        if record.visible_at > known_at and data.draw(st.booleans()):
            facts["visible_at"] = record.visible_at + 2 * DAY
        earlier.append(msgspec.structs.replace(record, **facts))
    return earlier


@per_rulebook
def test_steps_after_new_facts_equal_steps_recomputed_in_full(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    scoring, minor_per_major = rulebook.scoring, rulebook.policy.minor_per_major
    for group in by_counterparty(data.draw(member_ratings(rulebook))).values():
        earlier = earlier_version(data, group, rulebook)
        first_change = earliest_change(earlier, group)
        if first_change is None:
            assert earlier == group
            continue
        # Any instant up to the first change will do; an earlier one redoes more,
        # and one at a trade's window end must still close that window.
        probes = [at for at in probe_instants(group, rulebook) if at < first_change]
        ends = [r.succeeded_at + window(rulebook) for r in group]
        since = data.draw(
            st.sampled_from([first_change, *probes, *(end for end in ends if end < first_change)])
        )
        previous = group_steps(earlier, scoring, minor_per_major=minor_per_major)
        updated = group_steps_since(
            previous, group, since, scoring, minor_per_major=minor_per_major
        )
        assert updated == group_steps(group, scoring, minor_per_major=minor_per_major)


def cap_group_steps(
    records: list[RatingRecord], rulebook: Rulebook
) -> dict[object, tuple[Step, ...]]:
    """Each cap group's steps, its unit judged with the rater's other ratings as context."""
    scoring = rulebook.scoring
    return {
        key: group_steps(
            unit_of(group, records, scoring),
            scoring,
            minor_per_major=rulebook.policy.minor_per_major,
            counted={(r.trade_id, r.rater) for r in group},
        )
        for key, group in by_cap_group(records, scoring).items()
    }


@per_rulebook
def test_the_summary_from_cap_groups_is_the_reference_credit(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    assert splits_by_cap_period(rulebook.scoring)
    records = data.draw(member_ratings(rulebook))
    steps = cap_group_steps(records, rulebook)
    assert_sums_are_the_reference(steps, records, rulebook)


@per_rulebook
def test_new_facts_move_the_sums_by_the_difference_of_their_groups_steps_from_the_change(
    name: str, data: st.DataObject
) -> None:
    """What a view does when facts arrive: only the cap groups the changed ratings
    (and the ratings chained after them) belong to, only from the first change on."""
    assert_new_facts_move_the_sums(RULEBOOKS[name], data)


@per_rulebook
def test_judging_again_from_a_state_kept_every_two_ratings_changes_nothing(
    name: str, data: st.DataObject
) -> None:
    """Groups of a few ratings are judged from the start; kept states every two
    ratings make each breakpoint start from one and stop where the state is back."""
    rulebook = RULEBOOKS[name]
    with mock.patch("projections.credit_steps.CHECKPOINT_RATINGS", 2):
        records = data.draw(member_ratings(rulebook))
        assert_sums_are_the_reference(cap_group_steps(records, rulebook), records, rulebook)
        assert_new_facts_move_the_sums(rulebook, data)


def assert_new_facts_move_the_sums(rulebook: Rulebook, data: st.DataObject) -> None:
    scoring, minor_per_major = rulebook.scoring, rulebook.policy.minor_per_major
    records = data.draw(member_ratings(rulebook))
    earlier = earlier_version(data, records, rulebook)
    old = {(r.trade_id, r.rater): r for r in earlier}
    changed = [r for r in records if old.get((r.trade_id, r.rater)) != r]
    touched = {cap_group(r, scoring) for r in changed} | {
        cap_group(later, scoring) for r in changed for later in chained_after(r, records, scoring)
    }
    added: list[tuple[Step, ...]] = []
    removed: list[tuple[Step, ...]] = []
    for key in touched:
        new_group = [r for r in records if cap_group(r, scoring) == key]
        old_group = [r for r in earlier if cap_group(r, scoring) == key]
        new_unit = unit_of(new_group, records, scoring)
        old_unit = unit_of(old_group, earlier, scoring)
        since = earliest_change(old_unit, new_unit)
        if since is None:
            continue
        for unit, group, into in ((new_unit, new_group, added), (old_unit, old_group, removed)):
            counted = {(r.trade_id, r.rater) for r in group}
            into.append(
                steps_from(unit, since, scoring, minor_per_major=minor_per_major, counted=counted)
            )
    before = list(cap_group_steps(earlier, rulebook).values())
    after = list(cap_group_steps(records, rulebook).values())
    width = len(COMPONENTS)
    for as_of in probe_instants(records, rulebook):
        moved = moved_sums(before, added, removed, as_of, width)
        assert moved == sum_as_of(after, as_of, width), as_of


def test_a_rating_given_at_another_time_differs_from_the_earlier_of_the_two() -> None:
    record = a_rating()
    moved = msgspec.structs.replace(record, given_at=record.given_at + DAY)
    assert earliest_change([moved], [record]) == record.given_at
    assert earliest_change([record], [record]) is None


def a_rating(**facts: object) -> RatingRecord:
    created = datetime(2026, 9, 1, 12, tzinfo=UTC)
    fields: dict[str, object] = {
        "trade_id": "T1",
        "rater": "buyer",
        "rater_id": "buyer-1",
        "ratee_id": "seller-1",
        "item_id": "item-1",
        "amount_minor": 10_000,
        "order_created_at": created,
        "succeeded_at": created + 3 * DAY,
        "given_at": created + 4 * DAY,
        "score": "positive",
        "position": 1,
        "visible_at": created + 6 * DAY,
    }
    fields.update(facts)
    return RatingRecord(**fields)  # type: ignore[arg-type]


def test_a_positive_is_unscored_while_hidden_then_counts_and_leaves_the_window() -> None:
    record = a_rating()
    scoring = RULEBOOKS["taobao-classic"].scoring
    assert group_steps([record], scoring, minor_per_major=100) == (
        Step(record.given_at, (0, 0, 0, 0, 1, 0, 0, 0)),
        Step(record.visible_at, (1, 1, 0, 0, -1, 1, 0, 0)),
        Step(record.succeeded_at + 180 * DAY, (0, 0, 0, 0, 0, -1, 0, 0)),
    )


def test_a_revision_moves_the_counted_score_in_the_window_too() -> None:
    record = a_rating(score="negative")
    revised = msgspec.structs.replace(
        record, revised_at=record.visible_at + DAY, revised_score="positive"
    )
    scoring = RULEBOOKS["taobao-classic"].scoring
    steps = group_steps([revised], scoring, minor_per_major=100)
    assert steps[2] == Step(revised.visible_at + DAY, (2, 1, 0, -1, 0, 1, 0, -1))
    assert earliest_change([record], [revised]) == revised.revised_at


def test_a_group_holds_one_counterparty() -> None:
    scoring = RULEBOOKS["taobao-classic"].scoring
    records = [a_rating(), a_rating(trade_id="T2", rater_id="buyer-2")]
    with pytest.raises(ValueError, match="one counterparty"):
        group_steps(records, scoring, minor_per_major=100)


# --- The rules applied one rating at a time are the rules applied one rule at a time ---


def rule_by_rule(records: Iterable[RatingRecord], as_of: datetime, rulebook: Rulebook) -> list[Any]:
    """docs/rules.md §3 read literally: each exclusion rule, in the rulebook's
    order, applied to the ratings that passed the rules before it. The oracle
    for ``credit.verdicts``, which judges one rating at a time."""
    credit = rulebook.scoring.credit
    known = sorted((r for r in records if r.given_at <= as_of), key=lambda r: r.order_key)
    found: dict[tuple[str, str], tuple[str | None, Score]] = {}
    survivors = []
    for record in known:
        if record.visible_at > as_of:
            found[(record.trade_id, record.rater)] = ("hidden", record.score_at(as_of))
        else:
            survivors.append(record)
    for rule in credit.exclusions:
        kept = {(r.trade_id, r.rater) for r in passing_rule(rule, survivors, as_of, rulebook)}
        for record in survivors:
            if (record.trade_id, record.rater) not in kept:
                found[(record.trade_id, record.rater)] = (rule, record.score_at(as_of))
        survivors = [r for r in survivors if (r.trade_id, r.rater) in kept]
    for record in survivors:
        found[(record.trade_id, record.rater)] = (None, record.score_at(as_of))
    return [(r.trade_id, *found[(r.trade_id, r.rater)]) for r in known]


def passing_rule(
    rule: str, ratings: list[RatingRecord], at: datetime, rulebook: Rulebook
) -> list[RatingRecord]:
    credit = rulebook.scoring.credit
    if rule == "fake_trade":
        return [r for r in ratings if r.fake_at is None or r.fake_at > at]
    if rule == "shielded":
        return [r for r in ratings if r.shielded_at is None or r.shielded_at > at]
    if rule == "withdrawn":
        return [r for r in ratings if r.withdrawn_at is None or r.withdrawn_at > at]
    if rule == "amount_le_1":
        floor = credit.min_amount_exclusive_major * rulebook.policy.minor_per_major
        return [r for r in ratings if r.amount_minor > floor]
    if rule == "not_allowed_by_rulebook":
        allowed = credit.seller_to_buyer_scores
        return [r for r in ratings if r.rater == "buyer" or r.score_at(at) in allowed]
    if rule == "same_item_14d":
        kept: list[RatingRecord] = []
        groups: dict[tuple[str, str], tuple[datetime | None, set[Score]]] = {}
        for record in ratings:
            key = (record.rater_id, record.item_id)
            start, seen = groups.get(key, (None, set()))
            if start is None or record.order_created_at >= start + timedelta(
                days=credit.same_item_group_days
            ):
                start, seen = record.order_created_at, set()
            score = record.score_at(at)
            if score == "neutral" or score not in seen:
                kept.append(record)
                seen.add(score)
            groups[key] = (start, seen)
        return kept
    within: list[RatingRecord] = []
    nets: dict[tuple[str, tuple[int, int]], int] = {}
    for record in ratings:
        bucket = (record.rater_id, cap_period(record.order_created_at, rulebook.scoring))
        moved = nets.get(bucket, 0) + credit.points.of(record.score_at(at))
        if credit.cap_min <= moved <= credit.cap_max:
            nets[bucket] = moved
            within.append(record)
    return within


@per_rulebook
def test_judging_one_rating_at_a_time_gives_the_verdicts_of_one_rule_at_a_time(
    name: str, data: st.DataObject
) -> None:
    rulebook = RULEBOOKS[name]
    records = data.draw(member_ratings(rulebook))
    reordered = [*rulebook.scoring.credit.exclusions]
    if data.draw(st.booleans(), label="reordered rules"):
        reordered = data.draw(st.permutations(reordered))
    scoring = msgspec.structs.replace(
        rulebook.scoring,
        credit=msgspec.structs.replace(rulebook.scoring.credit, exclusions=tuple(reordered)),
    )
    changed = msgspec.structs.replace(rulebook, scoring=scoring)
    for as_of in probe_instants(records, rulebook):
        found = verdicts(records, as_of, scoring, minor_per_major=rulebook.policy.minor_per_major)
        judged = [(v.record.trade_id, v.reason, v.score) for v in found]
        assert judged == rule_by_rule(records, as_of, changed), as_of
