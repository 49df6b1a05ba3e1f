"""Time windows of docs/rules.md §0: trailing N days, calendar months and years."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_trailing(at: datetime, as_of: datetime, days: int) -> bool:
    """``as_of - N days < at <= as_of`` (N days are N x 24 h)."""
    return as_of - timedelta(days=days) < at <= as_of


def calendar_month(at: datetime, zone: ZoneInfo) -> tuple[int, int]:
    local = at.astimezone(zone)
    return (local.year, local.month)


def calendar_year(at: datetime, zone: ZoneInfo) -> int:
    return at.astimezone(zone).year


def calendar_month_bounds(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The half-open span ``[start, end)`` of the calendar month (in ``zone``) holding ``at``, in UTC."""
    local = at.astimezone(zone)
    start = datetime.combine(local.date().replace(day=1), time(0), tzinfo=zone)
    end = datetime.combine((start + timedelta(days=32)).date().replace(day=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
