"""Time-indexed sums: exact as-of reads from at most two rows, rows that depend only on the changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from random import Random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.timeline import (
    Change,
    DayRow,
    MemoryTimeline,
    MonthRow,
    TimelineError,
    Vector,
)

KEY = "seller-7:seller:credit"
WIDTH = 2
ONE_US = timedelta(microseconds=1)
SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2022, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
FAR_BACK = datetime(1965, 1, 1, tzinfo=UTC)

# Month and day starts, where a bucket ends one microsecond before the next begins.
month_starts = st.builds(
    lambda year, month: datetime(year, month, 1, tzinfo=UTC),
    st.integers(2022, 2026),
    st.integers(1, 12),
)
day_starts = st.builds(
    lambda day: START + timedelta(days=day), st.integers(0, (END - START).days - 1)
)
boundaries = st.one_of(month_starts, day_starts).flatmap(
    lambda start: st.sampled_from([start, start - ONE_US])
)
anywhere = st.builds(
    lambda us: START + us * ONE_US,
    st.integers(0, (END - START) // ONE_US),
)
# Most changes land near "now" (late 2026), some up to 20 days ahead, a few far back.
near_now = st.builds(
    lambda us: datetime(2026, 6, 1, tzinfo=UTC) + us * ONE_US,
    st.integers(-(10 * 86_400 * 10**6), 20 * 86_400 * 10**6),
)
# Back-dated facts, rare in practice, reach far back; the epoch itself is a day boundary too.
far_past = st.one_of(
    st.sampled_from([datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC) - ONE_US]),
    st.builds(lambda us: START - us * ONE_US, st.integers(1, (START - FAR_BACK) // ONE_US)),
)
instants = st.one_of(boundaries, anywhere, near_now, far_past)
values = st.tuples(st.integers(-3, 3), st.integers(-(10**12), 10**12))


@st.composite
def changes(draw: st.DrawFn) -> list[Change]:
    """A stream whose instants repeat often: several changes share each drawn instant."""
    pool = draw(st.lists(instants, min_size=1, max_size=12))
    return draw(st.lists(st.builds(Change, st.sampled_from(pool), values), min_size=1, max_size=40))


def naive_sum(changes: list[Change], at: datetime) -> Vector:
    total = [0] * WIDTH
    for change in changes:
        if change.at <= at:
            total = [a + b for a, b in zip(total, change.values, strict=True)]
    return tuple(total)


def in_batches(items: list[Change], cuts: list[int]) -> list[list[Change]]:
    edges = [0, *sorted(cut % (len(items) + 1) for cut in cuts), len(items)]
    return [items[start:end] for start, end in itertools.pairwise(edges)]


def queries_around(changes: list[Change], extra: list[datetime]) -> list[datetime]:
    """Each change instant, a microsecond either side, and the drawn extra instants."""
    near = [change.at + step for change in changes for step in (-ONE_US, 0 * ONE_US, ONE_US)]
    return [*near, *extra, FAR_BACK - ONE_US, START - ONE_US, END]


@settings(max_examples=150, deadline=None)
@given(
    stream=changes(),
    removal_mask=st.lists(st.booleans(), min_size=40, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    extra=st.lists(instants, max_size=10),
)
def test_value_at_is_the_naive_sum_read_from_two_rows_at_most(
    stream: list[Change], removal_mask: list[bool], cuts: list[int], extra: list[datetime]
) -> None:
    timeline = MemoryTimeline()
    for batch in in_batches(stream, cuts):
        timeline.apply(KEY, added=batch)
    removed = [change for change, gone in zip(stream, removal_mask, strict=False) if gone]
    kept = [change for change, gone in zip(stream, removal_mask, strict=False) if not gone]
    for batch in in_batches(removed, cuts):
        timeline.apply(KEY, removed=batch)
    for at in queries_around(stream, extra):
        timeline.rows_read = 0
        assert timeline.value_at(KEY, at, WIDTH) == naive_sum(kept, at)
        assert timeline.rows_read <= 2
        # The same instant in another offset is the same point on the timeline.
        assert timeline.value_at(KEY, at.astimezone(SHANGHAI), WIDTH) == naive_sum(kept, at)


@settings(max_examples=150, deadline=None)
@given(stream=changes(), extra=st.lists(instants, max_size=10))
def test_the_next_change_is_the_first_instant_whose_changes_do_not_cancel(
    stream: list[Change], extra: list[datetime]
) -> None:
    timeline = MemoryTimeline()
    timeline.apply(KEY, added=stream)
    moving = sorted(
        {c.at for c in stream if any(naive_sum([d for d in stream if d.at == c.at], c.at))}
    )
    for at in queries_around(stream, extra):
        timeline.rows_read = 0
        expected = next((instant for instant in moving if instant > at), None)
        assert timeline.next_change_after(KEY, at) == expected, at
        assert timeline.rows_read <= 5


@settings(max_examples=100, deadline=None)
@given(
    stream=changes(),
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    undone=st.lists(st.builds(Change, instants, values), max_size=5),
)
def test_rows_depend_only_on_the_set_of_changes(
    stream: list[Change], order: Random, cuts: list[int], undone: list[Change]
) -> None:
    in_order = MemoryTimeline()
    in_order.apply(KEY, added=stream)
    shuffled = list(stream)
    order.shuffle(shuffled)
    reordered = MemoryTimeline()
    # Changes added and later taken back, interleaved, and a removal before its addition.
    reordered.apply(KEY, removed=undone)
    for batch in in_batches(shuffled, cuts):
        reordered.apply(KEY, added=batch)
    reordered.apply(KEY, added=undone)
    assert reordered.all_rows() == in_order.all_rows()


@settings(max_examples=100, deadline=None)
@given(stream=changes(), order=st.randoms(use_true_random=False))
def test_removing_everything_leaves_no_rows(stream: list[Change], order: Random) -> None:
    timeline = MemoryTimeline()
    timeline.apply(KEY, added=stream)
    timeline.apply("another key", added=stream[:1])
    shuffled = list(stream)
    order.shuffle(shuffled)
    for change in shuffled:
        timeline.apply(KEY, removed=[change])
    assert all(row.key == "another key" for rows in timeline.all_rows() for row in rows)
    timeline.apply("another key", removed=stream[:1])
    assert timeline.all_rows() == ((), ())


@settings(max_examples=100, deadline=None)
@given(stream=changes(), late=st.builds(Change, instants, values))
def test_a_write_touches_its_day_and_the_month_rows_from_its_month_on(
    stream: list[Change], late: Change
) -> None:
    timeline = MemoryTimeline()
    timeline.apply(KEY, added=stream)
    months_before = {row.month: row for row in timeline.all_rows()[0]}
    writes = timeline.apply(KEY, added=[late])
    late_month = late.at.year * 12 + late.at.month - 1
    late_day = late.at.date().toordinal()
    assert {row.day for row in writes.days} | set(writes.deleted_days) <= {late_day}
    rewritten = {row.month for row in writes.months} | set(writes.deleted_months)
    assert all(month >= late_month for month in rewritten)
    assert rewritten <= {late_month} | {month for month in months_before if month >= late_month}


def test_a_window_pair_within_a_month_leaves_later_months_alone() -> None:
    timeline = MemoryTimeline()
    april = Change(datetime(2026, 4, 2, tzinfo=UTC), (1, 1))
    timeline.apply(KEY, added=[april])
    entered = datetime(2026, 3, 3, 9, tzinfo=UTC)
    writes = timeline.apply(
        KEY,
        added=[Change(entered, (5, 0)), Change(entered + timedelta(days=15), (-5, 0))],
    )
    assert [row.month for row in writes.months] == [2026 * 12 + 2]
    assert timeline.value_at(KEY, entered + timedelta(days=15) - ONE_US, WIDTH) == (5, 0)
    assert timeline.value_at(KEY, entered + timedelta(days=15), WIDTH) == (0, 0)


def test_a_change_at_midnight_counts_from_that_microsecond() -> None:
    timeline = MemoryTimeline()
    midnight = datetime(2026, 3, 1, tzinfo=UTC)
    timeline.apply(KEY, added=[Change(midnight, (3, 1))])
    assert timeline.value_at(KEY, midnight - ONE_US, WIDTH) == (0, 0)
    assert timeline.value_at(KEY, midnight, WIDTH) == (3, 1)
    assert timeline.value_at(KEY, datetime(2030, 1, 1, tzinfo=UTC), WIDTH) == (3, 1)


def test_a_key_without_changes_is_zero() -> None:
    timeline = MemoryTimeline()
    assert timeline.value_at(KEY, datetime(2026, 3, 1, tzinfo=UTC), 3) == (0, 0, 0)
    assert timeline.apply(KEY).months == ()


@given(stream=changes())
def test_rows_round_trip_through_msgpack(stream: list[Change]) -> None:
    timeline = MemoryTimeline()
    writes = timeline.apply(KEY, added=stream)
    months, days = timeline.all_rows()
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(months), type=tuple[MonthRow, ...]) == (
        months
    )
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(days), type=tuple[DayRow, ...]) == days
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(writes), type=type(writes)) == writes


def test_a_naive_instant_is_refused() -> None:
    timeline = MemoryTimeline()
    with pytest.raises(TimelineError, match="no timezone"):
        timeline.apply(KEY, added=[Change(datetime(2026, 3, 1), (1, 1))])
    with pytest.raises(TimelineError, match="no timezone"):
        timeline.value_at(KEY, datetime(2026, 3, 1), WIDTH)


def test_widths_of_one_key_must_agree() -> None:
    timeline = MemoryTimeline()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(TimelineError, match="different widths"):
        timeline.apply(KEY, added=[Change(at, (1, 1)), Change(at, (1,))])
    timeline.apply(KEY, added=[Change(at, (1, 1))])
    assert timeline.all_rows()[0][0].opening == (0, 0)
    for other_day in (at, at + timedelta(days=1), at + timedelta(days=40)):
        with pytest.raises(TimelineError, match="width"):
            timeline.apply(KEY, added=[Change(other_day, (1, 1, 1))])
    with pytest.raises(TimelineError, match="width"):
        timeline.value_at(KEY, at, 3)
