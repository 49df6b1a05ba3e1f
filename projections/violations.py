"""Violation points, nodes and bans, docs/rules.md §6.

Points accumulate per category in the calendar year of the scoring
rulebook's timezone and reset at the year's end, except a serious total
already at the sealing threshold. One deduction that crosses several nodes
applies only the heaviest; a ban starts at the violation's time, and
overlapping bans run to the latest end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ledger.commands import UtcTime
from projections.marketplace import Cut, MemberFile, ViolationFacts
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
    rules = rulebook.scoring.violations
    zone = rulebook.scoring.zone
    records = sorted(
        (v for v in file.member.violations if cut.sees(v.stamp)),
        key=lambda v: (v.stamp.at, v.stamp.position),
    )
    totals = {"general": 0, "serious": 0}
    year: int | None = None
    bans: list[Ban] = []
    for record in records:
        record_year = calendar_year(record.stamp.at, zone)
        if year is not None and record_year != year:
            _reset_for_new_year(totals, rules)
        year = record_year
        before = totals[record.category]
        totals[record.category] = before + record.points
        ban = _node_crossed(record, before, totals[record.category], rules)
        if ban is not None:
            bans.append(ban)
    if year is not None and calendar_year(cut.as_of, zone) != year:
        _reset_for_new_year(totals, rules)
    sealed = any(ban.action == "account_sealed" for ban in bans)
    return ViolationStanding(
        totals["general"], totals["serious"], sealed, tuple(records), tuple(bans)
    )


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
