"""The business times of a figure's series: the end of each step of a window.

A console draws a member's figure over time from one request per chart: the
figure at the end of each step from ``start`` to ``end``. A day is 24 h and a
week 7 days (docs/rules.md §0: "N days" is N times 24 h); a month is a calendar
month in the scoring rulebook's timezone, as the rules reckon months, counted
from ``start`` each time (a window from 31 January steps to 28 or 29 February,
then 31 March). The last step ends at ``end`` even when it is shorter.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Points of one series: a year of days, or 30 years of months.
SERIES_POINTS_MAX = 366
Step = Literal["day", "week", "month"]
STEPS: tuple[Step, ...] = ("day", "week", "month")
FIXED_STEPS: dict[Step, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7)}


class SeriesWindowError(ValueError):
    """A window a series cannot be drawn over; ``field`` names the parameter to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def series_times(
    start: datetime, end: datetime, step: Step, zone: ZoneInfo
) -> tuple[datetime, ...]:
    """The end of each step from ``start`` to ``end``, in UTC, ascending.

    Refused (``SeriesWindowError``) when ``end`` is not after ``start`` or
    the window holds more than ``SERIES_POINTS_MAX`` steps; no more than that
    many times are ever computed.
    """
    if end <= start:
        raise SeriesWindowError("to must be after from", "to")
    times: list[datetime] = []
    for count in range(1, SERIES_POINTS_MAX + 1):
        at = min(_stepped(start, step, count, zone), end)
        times.append(at.astimezone(UTC))
        if at == end:
            return tuple(times)
    raise SeriesWindowError(
        f"a series has at most {SERIES_POINTS_MAX} points: choose a longer step or a shorter "
        "window",
        "to",
    )


def _stepped(start: datetime, step: Step, count: int, zone: ZoneInfo) -> datetime:
    """``start`` moved ``count`` steps on."""
    fixed = FIXED_STEPS.get(step)
    if fixed is not None:
        return start + count * fixed
    local = start.astimezone(zone)
    year, month = divmod(local.month - 1 + count, 12)
    year += local.year
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)
