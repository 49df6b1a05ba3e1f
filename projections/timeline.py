"""Time-indexed sums: a key's figure components as of any instant, from at most two rows.

A figure component kept incrementally is a sum of step changes over business
time: ``Change(at, values)`` adds ``values`` from ``at`` on. A trailing window is
a pair of changes (+v when a fact enters it, -v where the caller's half-open
window lets it leave), so a figure as of T is the component-wise sum of every
change with ``at <= T``, exact to the microsecond. Values are tuples of ints of
one width per key (sums and counts). Keys are the caller's strings, opaque here.

Layout, per key. Days and months are UTC calendar units: storage buckets, not
business calendars.

- ``MonthRow``, one per month that has a day row: the sum of every change before
  the month starts (``opening``), the days of the month that have a ``DayRow``
  (``days``) and, aligned with them, the sum of the month's own changes up to
  the end of each of those days (``within``; the key's sum at the end of day
  ``days[i]`` is ``opening + within[i]``, and stays so until the next day with
  a row). Keeping ``within`` apart from the opening means a change in an
  earlier month rewrites only the opening of the months after it; keeping it
  per day with changes, not per calendar day, makes restating a month cost
  what the month holds.
- ``DayRow``, one per day with changes: the day's distinct instants, ascending,
  and the running sum of that day's changes up to each of them.

Changes at one instant are merged; an instant whose changes cancel out is
dropped, a day left without instants loses its row, a month left without day
rows loses its row. The rows are therefore a function of the set of changes
alone: applying the same changes in any order or batching gives the same rows
(replaying a view must be deterministic), and removing everything leaves none.

Reading ``value_at(T)`` touches at most two rows, however many changes or months
the key holds: the latest month row at or before T's month (one index seek,
``month <= m ORDER BY month DESC LIMIT 1``), and only when that is T's own month
and T's day has changes, T's day row, where a bisect finds the running sum at
the last instant ``<= T``. Both are asked for in one read (``month_and_day``),
so a key with changes on T's day costs no more round trips than one without. A month row carries its own opening so the previous
month's row is never needed; that is why two levels suffice where a separate
cumulative row per month would make three reads.

The day row is the only row that grows with traffic. A day of 1,000 distinct
instants at width 4 is about 20 KB of msgpack and decodes in about 0.1 ms with
msgspec (flattening the sums into one array saves under 10%: the cost is the
ints themselves), and rewriting it for one change takes about 2 ms. That is far
below recomputing such a member's figures from their history, so there is no
finer level. Should days grow much busier, an hour row under the day row bounds
both costs at the price of a third read for instants inside such a day.

Writing, ``writes_for(rows, key, added, removed)``: a removal is the negation of
a change added before, so batches commute. It reads the day rows of the days it
touches, the month rows from the earliest touched month on (one range read) and
the latest month row before that month. It rewrites those day rows, the month
row of each touched month, and every later month row whose opening moves (a
batch that nets to zero beyond a month, such as a window pair within it, stops
there). A change near the present touches one or two month rows; a back-dated
one rewrites one month row per month of history after it: bounded by the months
the key spans (a decade is 120 rows), never by the number of changes.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import NamedTuple, Protocol

import msgspec

Vector = tuple[int, ...]
# The version of the row layout below: rows written in another layout are not
# read (a view that holds them answers from facts until it is rebuilt).
LAYOUT = 3

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = EPOCH.date().toordinal()
MICROSECOND = timedelta(microseconds=1)
DAY_US = 86_400_000_000


class TimelineError(ValueError):
    """A change or a row that breaks the layout's rules: a caller's bug or damaged rows."""


class Change(msgspec.Struct, frozen=True):
    """``values`` added to a key's sums from ``at`` (an aware datetime) on."""

    at: datetime
    values: Vector


class MonthRow(msgspec.Struct, frozen=True, array_like=True):
    key: str
    month: int  # year * 12 + month - 1, so consecutive months are consecutive ints
    opening: Vector  # every change before the month starts
    within: tuple[Vector, ...]  # [i]: the month's changes up to the end of day days[i]
    days: tuple[int, ...]  # days of the month (1-31) that have a DayRow, ascending


