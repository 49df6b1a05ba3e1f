"""Penalty snapshots: a seller's penalty kept ready for the ranking engine.

A penalty computed as of T stays right until one of two things happens: a new
fact about the seller (the view marks the seller touched at that position),
or business time reaching the next instant at which a figure of the penalty
can change by itself — a fact dated later than T taking effect, a rating
showing, a trade leaving a trailing window, a ban or a demotion ending.
``penalty_valid_until`` finds that instant conservatively: every fact time,
every fact time plus each window that reads it, every visibility time and
every ban and demotion boundary. A snapshot is served only inside
``[as_of, valid_until)`` and only while no newer fact touched its seller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import msgspec

from projections.credit import rating_visible_at
from projections.marketplace import (
    POSITION_MAX,
    Cut,
    MemberFacts,
    MemberFile,
    MemberRecords,
    Stamp,
)
from projections.penalties import Penalty
from projections.rulebook import Rulebook
from projections.violations import (
    ViolationStanding,
    ViolationYear,
    bans_change_after,
    violations_of,
)

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class PenaltySnapshot(msgspec.Struct, frozen=True):
    seller_id: str
    rulebook: str
    as_of: datetime
    valid_until: datetime | None
    based_on: int  # the seller's last touched position it reflects
    penalty: Penalty

    def serves(self, at: datetime, touched: int) -> bool:
        return (
            self.based_on >= touched
            and self.as_of <= at
            and (self.valid_until is None or at < self.valid_until)
        )


class KeptSnapshots:
    """Penalty snapshots this process has read or made, kept in memory.

    The ranking engine asks for the same sellers over and over; a kept
    snapshot spares reading and decoding it again. It is served under the
    same check as a stored one (``serves``, against the seller's touched
    position read from the view for this very answer), so keeping it can
    never make an answer stale. At most ``limit`` are kept; the longest kept
    goes first.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("keep at least one snapshot")
        self._limit = limit
        self._kept: dict[tuple[str, str], PenaltySnapshot] = {}
        self._lock = threading.Lock()

    def get(self, rulebook: str, seller_id: str) -> PenaltySnapshot | None:
        return self._kept.get((rulebook, seller_id))

    def keep(self, snapshots: Iterable[PenaltySnapshot]) -> None:
        with self._lock:
            for snapshot in snapshots:
                key = (snapshot.rulebook, snapshot.seller_id)
                self._kept.pop(key, None)  # a renewed snapshot is kept afresh
                self._kept[key] = snapshot
            while len(self._kept) > self._limit:
                del self._kept[next(iter(self._kept))]

    def __len__(self) -> int:
        return len(self._kept)


def penalty_valid_until(file: MemberFile, as_of: datetime, rulebook: Rulebook) -> datetime | None:
    """The first instant after ``as_of`` at which the penalty may change with no new fact."""
    later = [t for t in _boundaries(file, rulebook) if t > as_of]
    return min(later) if later else None


def records_valid_until(
    member: MemberRecords,
    violations: tuple[ViolationYear | None, ViolationStanding],
    as_of: datetime,
    rulebook: Rulebook,
) -> datetime | None:
    """The first instant after ``as_of`` at which what the seller's own facts add
    to its penalty (bans, demotions, fake-trade cases, its badge) may change,
    its violations read from the row of ``as_of``'s year (``year_row``) and the
    standing it gives then."""
    later = [t for t in _records_boundaries(member, rulebook) if t > as_of]
    bans = bans_change_after(*violations, as_of)
    return min([*later, *([bans] if bans is not None else [])], default=None)


def _boundaries(file: MemberFile, rulebook: Rulebook) -> Iterator[datetime]:
    yield from _trade_boundaries(file, rulebook)
    yield from _member_boundaries(file.member, rulebook)


def _trade_boundaries(file: MemberFile, rulebook: Rulebook) -> Iterator[datetime]:
    scoring = rulebook.scoring
    rates = timedelta(days=scoring.rates.window_days)
    positive = timedelta(days=scoring.credit.positive_rate_window_days)
    dsr = timedelta(days=scoring.dsr.window_days)
    everything = Cut(FAR_FUTURE, POSITION_MAX)

    def stamps(*found: Stamp | None) -> Iterator[datetime]:
        return (stamp.at for stamp in found if stamp is not None)

    for trade in file.as_seller:
        yield from stamps(trade.created, trade.paid, trade.succeeded, trade.closed, trade.fake)
        if trade.paid is not None:
            yield trade.paid.at + rates
        if trade.succeeded is not None:
            yield trade.succeeded.at + positive
            yield trade.succeeded.at + dsr
        for refund in trade.refunds.values():
            yield from stamps(refund.requested, refund.paid)
        if trade.dispute is not None:
            yield from stamps(trade.dispute.escalated, trade.dispute.ruled)
            if trade.dispute.ruled is not None:
                yield trade.dispute.ruled.at + rates
        for rater, rating in trade.ratings.items():
            yield from stamps(rating.given, rating.revised, rating.withdrawn, rating.shielded)
            shown = rating_visible_at(trade, rater, everything, scoring)
            if shown is not None:
                yield shown
    for complaint in file.complaints_against:
        yield from stamps(complaint.filed, complaint.ruled)
        if complaint.ruled is not None:
            yield complaint.ruled.at + rates


def _member_boundaries(member: MemberFacts, rulebook: Rulebook) -> Iterator[datetime]:
    everything = Cut(FAR_FUTURE, POSITION_MAX)
    for violation in member.violations:
        yield violation.stamp.at
    for ban in violations_of(MemberFile(member, [], [], [], []), everything, rulebook).bans:
        yield ban.start
        if ban.until is not None:
            yield ban.until
    yield from _records_boundaries(member, rulebook)


def _records_boundaries(member: MemberRecords, rulebook: Rulebook) -> Iterator[datetime]:
    scoring = rulebook.scoring
    fake_window = timedelta(days=scoring.penalty.fake_trade_window_days)
    item_days = timedelta(days=scoring.search_cheating.item_demotion_days)
    shop_days = timedelta(days=scoring.search_cheating.shop_demotion_days)
    yield from (stamp.at for stamp in (member.registered, member.verified) if stamp is not None)
    for case in member.fake_cases:
        yield from (case.stamp.at, case.stamp.at + fake_window, case.demoted_until)
    for record in member.cheating:
        yield from (record.stamp.at, record.stamp.at + item_days, record.stamp.at + shop_days)
