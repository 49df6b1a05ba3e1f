"""A figure's series equals the single query as of each of its points.

On memory, SQLite and PostgreSQL views of the demo story, with every member
tallied (the series reads the tallies' rows once) and with none tallied (the
series folds each member's file once per point), each point of a credit,
shop-score or penalty series is the answer ``credit``, ``dsr`` or ``penalty``
gives as of that point: under either rulebook, at a log position, by day, week
or month. Points before a member registered are left out; a member unknown at
the window's end is unknown. A tallied member's series reads a bounded number
of rows per point, however long its history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from projections.queries import Reputation, Series, UnknownMemberError, Where
from projections.runner import Runner
from projections.series import SERIES_POINTS_MAX, SeriesWindowError, Step, series_times
from projections.tallies import TALLY_FROM_TRADES, credit_key
from projections.timeline import Change, MemoryTimeline, value_at, values_over
from projections.views import MemoryView, SqlView, open_view
from tests.support import DAY
from tools.scenario import SCENARIO_END, START, run_scenario

MEMBERS = ("alice", "bob-shop", "carol", "dave-store")
UTC_ZONE = ZoneInfo("UTC")
# Windows that start before the members registered and end long after the
# story: ratings leave the 180-day window and a calendar year ends.
WINDOWS: tuple[tuple[datetime, datetime, Step], ...] = (
    (START - 2 * DAY, START + 60 * DAY, "day"),
    (START - 10 * DAY, START + 400 * DAY, "week"),
    (START - 40 * DAY, START + 500 * DAY, "month"),
)
WHERES = (
    Where(),
    Where(rulebook="ebay-style"),
    Where(at_position=20),
)


@pytest.fixture(params=[0, TALLY_FROM_TRADES], ids=["tallied", "from-files"])
def reputation(request: pytest.FixtureRequest, database_url: str) -> Iterator[Reputation]:
    app = LedgerApp(database_url, clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    app.run_deadlines(SCENARIO_END)
    view = open_view(database_url, version=700, tally_from_trades=request.param)
    if isinstance(view, SqlView):  # the app's own view version may tally otherwise
        view.drop()
        view.close()
        view = open_view(database_url, version=700, tally_from_trades=request.param)
    Runner(app, view).catch_up()
    try:
        yield Reputation(view, FixedClock(SCENARIO_END + 1000 * DAY))
    finally:
        if isinstance(view, SqlView):
            view.drop()
        view.close()
        app.close()


def figures(reputation: Reputation, member: str) -> dict[str, tuple[Any, Any]]:
    """Each figure's series query and single query, by name."""
    return {
        "credit_seller": (
            lambda w, ats: reputation.credit_series(member, "seller", w, ats),
            lambda w: reputation.credit(member, "seller", w),
        ),
        "credit_buyer": (
            lambda w, ats: reputation.credit_series(member, "buyer", w, ats),
            lambda w: reputation.credit(member, "buyer", w),
        ),
        "dsr": (
            lambda w, ats: reputation.dsr_series(member, w, ats),
            lambda w: reputation.dsr(member, w),
        ),
        "penalty": (
            lambda w, ats: reputation.penalty_series(member, w, ats),
            lambda w: reputation.penalty(member, w),
        ),
        "violations": (
            lambda w, ats: reputation.violations_series(member, w, ats),
            lambda w: reputation.violations(member, w),
        ),
    }


def singles(single: Callable[[Where], Any], where: Where, ats: tuple[datetime, ...]) -> list[Any]:
    """The single query's answer as of each time the member is known then."""
    found = []
    for at in ats:
        try:
            found.append(
                single(Where(as_of=at, at_position=where.at_position, rulebook=where.rulebook))
            )
        except UnknownMemberError:
            continue
    return found


@pytest.mark.parametrize("where", WHERES, ids=["default", "ebay-style", "at-position"])
def test_each_point_is_the_single_query_as_of_it(reputation: Reputation, where: Where) -> None:
    checked = 0
    for start, end, step in WINDOWS:
        book = reputation.rulebook(where.rulebook)
        ats = series_times(start, end, step, book.scoring.zone)
        for member in MEMBERS:
            for name, (series_of, single) in figures(reputation, member).items():
                series: Series[Any] = series_of(where, ats)
                expected = singles(single, where, ats)
                assert list(series.points) == expected, (member, name, step)
                assert series.rulebook == book.scoring_stamp
                assert all(point.position == series.position for point in series.points)
                assert [p.as_of for p in series.points] == list(ats[len(ats) - len(expected) :])
                checked += len(expected)
    assert checked > 1_000