class DayRow(msgspec.Struct, frozen=True, array_like=True):
    key: str
    day: int  # the day's proleptic Gregorian ordinal, as date.toordinal()
    instants: tuple[int, ...]  # microseconds since 1970-01-01 UTC, ascending, distinct
    running: tuple[Vector, ...]  # [i]: the day's changes up to and including instants[i]


class TimelineWrites(msgspec.Struct, frozen=True):
    """The rows of one key to upsert and to delete, as one transaction."""

    key: str
    months: tuple[MonthRow, ...] = ()
    days: tuple[DayRow, ...] = ()
    deleted_months: tuple[int, ...] = ()
    deleted_days: tuple[int, ...] = ()


class TimelineRows(Protocol):
    """The three row reads the layout needs; a view answers each with one index lookup."""

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None: ...

    def months_from(self, key: str, month: int) -> list[MonthRow]: ...

    def day(self, key: str, day: int) -> DayRow | None: ...

    def month_after(self, key: str, month: int) -> MonthRow | None: ...

    def month_and_day(
        self, key: str, month: int, day: int
    ) -> tuple[MonthRow | None, DayRow | None]:
        """``month_at_or_before`` and ``day`` in one read: a value needs the day
        row whenever its day has changes, so asking for both at once spares a
        busy key a second round trip."""
        ...


def value_at(rows: TimelineRows, key: str, at: datetime, width: int) -> Vector:
    """The component-wise sum of the key's changes with instant ``<= at``."""
    at_us = micros(at)
    day = day_of(at_us)
    month, day_of_month = month_of(day)
    row, day_row = rows.month_and_day(key, month, day)
    if row is None:
        return zeros(width)
    check_width(row.opening, width)
    if row.month < month:
        return add(row.opening, row.within[-1])
    index = bisect_left(row.days, day_of_month)
    before_day = add(row.opening, row.within[index - 1]) if index else row.opening
    if index == len(row.days) or row.days[index] != day_of_month:
        return before_day
    if day_row is None:
        raise TimelineError(f"month row of {key!r} names day {day} that has no row")
    within = bisect_right(day_row.instants, at_us)
    return add(before_day, day_row.running[within - 1]) if within else before_day


def next_change_after(rows: TimelineRows, key: str, at: datetime) -> datetime | None:
    """The first instant after ``at`` at which the key's sums change (None: never).

    At most five row reads: ``at``'s month row and day row, the next day row of
    that month, the next month row and its first day row.
    """
    at_us = micros(at)
    day = day_of(at_us)
    month, day_of_month = month_of(day)
    row = rows.month_at_or_before(key, month)
    if row is not None and row.month == month:
        later_days = [d for d in row.days if d >= day_of_month]
        for candidate in later_days[:2]:
            day_row = rows.day(key, day + candidate - day_of_month)
            if day_row is None:
                raise TimelineError(f"month row of {key!r} names a day that has no row")
            index = bisect_right(day_row.instants, at_us)
            if index < len(day_row.instants):
                return instant_of(day_row.instants[index])
    following = rows.month_after(key, month)
    if following is None:
        return None
    year, month_index = divmod(following.month, 12)
    first_day = date(year, month_index + 1, following.days[0]).toordinal()
    day_row = rows.day(key, first_day)
    if day_row is None:
        raise TimelineError(f"month row of {key!r} names a day that has no row")
    return instant_of(day_row.instants[0])


class Reading(NamedTuple):
    """Several keys' sums as of one instant, and the first instant after it at
    which any of them changes (None: never, or not asked for)."""

    values: dict[str, Vector]
    changes_after: datetime | None


def reading_of(
    rows: TimelineRows, widths: Mapping[str, int], at: datetime, *, changes: bool = True
) -> Reading:
    """Each key's value at ``at`` (at most two rows per key) and, unless
    ``changes`` is false, their next change (at most five more)."""
    values = {key: value_at(rows, key, at, width) for key, width in widths.items()}
    if not changes:
        return Reading(values, None)
    found = (next_change_after(rows, key, at) for key in widths)
    return Reading(values, min((c for c in found if c is not None), default=None))


