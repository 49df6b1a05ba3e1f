"""A seller's standing from the row of one calendar year equals the fold over
every violation it ever had.

Violations are drawn around the year ends of both built-in rulebooks' zones
(Asia/Shanghai and America/Los_Angeles), a second either side, with points
that cross general and serious nodes, up to the seal, some recorded out of
business-time order. Each example is checked at every violation's instant, at
each ban's end and at the year ends, a microsecond either side.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.marketplace import Cut, MemberFacts, MemberFile, Stamp, ViolationFacts
from projections.rulebook import Rulebook
from projections.violations import (
    bans_change_after,
    standing_at,
    violation_years,
    violations_of,
    year_row,
)
from projections.windows import calendar_year
from tests.unit.step_support import RULEBOOKS

MICROSECOND = timedelta(microseconds=1)
# The new years 2025-2027 in Shanghai (UTC+8) and Los Angeles (UTC-8, no DST in January).
YEAR_ENDS = tuple(
    datetime(year, 1, 1, hour, tzinfo=UTC) for year in (2025, 2026, 2027) for hour in (-8 + 24, 8)
)
SHIFTS = (-timedelta(days=20), -timedelta(seconds=1), timedelta(0), timedelta(days=3))


def shifted_year_end() -> st.SearchStrategy[datetime]:
    ends = [end - timedelta(days=1) if end.hour == 16 else end for end in YEAR_ENDS]
    return st.builds(lambda end, shift: end + shift, st.sampled_from(ends), st.sampled_from(SHIFTS))


@st.composite
def violations(draw: st.DrawFn) -> list[ViolationFacts]:
    count = draw(st.integers(0, 14))
    found = []
    for number in range(count):
        category = draw(st.sampled_from(("general", "serious")))
        points = draw(st.sampled_from((2, 6, 12, 24) if category == "general" else (6, 12, 24, 48)))
        found.append(
            ViolationFacts(
                "violation",
                f"V{number}",
                # Positions in recording order; business times in any order.
                Stamp(draw(shifted_year_end()), number + 1),
                category,
                points,
            )
        )
    return found


def probes(found: list[ViolationFacts], rulebook: Rulebook) -> list[datetime]:
    standing = violations_of(member_file(found), Cut(datetime(9999, 1, 1, tzinfo=UTC)), rulebook)
    edges = {v.stamp.at for v in found} | set(YEAR_ENDS)
    edges |= {ban.until for ban in standing.bans if ban.until is not None}
    return sorted(
        {edge + shift for edge in edges for shift in (-MICROSECOND, 0 * MICROSECOND, MICROSECOND)}
    )


def member_file(found: list[ViolationFacts]) -> MemberFile:
    member = MemberFacts("seller", Stamp(datetime(2020, 1, 1, tzinfo=UTC), 0), violations=found)
    return MemberFile(member, [], [], [], [])


@settings(max_examples=150, deadline=None)
@given(found=violations(), name=st.sampled_from(sorted(RULEBOOKS)))
def test_a_standing_from_its_years_row_is_the_standing_from_every_violation(
    found: list[ViolationFacts], name: str
) -> None:
    rulebook = RULEBOOKS[name]
    rows = violation_years(found, rulebook)
    assert [row.year for row in rows] == sorted(
        {calendar_year(v.stamp.at, rulebook.scoring.zone) for v in found}
    )
    everything = violations_of(member_file(found), Cut(datetime(9999, 1, 1, tzinfo=UTC)), rulebook)
    for as_of in probes(found, rulebook):
        expected = violations_of(member_file(found), Cut(as_of), rulebook)
        row = year_row(rows, calendar_year(as_of, rulebook.scoring.zone))
        standing = standing_at(row, as_of, rulebook)
        assert (standing.general, standing.serious, standing.sealed) == (
            expected.general,
            expected.serious,
            expected.sealed,
        ), as_of
        assert standing.active_bans(as_of) == expected.active_bans(as_of), as_of
        assert standing.banned_until(as_of) == expected.banned_until(as_of), as_of
        # What the penalty's validity reads from the violations: their instants
        # and every ban's start and end, from the whole history.
        boundaries = [v.stamp.at for v in found]
        boundaries += [ban.start for ban in everything.bans]
        boundaries += [ban.until for ban in everything.bans if ban.until is not None]
        later = min((t for t in boundaries if t > as_of), default=None)
        assert bans_change_after(row, standing, as_of) == later, as_of
