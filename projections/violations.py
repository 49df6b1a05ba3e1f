"""Violation points, nodes and bans, docs/rules.md §6.

Points accumulate per category in the calendar year of the scoring
rulebook's timezone and reset at the year's end, except a serious total
already at the sealing threshold. One deduction that crosses several nodes
applies only the heaviest; a ban starts at the violation's time, and
overlapping bans run to the latest end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import msgspec

from ledger.commands import UtcTime
from projections.marketplace import Cut, MemberFacts, MemberFile, ViolationFacts
from projections.rulebook import Rulebook, ViolationScoring
from projections.windows import calendar_year


class Ban(msgspec.Struct, frozen=True):
    """A node's ban, from the violation that reached it until its end, if it has one."""

    node: int
    category: str
    action: str
    start: UtcTime
    until: UtcTime | None
    position: int

    def active(self, at: datetime) -> bool:
        return self.start <= at and (self.until is None or at < self.until)


class ViolationStanding(msgspec.Struct, frozen=True):
    general: int
    serious: int
    sealed: bool
    records: tuple[ViolationFacts, ...]
    bans: tuple[Ban, ...]

    def active_bans(self, at: datetime) -> list[Ban]:
        return [ban for ban in self.bans if ban.active(at)]

    def banned_until(self, at: datetime) -> datetime | None:
        """The end of the run of overlapping bans in force at ``at`` (None: permanent)."""
        active = self.active_bans(at)
        if not active:
            return None
        if any(ban.until is None for ban in active):
            return None
        end = max(ban.until for ban in active if ban.until is not None)
        extended = True
        while extended:
            extended = False
            for ban in self.bans:
                if ban.start > end:
                    continue
                if ban.until is None:
                    return None  # the run reaches a permanent ban
                if ban.until > end:
                    end, extended = ban.until, True
        return end


def violations_of(file: MemberFile, cut: Cut, rulebook: Rulebook) -> ViolationStanding:
    return violations_at(file.member, cut, rulebook)


def violations_at(member: MemberFacts, cut: Cut, rulebook: Rulebook) -> ViolationStanding:
    """A seller's standing from its own facts: its violations and nothing of
    its trades, so it costs what its violations cost."""
    rules = rulebook.scoring.violations
    zone = rulebook.scoring.zone
    records = _in_order(v for v in member.violations if cut.sees(v.stamp))
    totals = {"general": 0, "serious": 0}
    year: int | None = None
    bans: list[Ban] = []
    for record in records:
        record_year = calendar_year(record.stamp.at, zone)
        if year is not None and record_year != year:
            _reset_for_new_year(totals, rules)
        year = record_year
        _count(record, totals, bans, rules)
    if year is not None and calendar_year(cut.as_of, zone) != year:
        _reset_for_new_year(totals, rules)
    sealed = any(ban.action == "account_sealed" for ban in bans)
    return ViolationStanding(
        totals["general"], totals["serious"], sealed, tuple(records), tuple(bans)
    )


class ViolationYear(msgspec.Struct, frozen=True, array_like=True):
    """A seller's violations of one calendar year (in the rulebook's zone) and
    what the year opens with: the serious points carried over and the bans of
    earlier years still in force at its start. A standing as of any time in
    the year, or in a later year without violations, needs this row alone.

    Rows describe every violation the log holds (a standing as of a business
    time, not at an earlier log position)."""

    year: int
    serious_carried: int
    carried: tuple[Ban, ...]
    records: tuple[ViolationFacts, ...]  # in time order
    next_at: UtcTime | None  # the first violation of a later year (None: none yet)