class SpanRows(Protocol):
    """The row reads ``values_over`` needs: ranges, so a series costs one read."""

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None: ...

    def months_from(self, key: str, month: int) -> list[MonthRow]: ...

    def days_of(self, wanted: Mapping[str, Sequence[int]]) -> list[DayRow]:
        """The day rows of each key's days that exist."""
        ...


def values_over(
    rows: SpanRows, widths: Mapping[str, int], ats: Sequence[datetime]
) -> list[dict[str, Vector]]:
    """Each key's value at each of ``ats`` (ascending), equal to ``value_at``'s.

    The rows are read once for the whole series: per key, the month row at or
    before the first instant's month, the month rows after it (those past the
    last instant's month are dropped), and the day rows of the instants' own
    days. ``value_at`` then runs on those rows in memory, so each instant costs
    a bisect or two, and the rows read grow with the instants asked for, never
    with the key's changes.
    """
    if not ats:
        return []
    days = sorted({day_of(micros(at)) for at in ats})
    first, last = month_of(days[0])[0], month_of(days[-1])[0]
    local = MemoryTimeline()
    months: list[MonthRow] = []
    for key in widths:
        opening = rows.month_at_or_before(key, first)
        months += [opening] if opening is not None else []
        months += [row for row in rows.months_from(key, first + 1) if row.month <= last]
    local.preload(months, rows.days_of(dict.fromkeys(widths, days)))
    return [{key: value_at(local, key, at, width) for key, width in widths.items()} for at in ats]


def instant_of(at_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=at_us)


def writes_for(
    rows: TimelineRows, key: str, added: Iterable[Change], removed: Iterable[Change]
) -> TimelineWrites:
    """The row writes that add ``added`` to a key's changes and take ``removed`` away."""
    signed = [*((change, 1) for change in added), *((change, -1) for change in removed)]
    if not signed:
        return TimelineWrites(key)
    width = common_width(change for change, _ in signed)
    deltas = net_by_day(signed)
    if not deltas:
        return TimelineWrites(key)
    day_rows = {day: merged_day(key, rows.day(key, day), delta) for day, delta in deltas.items()}
    month_rows, deleted_months = restated_months(rows, key, width, deltas, day_rows)
    return TimelineWrites(
        key=key,
        months=month_rows,
        days=tuple(row for row in day_rows.values() if row is not None),
        deleted_months=deleted_months,
        deleted_days=tuple(day for day, row in day_rows.items() if row is None),
    )


def net_by_day(signed: Iterable[tuple[Change, int]]) -> dict[int, dict[int, Vector]]:
    """Each instant's net change, grouped by day; instants that net to zero are left out."""
    by_instant: dict[int, Vector] = {}
    for change, sign in signed:
        at_us = micros(change.at)
        values = tuple(sign * value for value in change.values)
        by_instant[at_us] = add(by_instant[at_us], values) if at_us in by_instant else values
    by_day: dict[int, dict[int, Vector]] = defaultdict(dict)
    for at_us, values in by_instant.items():
        if any(values):
            by_day[day_of(at_us)][at_us] = values
    return by_day


def common_width(changes: Iterable[Change]) -> int:
    widths = {len(change.values) for change in changes}
    if len(widths) != 1:
        raise TimelineError(f"changes of one key have different widths: {sorted(widths)}")
    return widths.pop()


def merged_day(key: str, old: DayRow | None, delta: dict[int, Vector]) -> DayRow | None:
    """The day row with ``delta`` merged in, or None when no instant is left."""
    changes = day_changes(old) if old is not None else {}
    for at_us, values in delta.items():
        if at_us in changes:
            check_width(changes[at_us], len(values))
        changes[at_us] = add(changes[at_us], values) if at_us in changes else values
    instants = sorted(at_us for at_us, values in changes.items() if any(values))
    if not instants:
        return None
    running = tuple(accumulate((changes[at_us] for at_us in instants), add))
    return DayRow(key, day_of(instants[0]), tuple(instants), running)


def day_changes(row: DayRow) -> dict[int, Vector]:
    """Each instant's own change, undoing the running sum."""
    previous = [zeros(len(row.running[0])), *row.running[:-1]]
    return {
        at_us: subtract(total, before)
        for at_us, total, before in zip(row.instants, row.running, previous, strict=True)
    }


