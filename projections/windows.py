"""Time windows of docs/rules.md §0: trailing N days, calendar months and years."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def in_trailing(at: datetime, as_of: datetime, days: int) -> bool:
    """``as_of - N days < at <= as_of`` (N days are N x 24 h)."""
    return as_of - timedelta(days=days) < at <= as_of


def calendar_month(at: datetime, zone: ZoneInfo) -> tuple[int, int]:
    local = at.astimezone(zone)
    return (local.year, local.month)


def calendar_year(at: datetime, zone: ZoneInfo) -> int:
    return at.astimezone(zone).year