def violation_years(
    violations: Iterable[ViolationFacts], rulebook: Rulebook
) -> tuple[ViolationYear, ...]:
    """The rows of the years that hold violations, in year order: one pass
    over the seller's violations, as ``violations_of`` folds them."""
    rules = rulebook.scoring.violations
    zone = rulebook.scoring.zone
    totals = {"general": 0, "serious": 0}
    bans: list[Ban] = []
    years: list[ViolationYear] = []
    records = _in_order(violations)
    for year, group in itertools.groupby(records, lambda v: calendar_year(v.stamp.at, zone)):
        if years:
            _reset_for_new_year(totals, rules)
        opens = datetime.combine(date(year, 1, 1), time(0), tzinfo=zone)
        carried = tuple(ban for ban in bans if ban.until is None or ban.until > opens)
        serious_carried = totals["serious"]
        held = tuple(group)
        for record in held:
            _count(record, totals, bans, rules)
        years.append(ViolationYear(year, serious_carried, carried, held, None))
    return tuple(
        msgspec.structs.replace(row, next_at=later.records[0].stamp.at)
        for row, later in itertools.pairwise(years)
    ) + tuple(years[-1:])


def year_row(rows: Iterable[ViolationYear], year: int) -> ViolationYear | None:
    """The row a standing in ``year`` reads: its own, or the latest before it,
    or, before the first violation, the first row (its violations are all later)."""
    ordered = sorted(rows, key=lambda row: row.year)
    earlier = [row for row in ordered if row.year <= year]
    return earlier[-1] if earlier else next(iter(ordered), None)


def standing_at(
    row: ViolationYear | None, as_of: datetime, rulebook: Rulebook
) -> ViolationStanding:
    """The standing as of a business time from the row ``year_row`` picks for
    its year (None: the seller has no violation). Its points,
    seal and bans in force are those ``violations_of`` gives; ``records`` and
    ``bans`` hold the row's own, and the bans carried into its year."""
    if row is None:
        return ViolationStanding(0, 0, False, (), ())
    rules = rulebook.scoring.violations
    totals = {"general": 0, "serious": row.serious_carried}
    bans = list(row.carried)
    records = tuple(record for record in row.records if record.stamp.at <= as_of)
    for record in records:
        _count(record, totals, bans, rules)
    if calendar_year(as_of, rulebook.scoring.zone) != row.year:
        _reset_for_new_year(totals, rules)
    sealed = any(ban.action == "account_sealed" for ban in bans)
    return ViolationStanding(totals["general"], totals["serious"], sealed, records, tuple(bans))


def bans_change_after(
    row: ViolationYear | None, standing: ViolationStanding, as_of: datetime
) -> datetime | None:
    """The first instant after ``as_of`` at which the bans may change with no new
    fact: the next violation, or the end of a ban in force (None: never).
    ``standing`` is ``standing_at(row, as_of, ...)``."""
    if row is None:
        return None
    later = [record.stamp.at for record in row.records if record.stamp.at > as_of]
    later += [row.next_at] if row.next_at is not None else []
    later += [ban.until for ban in standing.bans if ban.until is not None and ban.until > as_of]
    return min(later, default=None)


def _in_order(violations: Iterable[ViolationFacts]) -> list[ViolationFacts]:
    return sorted(violations, key=lambda v: (v.stamp.at, v.stamp.position))


def _count(
    record: ViolationFacts, totals: dict[str, int], bans: list[Ban], rules: ViolationScoring
) -> None:
    """Add a violation's points to its category; a node it crosses adds a ban."""
    before = totals[record.category]
    totals[record.category] = before + record.points
    ban = _node_crossed(record, before, totals[record.category], rules)
    if ban is not None:
        bans.append(ban)


def _reset_for_new_year(totals: dict[str, int], rules: ViolationScoring) -> None:
    totals["general"] = 0
    if totals["serious"] < rules.sealed_serious_points:
        totals["serious"] = 0


def _node_crossed(
    record: ViolationFacts, before: int, after: int, rules: ViolationScoring
) -> Ban | None:
    start = record.stamp.at
    if record.category == "serious":
        crossed = [node for node in rules.serious_nodes if before < node.points <= after]
        if not crossed:
            return None
        node = crossed[-1]  # the heaviest only
        until = start + timedelta(days=node.days) if node.days is not None else None
        return Ban(node.points, "serious", node.action, start, until, record.stamp.position)
    every = rules.general_every_points
    if after // every <= before // every:
        return None
    return Ban(
        (after // every) * every,
        "general",
        rules.general_action,
        start,
        start + timedelta(days=rules.general_days),
        record.stamp.position,
    )