def restated_months(
    rows: TimelineRows,
    key: str,
    width: int,
    deltas: dict[int, dict[int, Vector]],
    day_rows: dict[int, DayRow | None],
) -> tuple[tuple[MonthRow, ...], tuple[int, ...]]:
    """The month rows that change, from the earliest touched month on, and those to delete.

    Walks the months in order carrying the sum of everything before each: the
    opening of a month is the closing of the month row before it.
    """
    touched = touched_days_by_month(deltas, day_rows)
    first = min(touched)
    previous = rows.month_at_or_before(key, first - 1)
    carried = closing(previous) if previous is not None else zeros(width)
    old_rows = {row.month: row for row in rows.months_from(key, first)}
    upserts: list[MonthRow] = []
    deletes: list[int] = []
    for month in sorted(old_rows.keys() | touched.keys()):
        old = old_rows.get(month)
        new = restated_month(key, month, old, carried, touched.get(month, {}))
        if new is None and old is not None:
            deletes.append(month)
        elif new is not None and new != old:
            upserts.append(new)
        carried = closing(new) if new is not None else carried
    return tuple(upserts), tuple(deletes)


def touched_days_by_month(
    deltas: dict[int, dict[int, Vector]], day_rows: dict[int, DayRow | None]
) -> dict[int, dict[int, tuple[Vector, bool]]]:
    """Per month, per day of the month: the day's net change and whether it keeps a row."""
    touched: dict[int, dict[int, tuple[Vector, bool]]] = defaultdict(dict)
    for day, delta in deltas.items():
        month, day_of_month = month_of(day)
        touched[month][day_of_month] = (sum_of(delta.values()), day_rows[day] is not None)
    return touched


def restated_month(
    key: str,
    month: int,
    old: MonthRow | None,
    opening: Vector,
    touched: dict[int, tuple[Vector, bool]],
) -> MonthRow | None:
    """The month row given its new opening and its touched days, or None when it has no days."""
    if old is not None and not touched:
        return msgspec.structs.replace(old, opening=opening)
    totals = day_totals(old) if old is not None else {}
    for day_of_month, (delta, has_row) in touched.items():
        total = add(totals[day_of_month], delta) if day_of_month in totals else delta
        if has_row:
            totals[day_of_month] = total
        elif any(total):
            # A day without a row holds no change, so its net change must be zero.
            raise TimelineError(
                f"day {day_of_month} of month {month} of {key!r} has sums but no row"
            )
        else:
            totals.pop(day_of_month, None)
    if not totals:
        return None
    days = tuple(sorted(totals))
    within = tuple(accumulate((totals[day] for day in days), add))
    return MonthRow(key, month, opening, within, days)


def closing(row: MonthRow) -> Vector:
    """The key's sum at the end of the row's month."""
    return add(row.opening, row.within[-1])


def day_totals(row: MonthRow) -> dict[int, Vector]:
    """Each day's own net change, by day of the month, undoing the running sum."""
    if len(row.within) != len(row.days) or not row.days:
        raise TimelineError(
            f"month {row.month} of {row.key!r} has {len(row.days)} days but {len(row.within)} sums"
        )
    previous = [zeros(len(row.opening)), *row.within[:-1]]
    return {
        day: subtract(total, before)
        for day, total, before in zip(row.days, row.within, previous, strict=True)
    }


def micros(at: datetime) -> int:
    """Microseconds since 1970-01-01 UTC; a naive datetime has no place on the timeline."""
    if at.utcoffset() is None:
        raise TimelineError(f"instant {at.isoformat()} has no timezone")
    return (at - EPOCH) // MICROSECOND


def day_of(at_us: int) -> int:
    return EPOCH_DAY + at_us // DAY_US


def month_of(day: int) -> tuple[int, int]:
    """(month number, day of the month) of a day ordinal."""
    calendar_day = date.fromordinal(day)
    return calendar_day.year * 12 + calendar_day.month - 1, calendar_day.day


def zeros(width: int) -> Vector:
    return (0,) * width