def test_points_before_registration_are_left_out_and_an_unknown_member_is_refused(
    reputation: Reputation,
) -> None:
    ats = series_times(START - 5 * DAY, START + 5 * DAY, "day", UTC_ZONE)
    series = reputation.credit_series("alice", "buyer", Where(), ats)
    registered = reputation.view.member("alice")
    assert registered is not None
    assert 0 < len(series.points) < len(ats)
    assert all(p.as_of >= registered.registered.at for p in series.points)
    early = series_times(START - 5 * DAY, START - 4 * DAY, "day", UTC_ZONE)
    for query in (
        lambda: reputation.credit_series("alice", "buyer", Where(), early),
        lambda: reputation.dsr_series("alice", Where(), early),
        lambda: reputation.penalty_series("alice", Where(), early),
        lambda: reputation.violations_series("alice", Where(), early),
        lambda: reputation.credit_series("nobody", "seller", Where(), ats),
        lambda: reputation.dsr_series("nobody", Where(at_position=40), ats),
        lambda: reputation.penalty_series("nobody", Where(), ats),
        lambda: reputation.violations_series("nobody", Where(at_position=40), ats),
    ):
        with pytest.raises(UnknownMemberError):
            query()


# --- the window -------------------------------------------------------------------


def test_steps_end_at_each_day_week_and_calendar_month_and_the_last_at_to() -> None:
    start = datetime(2026, 1, 31, 12, tzinfo=UTC)
    days = series_times(start, start + timedelta(days=2, hours=1), "day", UTC_ZONE)
    assert days == (start + DAY, start + 2 * DAY, start + timedelta(days=2, hours=1))
    weeks = series_times(start, start + 14 * DAY, "week", UTC_ZONE)
    assert weeks == (start + 7 * DAY, start + 14 * DAY)
    shanghai = ZoneInfo("Asia/Shanghai")
    months = series_times(start, datetime(2026, 5, 1, tzinfo=UTC), "month", shanghai)
    # 31 January 20:00 in Shanghai: the end of February, then the 31st again.
    assert months == (
        datetime(2026, 2, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 31, 12, tzinfo=UTC),
        datetime(2026, 4, 30, 12, tzinfo=UTC),
        datetime(2026, 5, 1, tzinfo=UTC),
    )


def test_a_window_must_end_after_it_starts_and_hold_at_most_the_points_allowed() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for end in (start, start - DAY):
        with pytest.raises(SeriesWindowError, match="after from"):
            series_times(start, end, "day", UTC_ZONE)
    assert len(series_times(start, start + SERIES_POINTS_MAX * DAY, "day", UTC_ZONE)) == 366
    with pytest.raises(SeriesWindowError, match="at most 366 points"):
        series_times(
            start, start + SERIES_POINTS_MAX * DAY + timedelta(microseconds=1), "day", UTC_ZONE
        )


# --- the cost of a point ----------------------------------------------------------


def test_a_tallied_series_reads_rows_by_its_points_not_by_the_history() -> None:
    """The rows read for a series are those its points' days and months need,
    the same for a key with one change a day as for one with a hundred."""
    stamp_key = credit_key("x@1", "seller", "s")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ats = tuple(start + n * DAY + timedelta(hours=12) for n in range(60))
    reads = []
    for per_day in (1, 100):
        timeline = MemoryTimeline()
        changes = [
            Change(start + n * DAY + timedelta(minutes=k), (1, k))
            for n in range(-400, 60)
            for k in range(per_day)
        ]
        timeline.apply(stamp_key, changes)
        timeline.rows_read = 0
        values = values_over(timeline, {stamp_key: 2}, ats)
        reads.append(timeline.rows_read)
        assert values == [{stamp_key: value_at(timeline, stamp_key, at, 2)} for at in ats]
    assert reads[0] == reads[1] <= len(ats) + 3


def test_a_memory_views_series_is_the_tallies_read_once() -> None:
    """A memory view answers a tallied member's series from its timeline rows."""
    app = LedgerApp("memory:", clock=FixedClock(SCENARIO_END + 1000 * DAY))
    run_scenario(app)
    view = MemoryView(tally_from_trades=0)
    Runner(app, view).catch_up()
    reputation = Reputation(view, FixedClock(SCENARIO_END))
    ats = series_times(START, START + 365 * DAY, "day", UTC_ZONE)
    view.timeline.rows_read = 0
    series = reputation.credit_series("bob-shop", "seller", Where(), ats)
    assert len(series.points) == len(ats)
    assert view.timeline.rows_read <= len(ats) + 13