def add(left: Vector, right: Vector) -> Vector:
    # map over operator functions: about three times faster than a generator
    # over zip, and restating a month adds a vector per day.
    if len(left) != len(right):
        raise TimelineError(f"a key's values have width {len(right)}, not {len(left)}")
    return tuple(map(operator.add, left, right))


def subtract(left: Vector, right: Vector) -> Vector:
    if len(left) != len(right):
        raise TimelineError(f"a key's values have width {len(right)}, not {len(left)}")
    return tuple(map(operator.sub, left, right))


def sum_of(vectors: Iterable[Vector]) -> Vector:
    return tuple(map(sum, zip(*vectors, strict=True)))


def check_width(values: Vector, width: int) -> None:
    if len(values) != width:
        raise TimelineError(f"a key's values have width {len(values)}, not {width}")


class MemoryTimeline:
    """Timeline rows kept in dicts, for tests and the memory view; counts the rows it reads."""

    def __init__(self) -> None:
        self._months: dict[str, dict[int, MonthRow]] = {}
        self._month_order: dict[str, list[int]] = {}
        self._days: dict[tuple[str, int], DayRow] = {}
        self.rows_read = 0

    def month_at_or_before(self, key: str, month: int) -> MonthRow | None:
        self.rows_read += 1
        order = self._month_order.get(key, [])
        index = bisect_right(order, month)
        return self._months[key][order[index - 1]] if index else None

    def months_from(self, key: str, month: int) -> list[MonthRow]:
        order = self._month_order.get(key, [])
        found = [self._months[key][m] for m in order[bisect_left(order, month) :]]
        self.rows_read += len(found)
        return found

    def day(self, key: str, day: int) -> DayRow | None:
        self.rows_read += 1
        return self._days.get((key, day))

    def month_after(self, key: str, month: int) -> MonthRow | None:
        self.rows_read += 1
        order = self._month_order.get(key, [])
        index = bisect_right(order, month)
        return self._months[key][order[index]] if index < len(order) else None

    def month_and_day(
        self, key: str, month: int, day: int
    ) -> tuple[MonthRow | None, DayRow | None]:
        return self.month_at_or_before(key, month), self.day(key, day)

    def days_of(self, wanted: Mapping[str, Sequence[int]]) -> list[DayRow]:
        found = [self._days.get((key, day)) for key, days in wanted.items() for day in days]
        rows = [row for row in found if row is not None]
        self.rows_read += len(rows)
        return rows

    def next_change_after(self, key: str, at: datetime) -> datetime | None:
        return next_change_after(self, key, at)

    def value_at(self, key: str, at: datetime, width: int) -> Vector:
        return value_at(self, key, at, width)

    def apply(
        self, key: str, added: Iterable[Change] = (), removed: Iterable[Change] = ()
    ) -> TimelineWrites:
        writes = writes_for(self, key, added, removed)
        self.write(writes)
        return writes

    def write(self, writes: TimelineWrites) -> None:
        key = writes.key
        months = self._months.setdefault(key, {})
        order = self._month_order.setdefault(key, [])
        for row in writes.months:
            if row.month not in months:
                insort(order, row.month)
            months[row.month] = row
        for month in writes.deleted_months:
            del months[month]
            order.remove(month)
        self._days.update(((key, row.day), row) for row in writes.days)
        for day in writes.deleted_days:
            del self._days[(key, day)]
        if not order:
            del self._months[key], self._month_order[key]

    def preload(self, months: Iterable[MonthRow], days: Iterable[DayRow]) -> None:
        """Rows read elsewhere (a view's tables), to compute writes against."""
        for month in months:
            self.write(TimelineWrites(month.key, months=(month,)))
        for day in days:
            self.write(TimelineWrites(day.key, days=(day,)))

    def all_rows(self) -> tuple[tuple[MonthRow, ...], tuple[DayRow, ...]]:
        """Every row, in key order: what two stores holding the same changes agree on."""
        months = sorted(
            (row for rows in self._months.values() for row in rows.values()),
            key=lambda row: (row.key, row.month),
        )
        days = sorted(self._days.values(), key=lambda row: (row.key, row.day))
        return tuple(months), tuple(days)
