"""Stored views of the marketplace fold: in memory, SQLite and PostgreSQL.

A view keeps the fold's member files as rows — members, trades, complaints —
each a msgspec-encoded Struct, an index of each seller's refunds, plus the log
position it reflects. ``process``
takes many events at once: it loads the rows the events touch, folds the
events with ``Marketplace.apply``, and writes the rows back together with the
new position **in one transaction**, so a crash never double-counts and a
resumed run continues exactly after the last committed batch.

Rows hold facts, not figures: every figure is computed at query time from a
member's rows, under any scoring rulebook, as of any time or log position.

Blue/green rebuilds: each view version has its own tables (``rv<N>_...``); a
registry row names the version readers use, and ``activate`` switches it in
one statement once a rebuild has caught up.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import msgspec
import psycopg
from psycopg import sql

from ledger import events as ev
from ledger.database import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
    POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
)
from ledger.events import EVENT_TYPES, Party, topic_of
from ledger.store import lock_schema_changes
from projections import tally_rows, timeline
from projections.connections import (
    Fence,
    SQLiteConnection,
    chunks,
    place_of,
    postgres_pool,
)
from projections.marketplace import (
    ComplaintFacts,
    Marketplace,
    MemberFacts,
    MemberFile,
    MemberHead,
    MemberRecords,
    Stamp,
    TradeFacts,
)
from projections.rulebook import Rulebook, builtin_rulebooks
from projections.snapshots import PenaltySnapshot
from projections.tallies import TALLY_FROM_TRADES, Pair, Span, Tallies
from projections.tally_rows import TallyRows
from projections.timeline import (
    MemoryTimeline,
    Reading,
    Vector,
    micros,
    reading_of,
    value_at,
    values_over,
)
from projections.violations import ViolationYear, year_row

# Rows a view remembers from its own last writes (about 0.5 KB each).
RECENT_ROWS_MAX = 100_000
# From this many rows, an upsert copies them in (PostgreSQL) rather than sending arrays.
COPY_ROWS_MIN = 1_000
# Connections of a PostgreSQL view: the runner's and the request threads' reads.
VIEW_POOL_SIZE = 16
Batch = Sequence[tuple[int, ev.Event]]
R = TypeVar("R")

_encoder = msgspec.msgpack.Encoder()
_member_decoder = msgspec.msgpack.Decoder(MemberFacts)
_head_decoder = msgspec.msgpack.Decoder(MemberHead)
_records_decoder = msgspec.msgpack.Decoder(MemberRecords)
_trade_decoder = msgspec.msgpack.Decoder(TradeFacts)
_complaint_decoder = msgspec.msgpack.Decoder(ComplaintFacts)
_snapshot_decoder = msgspec.msgpack.Decoder(PenaltySnapshot)
_touch_decoder = msgspec.msgpack.Decoder(tuple[str, int])
_stamp_decoder = msgspec.msgpack.Decoder(str)
_json_text = msgspec.json.Encoder()


def _claim(stamp: str) -> str:
    """What a view records when it claims a rulebook's tallies: the scoring and
    the row layout, so rows written in an older layout are never read."""
    return f"{stamp}/layout-{timeline.LAYOUT}"


def snapshot_key(rulebook: str, seller_id: str) -> str:
    return f"{rulebook}|{seller_id}"


class Touched(msgspec.Struct):
    """What a batch of events touches: the rows it reads and writes, and each
    seller whose penalty it can change, with the last position that did."""

    members: set[str] = msgspec.field(default_factory=set)
    trades: set[str] = msgspec.field(default_factory=set)
    complaints: set[str] = msgspec.field(default_factory=set)
    sellers: dict[str, int] = msgspec.field(default_factory=dict)

    @classmethod
    def by(cls, batch: Batch) -> Touched:
        touched = cls()
        for position, event in batch:
            note = _NOTES.get(type(event))
            if note is not None:  # a fact no figure depends on touches nothing
                note(touched, event, position)
        return touched


Note = Callable[[Touched, Any, int], None]
# The facts only a seller's refund list reads: a refund's steps between its
# request and its payment, which move no figure.
LISTED_REFUND_STEPS: tuple[type[ev.RefundEvent], ...] = (
    ev.RefundAgreed,
    ev.RefundRejected,
    ev.ReturnShipped,
    ev.RefundCancelled,
    ev.RefundClosed,
)
# The trade facts no penalty reads: an order placed and a refund asked for.
# The rates count paid trades and paid refunds, credit and shop scores count
# ratings; what follows these facts is what touches the seller.
UNSCORED_TRADE_FACTS: tuple[type[ev.TradeEvent], ...] = (ev.TradeCreated, ev.RefundRequested)


def _member(touched: Touched, e: ev.MemberEvent, _: int) -> None:
    touched.members.add(e.member_id)


def _verified(touched: Touched, e: ev.IdentityVerified, position: int) -> None:
    touched.members.add(e.member_id)
    touched.sellers[e.member_id] = position  # a verified badge shows in the penalty


def _trade(touched: Touched, e: ev.TradeEvent, position: int) -> None:
    touched.trades.add(e.trade_id)
    touched.sellers[e.seller_id] = position


def _complaint(touched: Touched, e: ev.ComplaintEvent, position: int) -> None:
    touched.complaints.add(e.complaint_id)
    touched.trades.add(e.trade_id)  # the trade lists its complaints; its rates read them
    touched.members.add(e.seller_id)
    touched.sellers[e.seller_id] = position


def _trade_row(touched: Touched, e: ev.TradeEvent, _: int) -> None:
    touched.trades.add(e.trade_id)  # the trade's row holds it; no penalty moves


def _complaint_step(touched: Touched, e: ev.ComplaintEvent, _: int) -> None:
    touched.complaints.add(e.complaint_id)  # the case's row holds it; no penalty moves


def _enforcement(touched: Touched, e: ev.EnforcementEvent, position: int) -> None:
    touched.members.add(e.seller_id)
    touched.sellers[e.seller_id] = position


def _fake_trades(touched: Touched, e: ev.FakeTradesConfirmed, position: int) -> None:
    _enforcement(touched, e, position)
    touched.trades.update(e.trade_ids)


def _note_for(event_type: type[ev.Event]) -> Note | None:
    """How a kind of fact touches rows, decided once per type instead of per
    event (a rebuild asks for every event of the log)."""
    kinds: list[tuple[type[ev.Event], Note]] = [
        (ev.IdentityVerified, _verified),
        (ev.MemberEvent, _member),
        *((step, _trade_row) for step in (*LISTED_REFUND_STEPS, *UNSCORED_TRADE_FACTS)),
        (ev.ComplaintEscalated, _complaint_step),
        (ev.TradeEvent, _trade),
        (ev.ComplaintEvent, _complaint),
        (ev.FakeTradesConfirmed, _fake_trades),
        (ev.EnforcementEvent, _enforcement),
    ]
    if not Marketplace.depends_on(event_type):
        return None
    return next((note for kind, note in kinds if issubclass(event_type, kind)), None)


_NOTES: dict[type[ev.Event], Note] = {
    t: note for t in EVENT_TYPES if (note := _note_for(t)) is not None
}


def unfolded(batch: Batch, position: int) -> Batch:
    """The batch's events after ``position`` (those before, another runner folded)."""
    if batch and batch[0][0] <= position:
        return [(p, event) for p, event in batch if p > position]
    return batch


class RecentRows:
    """The bodies a view wrote in its last batches, so the next batch need not read them back.

    A trade's facts arrive over days, across many batches; during a rebuild
    most rows a batch touches were written a batch or two before. What is
    remembered is valid only while this view is the sole writer: it is tied
    to the position of its own last commit and forgotten when the stored
    position differs. Bodies are immutable bytes, so a failed batch (whose
    fold mutated decoded copies) cannot spoil it.
    """

    def __init__(self, rows_max: int) -> None:
        self.rows_max = rows_max
        self.position = -1
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def get(self, table: str, key: str) -> bytes | None:
        return self._bodies.get((table, key))

    def keep(self, written: Iterable[tuple[str, str, bytes]], position: int) -> None:
        bodies = self._bodies
        for table, key, body in written:
            bodies[(table, key)] = body
            bodies.move_to_end((table, key))
        while len(bodies) > self.rows_max:
            bodies.popitem(last=False)
        self.position = position

    def clear(self) -> None:
        self._bodies.clear()
        self.position = -1


class ReplayLag(msgspec.Struct, frozen=True):
    """A hot standby's replay: WAL received but not yet applied, and the
    primary's commit time of the last transaction it applied."""

    received_not_replayed_bytes: int
    last_replayed_at: datetime | None


class SnapshotState(msgspec.Struct, frozen=True):
    """What serving current penalties from snapshots reads, in this order."""

    position: int
    touched: dict[str, int]
    snapshots: dict[str, PenaltySnapshot]


class ReputationView(ABC):
    """The fold's state, stored; what every query reads."""

    @abstractmethod
    def position(self) -> int:
        """The last log position this view reflects (0 when empty)."""

    @abstractmethod
    def process(self, batch: Batch, *, reached: int = 0) -> None:
        """Fold a batch of (position, event) in log order and commit it with its position.

        ``reached``: the last log position the batch covers when that is past
        its last event (the reader left out facts no figure depends on).
        Events at or before the position the view reflects are passed over:
        another runner folded them first.
        """

    @staticmethod
    def topics() -> frozenset[str]:
        """The topics of the facts any figure or list depends on: a runner decodes only these."""
        return frozenset(topic_of(t) for t in EVENT_TYPES if Marketplace.depends_on(t))

    @abstractmethod
    def file(self, member_id: str) -> MemberFile | None: ...

    @abstractmethod
    def trades_after(
        self, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[TradeFacts]:
        """The member's trades in the role, in creation order (creation time in
        microseconds, then trade id) after ``after``: at most ``limit``."""

    @abstractmethod
    def complaints_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[ComplaintFacts]:
        """The complaints against the seller in log order (the position of their
        filing) after position ``after``: at most ``limit``, read from an index."""

    @abstractmethod
    def refunds_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[TradeFacts, str]]:
        """The refunds requested of the seller in log order (the position of
        their request) after position ``after``, each as (its trade, its refund
        id): at most ``limit``, read from an index."""

    @abstractmethod
    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        """Each pair's trades created in its span ``[start, end)``."""

    @abstractmethod
    def member(self, member_id: str) -> MemberFacts | None:
        """The member's own facts (registration, verification, enforcement)."""

    @abstractmethod
    def tally_stamps(self) -> frozenset[str]:
        """The scoring stamps whose tallies this view keeps from the first position on."""

    @abstractmethod
    def keeps_tallies_of(self, member_id: str) -> bool:
        """Whether the view tallies this member's figures (under ``tally_stamps``)."""

    @abstractmethod
    def member_reading(
        self,
        member_id: str,
        widths: Mapping[str, int],
        at: datetime,
        *,
        changes: bool = False,
        violations: tuple[str, int] | None = None,
    ) -> MemberReading:
        """The view's position, the member's registration and, when the view
        tallies the member, its tallies as of ``at`` (``timeline.reading_of``),
        read together: one transaction, the whole of a figure's answer. A
        tallied member's registration comes from its tally mark, so its member
        row (which grows with its violations) is not read, unless
        ``violations`` (a violation-years key and a year) asks for what a
        penalty needs: its ``MemberRecords`` and the row
        ``violations.year_row`` picks."""

    @abstractmethod
    def member_series(
        self, member_id: str, widths: Mapping[str, int], ats: Sequence[datetime]
    ) -> MemberSeries:
        """``member_reading`` at each of ``ats`` (ascending), read together in
        one transaction: the view's position, the member's registration and,
        when the view tallies the member, its tallies' values at each instant
        (``timeline.values_over``: one read of the rows the instants need)."""

    @abstractmethod
    def tally(self, key: str, at: datetime, width: int) -> Vector:
        """A tally's value as of a business time (``projections.tallies``)."""

    @abstractmethod
    def seller_ids(self, limit: int) -> list[str]:
        """The first ``limit`` ids, in order, of the members who sold at least once."""

    def files(self, member_ids: Iterable[str]) -> dict[str, MemberFile]:
        found = {}
        for member_id in member_ids:
            member_file = self.file(member_id)
            if member_file is not None:
                found[member_id] = member_file
        return found

    @abstractmethod
    def touched(self, seller_ids: Iterable[str]) -> dict[str, int]:
        """The last position that touched each seller (absent: never)."""

    @abstractmethod
    def snapshots(self, rulebook: str, seller_ids: Iterable[str]) -> dict[str, PenaltySnapshot]:
        """The stored penalty snapshots of these sellers under a rulebook."""

    @abstractmethod
    def keep_snapshots(self, snapshots: Sequence[PenaltySnapshot]) -> None:
        """Store penalty snapshots (they are checked when read, never trusted blindly)."""

    def snapshot_state(
        self, rulebook: str, seller_ids: Sequence[str], stored_for: Sequence[str]
    ) -> SnapshotState:
        """The view's position, then the sellers' touched positions, then the
        stored snapshots of those in ``stored_for`` (the others the caller has)."""
        position = self.position()
        touched = self.touched(seller_ids)
        return SnapshotState(position, touched, self.snapshots(rulebook, stored_for))

    def close(self) -> None:  # noqa: B027 - views without resources need nothing here
        """Release connections."""


class MemberReading(NamedTuple):
    """What ``ReputationView.member_reading`` reads in one transaction."""

    position: int
    registered: Stamp | None  # None: an unknown member
    tallies: Reading | None  # None: the view does not tally the member
    records: MemberRecords | None = None  # a tallied member's, when asked for violations
    violations: ViolationYear | None = None


class MemberSeries(NamedTuple):
    """What ``ReputationView.member_series`` reads in one transaction."""

    position: int
    registered: Stamp | None  # None: an unknown member
    values: list[dict[str, Vector]] | None  # per instant; None: the member is not tallied


class TallyMark(msgspec.Struct, frozen=True, array_like=True):
    """A member whose tallies the view keeps, with its registration: all that
    a figure read from tallies needs of the member itself."""

    member_id: str
    registered: Stamp


_mark_decoder = msgspec.msgpack.Decoder(TallyMark)


class MemoryView(ReputationView):
    def __init__(
        self,
        *,
        rulebooks: Sequence[Rulebook] | None = None,
        tally_from_trades: int = TALLY_FROM_TRADES,
    ) -> None:
        self.market = Marketplace()
        self._touched: dict[str, int] = {}
        self._snapshots: dict[str, PenaltySnapshot] = {}
        chosen = builtin_rulebooks() if rulebooks is None else rulebooks
        self._tallies = Tallies(chosen, tally_from_trades)
        self.timeline = MemoryTimeline()  # the tallies' month and day rows
        self.violation_years: dict[str, dict[int, ViolationYear]] = {}
        self.tallied_members: set[str] = set()

    def position(self) -> int:
        return self.market.position

    def process(self, batch: Batch, *, reached: int = 0) -> None:
        batch = unfolded(batch, self.market.position)
        touched = Touched.by(batch)
        trades, complaints = self.market.trades, self.market.complaints
        before = {t: _copied(trades[t]) for t in touched.trades if t in trades}
        filed = {c: _copied(complaints[c]) for c in touched.complaints if c in complaints}
        violations = _violation_counts(self.market.members, touched.members)
        for position, event in batch:
            self.market.apply(event, position)
        after = {t: trades[t] for t in touched.trades if t in trades}
        filed_after = {c: complaints[c] for c in touched.complaints if c in complaints}
        store = _MarketBefore(self.market, before, after, self.tallied_members)
        moves, started = self._tallies.batch_moves(before, after, store, (filed, filed_after))
        for key, (added, removed) in moves.items():
            if added or removed:
                self.timeline.apply(key, added, removed)
        self.market.position = max(self.market.position, reached)
        self.tallied_members |= started
        moved = _violations_moved(self.market.members, violations, touched.members)
        moved &= self.tallied_members
        members = [self.market.members[m] for m in sorted(moved | started)]
        for key, row in self._tallies.violation_years(members):
            self.violation_years.setdefault(key, {})[row.year] = row
        self._touched.update(touched.sellers)

    def file(self, member_id: str) -> MemberFile | None:
        return self.market.file(member_id)

    def member(self, member_id: str) -> MemberFacts | None:
        return self.market.members.get(member_id)

    def seller_ids(self, limit: int) -> list[str]:
        sellers = {trade.seller_id for trade in self.market.trades.values()}
        return sorted(sellers)[:limit]

    def trades_after(
        self, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[TradeFacts]:
        return self.market.trades_after(member_id, role, after, limit)

    def complaints_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[ComplaintFacts]:
        return self.market.complaints_after(seller_id, after, limit)

    def refunds_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[TradeFacts, str]]:
        return self.market.refunds_after(seller_id, after, limit)

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        return self.market.pairs_trades(spans)

    def tally_stamps(self) -> frozenset[str]:
        return self._tallies.stamps

    def keeps_tallies_of(self, member_id: str) -> bool:
        return member_id in self.tallied_members

    def member_reading(
        self,
        member_id: str,
        widths: Mapping[str, int],
        at: datetime,
        *,
        changes: bool = False,
        violations: tuple[str, int] | None = None,
    ) -> MemberReading:
        member = self.market.members.get(member_id)
        registered = member.registered if member is not None else None
        if member is None or member_id not in self.tallied_members:
            return MemberReading(self.position(), registered, None)
        reading = reading_of(self.timeline, widths, at, changes=changes)
        if violations is None:
            return MemberReading(self.position(), registered, reading)
        key, wanted = violations
        year = year_row(self.violation_years.get(key, {}).values(), wanted)
        return MemberReading(self.position(), registered, reading, member, year)

    def member_series(
        self, member_id: str, widths: Mapping[str, int], ats: Sequence[datetime]
    ) -> MemberSeries:
        member = self.market.members.get(member_id)
        registered = member.registered if member is not None else None
        if member is None or member_id not in self.tallied_members:
            return MemberSeries(self.position(), registered, None)
        return MemberSeries(self.position(), registered, values_over(self.timeline, widths, ats))

    def tally(self, key: str, at: datetime, width: int) -> Vector:
        return self.timeline.value_at(key, at, width)

    def touched(self, seller_ids: Iterable[str]) -> dict[str, int]:
        return {s: self._touched[s] for s in seller_ids if s in self._touched}

    def snapshots(self, rulebook: str, seller_ids: Iterable[str]) -> dict[str, PenaltySnapshot]:
        found = (self._snapshots.get(snapshot_key(rulebook, s)) for s in seller_ids)
        return {snapshot.seller_id: snapshot for snapshot in found if snapshot is not None}

    def keep_snapshots(self, snapshots: Sequence[PenaltySnapshot]) -> None:
        for snapshot in snapshots:
            self._snapshots[snapshot_key(snapshot.rulebook, snapshot.seller_id)] = snapshot


def _violation_counts(members: Mapping[str, MemberFacts], ids: Iterable[str]) -> dict[str, int]:
    """How many violations each of these members has (before a batch)."""
    return {m: len(members[m].violations) for m in ids if m in members}


def _violations_moved(
    members: Mapping[str, MemberFacts], counts: Mapping[str, int], ids: Iterable[str]
) -> set[str]:
    """Those of these members whose violations a batch added to (violations are
    only ever added; a member the batch registered had none)."""
    return {m for m in ids if m in members and len(members[m].violations) != counts.get(m, 0)}


class _MarketBefore:
    """The memory view's market as a batch's tallies read it: it already holds
    the batch, so its counts leave the batch's new trades out."""

    def __init__(
        self,
        market: Marketplace,
        before: Mapping[str, TradeFacts],
        after: Mapping[str, TradeFacts],
        tallied: set[str],
    ) -> None:
        self.market, self.tallied = market, tallied
        self.new = Counter(
            member
            for trade_id, trade in after.items()
            if trade_id not in before
            for member in (trade.seller_id, trade.buyer_id)
        )

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        return self.market.pairs_trades(spans)

    def complaints_of(self, complaint_ids: Iterable[str]) -> dict[str, ComplaintFacts]:
        return self.market.complaints_of(complaint_ids)

    def tallied_among(self, member_ids: Iterable[str]) -> set[str]:
        return self.tallied.intersection(member_ids)

    def trade_counts(self, member_ids: Iterable[str]) -> dict[str, int]:
        counts = {m: self.market.trade_count(m) - self.new[m] for m in member_ids}
        return {member: count for member, count in counts.items() if count}

    def members_facts(
        self, member_ids: Iterable[str]
    ) -> tuple[list[TradeFacts], list[ComplaintFacts]]:
        trades: dict[str, TradeFacts] = {}
        filed: list[ComplaintFacts] = []
        for member_id in member_ids:
            member_file = self.market.file(member_id)
            if member_file is not None:
                trades.update(
                    (t.trade_id, t) for t in (*member_file.as_seller, *member_file.as_buyer)
                )
                filed += member_file.complaints_filed
        return list(trades.values()), filed


F = TypeVar("F", TradeFacts, ComplaintFacts)


def _copied(facts: F) -> F:
    """A trade's or complaint's facts as they are, before a fold changes them in place."""
    return msgspec.msgpack.decode(_encoder.encode(facts), type=type(facts))


class SqlView(ReputationView):
    """Shared logic of the SQL views: load touched rows, fold, write back."""

    registry = "reputation_views"
    name = "reputation"
    version: int
    # A view read on a PostgreSQL hot standby: it makes no tables, stores no
    # snapshots and folds nothing (the primary's follower does).
    read_only: bool = False

    @abstractmethod
    def active_version(self) -> int:
        """The version readers are to use, as the registry names it now."""

    @abstractmethod
    def activate(self) -> None:
        """Make this version the one readers open."""

    @abstractmethod
    def drop(self) -> None:
        """Remove this version's tables."""

    def position(self) -> int:
        with self._transaction() as cursor:
            return self._tracked(cursor)

    def _execute_all(self, statements: Iterable[Any]) -> None:
        """Statements (a version's tables made or dropped) in one transaction."""
        with self._transaction() as cursor:
            self._lock_schema_changes(cursor)
            for statement in statements:
                cursor.execute(statement)

    def _lock_schema_changes(self, cursor: Any) -> None:
        """Keep other processes' table changes out of this transaction (SQLite's
        write transaction already does)."""

    _recent: RecentRows | None = None
    # Checked in every fold's transaction before it writes (the active
    # follower's term, ``projections.leadership``): raises to refuse the write.
    fence: Fence | None = None

    def process(self, batch: Batch, *, reached: int = 0) -> None:
        if self.read_only:
            raise TypeError("a read-only view (a standby's) folds nothing")
        if not batch and reached <= self.position():
            return
        recent = self._recent_rows()
        with self._transaction() as cursor:
            # Locked: a runner in another process waits here for this batch,
            # then folds only the events after the position this one tracks.
            tracked = self._tracked(cursor, lock=True)
            if self.fence is not None:
                self.fence(cursor)
            if tracked != recent.position:
                recent.clear()  # someone else wrote this view: what we remember is stale
            batch = unfolded(batch, tracked)
            if not batch and reached <= tracked:
                return  # another runner folded all of it first
            touched = Touched.by(batch)
            market, stored = self._load(cursor, touched, recent)
            market.position = tracked
            before = {
                key: _trade_decoder.decode(body)
                for (table, key), body in stored.items()
                if table == "trades"
            }
            filed = {
                key: _complaint_decoder.decode(body)
                for (table, key), body in stored.items()
                if table == "complaints"
            }
            violations = _violation_counts(market.members, market.members)
            for position, event in batch:
                market.apply(event, position)
            after = {t: market.trades[t] for t in touched.trades if t in market.trades}
            filed_after = {
                c: market.complaints[c] for c in touched.complaints if c in market.complaints
            }
            stored_pairs = _StoredPairs(self, cursor)
            moves, started = self._tallies.batch_moves(
                before, after, stored_pairs, (filed, filed_after)
            )
            rows = self._tally_rows(cursor)
            tally_rows.move_tallies(rows, moves)
            moved = _violations_moved(market.members, violations, market.members)
            moved = stored_pairs.tallied_among(moved) | started
            members = {m.member_id: m for m in self._members(cursor, market, sorted(moved))}
            rows.store_violation_years(self._tallies.violation_years(members.values()))
            marks = (TallyMark(m, members[m].registered) for m in sorted(started))
            self._upsert(
                cursor,
                "tally_members",
                ("member_id", "body"),
                [(mark.member_id, _encoder.encode(mark)) for mark in marks],
            )
            written = self._write(cursor, market, tracked)
            self._upsert(
                cursor,
                "touched",
                ("seller_id", "body"),
                [(seller, _encoder.encode((seller, p))) for seller, p in touched.sellers.items()],
            )
            position = max(market.position, reached)
            self._track(cursor, position)
        recent.keep(written, position)  # only once the transaction committed

    def _members(self, cursor: Any, market: Marketplace, ids: Sequence[str]) -> list[MemberFacts]:
        """These members as the batch left them: the batch's, or else the stored
        rows (a member can reach the tally threshold in a batch that names it
        only in its trades)."""
        found = [market.members[m] for m in ids if m in market.members]
        missing = [m for m in ids if m not in market.members]
        found += [
            _member_decoder.decode(body)
            for body in self._bodies(cursor, "members", "member_id", missing)
        ]
        return found

    def _recent_rows(self) -> RecentRows:
        if self._recent is None:
            self._recent = RecentRows(RECENT_ROWS_MAX)
        return self._recent

    def _load(
        self, cursor: Any, touched: Touched, recent: RecentRows
    ) -> tuple[Marketplace, dict[tuple[str, str], bytes]]:
        """The rows a batch touches, folded into a market, and each trade's and
        complaint's stored body by (table, key)."""
        market = Marketplace()
        stored = {}
        for body in self._rows(cursor, recent, "members", touched.members):
            member = _member_decoder.decode(body)
            market.members[member.member_id] = member
        for body in self._rows(cursor, recent, "trades", touched.trades):
            trade = _trade_decoder.decode(body)
            market.trades[trade.trade_id] = trade
            stored[("trades", trade.trade_id)] = body
        for body in self._rows(cursor, recent, "complaints", touched.complaints):
            complaint = _complaint_decoder.decode(body)
            market.complaints[complaint.complaint_id] = complaint
            stored[("complaints", complaint.complaint_id)] = body
        return market, stored

    def _rows(
        self, cursor: Any, recent: RecentRows, table: str, keys: Iterable[str]
    ) -> Iterator[bytes]:
        missing = []
        for key in keys:
            body = recent.get(table, key)
            if body is None:
                missing.append(key)
            else:
                yield body
        yield from self._bodies(cursor, table, _KEYS[table], missing)

    def _write(self, cursor: Any, market: Marketplace, since: int) -> list[tuple[str, str, bytes]]:
        """Upsert the market's rows, and index the refunds requested after
        position ``since``; each written (table, key, body)."""
        members = [(m.member_id, _encoder.encode(m)) for m in market.members.values()]
        trades = [
            (t.trade_id, t.buyer_id, t.seller_id, micros(t.created.at), _encoder.encode(t))
            for t in market.trades.values()
        ]
        complaints = [
            (c.complaint_id, c.buyer_id, c.seller_id, c.filed.position, _encoder.encode(c))
            for c in market.complaints.values()
        ]
        # A refund's index row never changes: it is written once, by the batch
        # that folds the request (its facts stay in its trade's row).
        refunds = [
            (r.requested.position, t.seller_id, t.trade_id, r.refund_id)
            for t in market.trades.values()
            for r in t.refunds.values()
            if r.requested.position > since
        ]
        self._upsert(cursor, "members", ("member_id", "body"), members)
        self._upsert(
            cursor, "trades", ("trade_id", "buyer_id", "seller_id", "created_us", "body"), trades
        )
        self._upsert(
            cursor,
            "complaints",
            ("complaint_id", "buyer_id", "seller_id", "filed_position", "body"),
            complaints,
        )
        self._upsert(
            cursor,
            "refunds",
            ("requested_position", "seller_id", "trade_id", "refund_id"),
            refunds,
        )
        return [
            *(("members", row[0], row[-1]) for row in members),
            *(("trades", row[0], row[-1]) for row in trades),
            *(("complaints", row[0], row[-1]) for row in complaints),
        ]

    def touched(self, seller_ids: Iterable[str]) -> dict[str, int]:
        with self._transaction() as cursor:
            pairs = [
                _touch_decoder.decode(b)
                for b in self._bodies(cursor, "touched", "seller_id", seller_ids)
            ]
        return dict(pairs)

    def snapshots(self, rulebook: str, seller_ids: Iterable[str]) -> dict[str, PenaltySnapshot]:
        keys = [snapshot_key(rulebook, s) for s in seller_ids]
        with self._transaction() as cursor:
            found = [
                _snapshot_decoder.decode(b)
                for b in self._bodies(cursor, "snapshots", "snapshot_key", keys)
            ]
        return {snapshot.seller_id: snapshot for snapshot in found}

    def snapshot_state(
        self, rulebook: str, seller_ids: Sequence[str], stored_for: Sequence[str]
    ) -> SnapshotState:
        # One transaction, one pooled connection: the ranking engine's hot path.
        keys = [snapshot_key(rulebook, s) for s in stored_for]
        with self._transaction() as cursor:
            position = self._tracked(cursor)
            touched = dict(
                _touch_decoder.decode(b)
                for b in self._bodies(cursor, "touched", "seller_id", seller_ids)
            )
            found = [
                _snapshot_decoder.decode(b)
                for b in self._bodies(cursor, "snapshots", "snapshot_key", keys)
            ]
        return SnapshotState(position, touched, {s.seller_id: s for s in found})

    def keep_snapshots(self, snapshots: Sequence[PenaltySnapshot]) -> None:
        if self.read_only:
            return  # a standby stores nothing: the process's cache keeps them
        rows = [(snapshot_key(s.rulebook, s.seller_id), _encoder.encode(s)) for s in snapshots]
        with self._transaction() as cursor:
            self._upsert(cursor, "snapshots", ("snapshot_key", "body"), rows)

    def file(self, member_id: str) -> MemberFile | None:
        with self._transaction() as cursor:

            def rows(decoder: msgspec.msgpack.Decoder[R], table: str, column: str) -> list[R]:
                return [decoder.decode(b) for b in self._bodies(cursor, table, column, [member_id])]

            members = rows(_member_decoder, "members", "member_id")
            if not members:
                return None

            # In log order, as the in-memory fold lists them, whatever order the index gives.
            def trades(column: str) -> list[TradeFacts]:
                found = rows(_trade_decoder, "trades", column)
                return sorted(found, key=lambda trade: trade.created.position)

            def complaints(column: str) -> list[ComplaintFacts]:
                found = rows(_complaint_decoder, "complaints", column)
                return sorted(found, key=lambda complaint: complaint.filed.position)

            return MemberFile(
                member=members[0],
                as_seller=trades("seller_id"),
                as_buyer=trades("buyer_id"),
                complaints_against=complaints("seller_id"),
                complaints_filed=complaints("buyer_id"),
            )

    def trades_after(
        self, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[TradeFacts]:
        with self._transaction() as cursor:
            bodies = self._trade_bodies_after(cursor, member_id, role, after, limit)
        return [_trade_decoder.decode(body) for body in bodies]

    @abstractmethod
    def _trade_bodies_after(
        self, cursor: Any, member_id: str, role: Party, after: tuple[int, str] | None, limit: int
    ) -> list[bytes]: ...

    def complaints_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[ComplaintFacts]:
        with self._transaction() as cursor:
            bodies = self._complaint_bodies_after(cursor, seller_id, after, limit)
        return [_complaint_decoder.decode(body) for body in bodies]

    def refunds_after(
        self, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[TradeFacts, str]]:
        with self._transaction() as cursor:
            rows = self._refund_rows_after(cursor, seller_id, after, limit)
        return [(_trade_decoder.decode(body), refund_id) for refund_id, body in rows]

    @abstractmethod
    def _complaint_bodies_after(
        self, cursor: Any, seller_id: str, after: int | None, limit: int
    ) -> list[bytes]:
        """The bodies of the seller's complaints filed after position ``after``,
        in log order, from the index on (seller, position of filing)."""

    @abstractmethod
    def _refund_rows_after(
        self, cursor: Any, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[str, bytes]]:
        """(refund id, its trade's body) of the seller's refunds requested after
        position ``after``, in log order, from the index on (seller, position of
        request)."""

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        with self._transaction() as cursor:
            return self._pairs_trades(cursor, spans)

    def member(self, member_id: str) -> MemberFacts | None:
        with self._transaction() as cursor:
            found = list(self._bodies(cursor, "members", "member_id", [member_id]))
        return _member_decoder.decode(found[0]) if found else None

    _tallies: Tallies

    def tally_stamps(self) -> frozenset[str]:
        return self._tallies.stamps

    def tally(self, key: str, at: datetime, width: int) -> Vector:
        with self._transaction() as cursor:
            return value_at(self._tally_rows(cursor), key, at, width)

    def keeps_tallies_of(self, member_id: str) -> bool:
        with self._transaction() as cursor:
            return bool(self._tallied_members(cursor, [member_id]))

    def member_reading(
        self,
        member_id: str,
        widths: Mapping[str, int],
        at: datetime,
        *,
        changes: bool = False,
        violations: tuple[str, int] | None = None,
    ) -> MemberReading:
        with self._transaction() as cursor:
            position = self._tracked(cursor)
            marks = self._tally_marks(cursor, [member_id])
            if not marks:
                return MemberReading(position, self._registered(cursor, member_id), None)
            registered = marks[0].registered
            rows = self._tally_rows(cursor)
            reading = reading_of(rows, widths, at, changes=changes)
            if violations is None:
                return MemberReading(position, registered, reading)
            bodies = list(self._bodies(cursor, "members", "member_id", [member_id]))
            records = _records_decoder.decode(bodies[0])
            year = rows.violation_year(*violations)
            return MemberReading(position, registered, reading, records, year)

    def member_series(
        self, member_id: str, widths: Mapping[str, int], ats: Sequence[datetime]
    ) -> MemberSeries:
        with self._transaction() as cursor:
            position = self._tracked(cursor)
            marks = self._tally_marks(cursor, [member_id])
            if not marks:
                return MemberSeries(position, self._registered(cursor, member_id), None)
            values = values_over(self._tally_rows(cursor), widths, ats)
            return MemberSeries(position, marks[0].registered, values)

    def _registered(self, cursor: Any, member_id: str) -> Stamp | None:
        """When a member the view does not tally registered (None: unknown)."""
        bodies = list(self._bodies(cursor, "members", "member_id", [member_id]))
        head = _head_decoder.decode(bodies[0]) if bodies else None
        return head.registered if head else None

    def _tally_marks(self, cursor: Any, member_ids: Iterable[str]) -> list[TallyMark]:
        """The marks of these members whose tallies the view keeps: none when it
        claims no rulebook (its marks may be in an older layout)."""
        if not self._tallies.rulebooks:
            return []
        return [
            _mark_decoder.decode(body)
            for body in self._bodies(cursor, "tally_members", "member_id", member_ids)
        ]

    def _tallied_members(self, cursor: Any, member_ids: Iterable[str]) -> set[str]:
        """Those of these members whose tallies the view keeps."""
        return {mark.member_id for mark in self._tally_marks(cursor, member_ids)}

    def _open_tallies(self, rulebooks: Sequence[Rulebook] | None, from_trades: int) -> None:
        """Keep the tallies of the rulebooks this view has kept from its first position.

        An empty view claims the given rulebooks (default: the built-in ones);
        a view with history keeps only those it claimed when it was empty: a
        rulebook claimed later would lack the history before. Figures under
        any other rulebook are computed from the facts until a rebuild.
        """
        wanted = Tallies(builtin_rulebooks() if rulebooks is None else rulebooks, from_trades)
        stamps = sorted(wanted.stamps)
        with self._transaction() as cursor:
            if self._tracked(cursor) == 0 and not self.read_only:
                claims = [(stamp, _encoder.encode(_claim(stamp))) for stamp in stamps]
                self._upsert(cursor, "tallied", ("stamp", "body"), claims)
            kept = {
                claim
                for b in self._bodies(cursor, "tallied", "stamp", stamps)
                if (claim := _stamp_decoder.decode(b)) in map(_claim, stamps)
            }
        claimed = [r for r in wanted.rulebooks if _claim(r.scoring_stamp) in kept]
        self._tallies = Tallies(claimed, from_trades)

    def _pairs_trades(
        self, cursor: Any, spans: Mapping[Pair, Span]
    ) -> dict[Pair, list[TradeFacts]]:
        found: dict[Pair, list[TradeFacts]] = {pair: [] for pair in spans}
        wanted = [(s, b, micros(start), micros(end)) for (s, b), (start, end) in spans.items()]
        for seller_id, buyer_id, body in self._pair_bodies(cursor, wanted):
            found[(seller_id, buyer_id)].append(_trade_decoder.decode(body))
        return found

    @abstractmethod
    def _pair_bodies(
        self, cursor: Any, wanted: Sequence[tuple[str, str, int, int]]
    ) -> Iterable[tuple[str, str, bytes]]:
        """(seller, buyer, body) of each wanted pair's trades created in
        ``[start_us, end_us)``."""

    @abstractmethod
    def _tally_rows(self, cursor: Any) -> TallyRows: ...

    @abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[Any]: ...

    @abstractmethod
    def _bodies(
        self, cursor: Any, table: str, column: str, keys: Iterable[str]
    ) -> Iterator[bytes]: ...

    @abstractmethod
    def _upsert(
        self, cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None: ...

    def _trade_counts(self, cursor: Any, member_ids: Iterable[str]) -> dict[str, int]:
        """Each member's trades as seller and as buyer (absent: none)."""
        counts: Counter[str] = Counter()
        ids = sorted(member_ids)
        for column in ("seller_id", "buyer_id"):
            counts.update(dict(self._counts_by(cursor, "trades", column, ids)))
        return dict(counts)

    @abstractmethod
    def _counts_by(
        self, cursor: Any, table: str, column: str, keys: Sequence[str]
    ) -> Iterable[tuple[str, int]]:
        """(key, rows) of each key with rows in the table's column (an indexed one)."""

    @abstractmethod
    def _tracked(self, cursor: Any, *, lock: bool = False) -> int: ...

    @abstractmethod
    def _track(self, cursor: Any, position: int) -> None: ...


class _StoredPairs:
    """A SQL view's pair lookups inside the batch's transaction."""

    def __init__(self, view: SqlView, cursor: Any) -> None:
        self.view, self.cursor = view, cursor

    def pairs_trades(self, spans: Mapping[Pair, Span]) -> dict[Pair, list[TradeFacts]]:
        return self.view._pairs_trades(self.cursor, spans)

    def complaints_of(self, complaint_ids: Iterable[str]) -> dict[str, ComplaintFacts]:
        bodies = self.view._bodies(self.cursor, "complaints", "complaint_id", complaint_ids)
        found = (_complaint_decoder.decode(body) for body in bodies)
        return {complaint.complaint_id: complaint for complaint in found}

    def tallied_among(self, member_ids: Iterable[str]) -> set[str]:
        return self.view._tallied_members(self.cursor, member_ids)

    def trade_counts(self, member_ids: Iterable[str]) -> dict[str, int]:
        return self.view._trade_counts(self.cursor, member_ids)

    def members_facts(
        self, member_ids: Iterable[str]
    ) -> tuple[list[TradeFacts], list[ComplaintFacts]]:
        ids = sorted(member_ids)
        trades: dict[str, TradeFacts] = {}
        for column in ("seller_id", "buyer_id"):
            for body in self.view._bodies(self.cursor, "trades", column, ids):
                trade = _trade_decoder.decode(body)
                trades[trade.trade_id] = trade
        filed = self.view._bodies(self.cursor, "complaints", "buyer_id", ids)
        return list(trades.values()), [_complaint_decoder.decode(body) for body in filed]


_KEYS = {
    "tallied": "stamp",
    "tally_members": "member_id",
    "members": "member_id",
    "trades": "trade_id",
    "complaints": "complaint_id",
    "refunds": "requested_position",
    "touched": "seller_id",
    "snapshots": "snapshot_key",
}
VIEW_TABLES = (
    "members",
    "trades",
    "complaints",
    "refunds",
    "touched",
    "snapshots",
    "tracking",
    *tally_rows.TALLY_TABLES,
)


class SQLiteView(SqlView):
    def __init__(
        self,
        path: str,
        *,
        version: int | None = None,
        rulebooks: Sequence[Rulebook] | None = None,
        tally_from_trades: int = TALLY_FROM_TRADES,
    ) -> None:
        self._db = SQLiteConnection(path)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.registry} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        self.version = version if version is not None else self.active_version()
        self._prefix = f"rv{self.version}_"
        self._create_tables()
        self._open_tallies(rulebooks, tally_from_trades)

    def active_version(self) -> int:
        row = self._db.execute(
            f"SELECT version FROM {self.registry} WHERE name = ?", (self.name,)
        ).fetchone()
        return int(row[0]) if row else 1

    def activate(self) -> None:
        self._db.execute(
            f"INSERT INTO {self.registry} VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            (self.name, self.version),
        )

    def _create_tables(self) -> None:
        p = self._prefix
        statements = [
            f"CREATE TABLE IF NOT EXISTS {p}members (member_id TEXT PRIMARY KEY, body BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {p}trades (trade_id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL, "
            "seller_id TEXT NOT NULL, created_us INTEGER, body BLOB NOT NULL)",
            *self._added_columns(),
            # A seller's trades, and a pair's by creation time (what tallies read).
            f"CREATE INDEX IF NOT EXISTS {p}trades_pair ON {p}trades (seller_id, buyer_id, created_us)",
            # A member's trades in creation order (the explanation's pages).
            f"CREATE INDEX IF NOT EXISTS {p}trades_seller_created ON {p}trades (seller_id, created_us, trade_id)",
            f"CREATE INDEX IF NOT EXISTS {p}trades_buyer_created ON {p}trades (buyer_id, created_us, trade_id)",
            f"CREATE TABLE IF NOT EXISTS {p}complaints (complaint_id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL, "
            "seller_id TEXT NOT NULL, filed_position INTEGER, body BLOB NOT NULL)",
            *self._added_complaint_columns(),
            f"CREATE INDEX IF NOT EXISTS {p}complaints_seller ON {p}complaints (seller_id)",
            f"CREATE INDEX IF NOT EXISTS {p}complaints_buyer ON {p}complaints (buyer_id)",
            # A seller's complaints and refunds in log order (its lists' pages).
            f"CREATE INDEX IF NOT EXISTS {p}complaints_seller_filed "
            f"ON {p}complaints (seller_id, filed_position)",
            f"CREATE TABLE IF NOT EXISTS {p}refunds (requested_position INTEGER PRIMARY KEY, "
            "seller_id TEXT NOT NULL, trade_id TEXT NOT NULL, refund_id TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {p}refunds_seller ON {p}refunds (seller_id, requested_position)",
            f"CREATE TABLE IF NOT EXISTS {p}tracking (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "position INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {p}touched (seller_id TEXT PRIMARY KEY, body BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {p}snapshots (snapshot_key TEXT PRIMARY KEY, body BLOB NOT NULL)",
            *tally_rows.sqlite_tables(p),
        ]
        self._execute_all(statements)

    def _added_columns(self) -> list[str]:
        """Columns a view made by an earlier release lacks (left empty: such a
        view keeps no tallies until it is rebuilt)."""
        columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({self._prefix}trades)")}
        if not columns or "created_us" in columns:  # new, or made by this release
            return []
        return [f"ALTER TABLE {self._prefix}trades ADD COLUMN created_us INTEGER"]

    def _added_complaint_columns(self) -> list[str]:
        """The position of filing, which a view made by an earlier release lacks
        (left empty: such a view lists its complaints once it is rebuilt)."""
        table = f"{self._prefix}complaints"
        columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        if not columns or "filed_position" in columns:
            return []
        return [f"ALTER TABLE {table} ADD COLUMN filed_position INTEGER"]

    def _pair_bodies(
        self, cursor: sqlite3.Cursor, wanted: Sequence[tuple[str, str, int, int]]
    ) -> Iterable[tuple[str, str, bytes]]:
        # In-process: one indexed range query per pair costs microseconds.
        statement = (
            f"SELECT seller_id, buyer_id, body FROM {self._prefix}trades "
            "WHERE seller_id = ? AND buyer_id = ? AND created_us >= ? AND created_us < ?"
        )
        for row in wanted:
            yield from cursor.execute(statement, row).fetchall()

    def _trade_bodies_after(
        self,
        cursor: sqlite3.Cursor,
        member_id: str,
        role: Party,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[bytes]:
        column = "seller_id" if role == "seller" else "buyer_id"
        start = after or (-(2**63), "")
        rows = cursor.execute(
            f"SELECT body FROM {self._prefix}trades WHERE {column} = ? "
            "AND (created_us, trade_id) > (?, ?) ORDER BY created_us, trade_id LIMIT ?",
            (member_id, *start, limit),
        ).fetchall()
        return [body for (body,) in rows]

    def _complaint_bodies_after(
        self, cursor: sqlite3.Cursor, seller_id: str, after: int | None, limit: int
    ) -> list[bytes]:
        rows = cursor.execute(
            f"SELECT body FROM {self._prefix}complaints WHERE seller_id = ? "
            "AND filed_position > ? ORDER BY filed_position LIMIT ?",
            (seller_id, -1 if after is None else after, limit),
        ).fetchall()
        return [body for (body,) in rows]

    def _refund_rows_after(
        self, cursor: sqlite3.Cursor, seller_id: str, after: int | None, limit: int
    ) -> list[tuple[str, bytes]]:
        p = self._prefix
        rows = cursor.execute(
            f"SELECT r.refund_id, t.body FROM {p}refunds AS r "
            f"JOIN {p}trades AS t ON t.trade_id = r.trade_id "
            "WHERE r.seller_id = ? AND r.requested_position > ? "
            "ORDER BY r.requested_position LIMIT ?",
            (seller_id, -1 if after is None else after, limit),
        ).fetchall()
        return [(refund_id, body) for refund_id, body in rows]

    def _tally_rows(self, cursor: sqlite3.Cursor) -> TallyRows:
        return tally_rows.SQLiteTallyRows(cursor, self._prefix)

    def drop(self) -> None:
        self._execute_all(f"DROP TABLE IF EXISTS {self._prefix}{table}" for table in VIEW_TABLES)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._db.transaction() as cursor:
            yield cursor

    def _bodies(
        self, cursor: sqlite3.Cursor, table: str, column: str, keys: Iterable[str]
    ) -> Iterator[bytes]:
        for chunk in chunks(keys):
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                f"SELECT body FROM {self._prefix}{table} WHERE {column} IN ({marks})", chunk
            )
            for (body,) in cursor.fetchall():
                yield body

    def seller_ids(self, limit: int) -> list[str]:
        with self._transaction() as cursor:
            # The index on (seller_id, created_us, trade_id) gives them in order.
            cursor.execute(
                f"SELECT DISTINCT seller_id FROM {self._prefix}trades ORDER BY seller_id LIMIT ?",
                (limit,),
            )
            return [seller_id for (seller_id,) in cursor.fetchall()]

    def _counts_by(
        self, cursor: sqlite3.Cursor, table: str, column: str, keys: Sequence[str]
    ) -> Iterable[tuple[str, int]]:
        for chunk in chunks(keys):
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                f"SELECT {column}, count(*) FROM {self._prefix}{table} "
                f"WHERE {column} IN ({marks}) GROUP BY {column}",
                chunk,
            )
            yield from cursor.fetchall()

    def _upsert(
        self,
        cursor: sqlite3.Cursor,
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> None:
        if rows:
            names = ", ".join(columns)
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT OR REPLACE INTO {self._prefix}{table} ({names}) VALUES ({marks})", rows
            )

    def _tracked(self, cursor: sqlite3.Cursor, *, lock: bool = False) -> int:
        # SQLite lets one writer at a time into the file: ``lock`` needs nothing.
        row = cursor.execute(f"SELECT position FROM {self._prefix}tracking WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def _track(self, cursor: sqlite3.Cursor, position: int) -> None:
        cursor.execute(f"INSERT OR REPLACE INTO {self._prefix}tracking VALUES (1, ?)", (position,))

    def close(self) -> None:
        self._db.close()


class PostgresView(SqlView):
    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        version: int | None = None,
        pool_size: int = VIEW_POOL_SIZE,
        rulebooks: Sequence[Rulebook] | None = None,
        tally_from_trades: int = TALLY_FROM_TRADES,
        wait_seconds: float = POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
        statement_seconds: int = POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
        read_only: bool = False,
    ) -> None:
        # Readers (request threads) and the runner each take a pooled connection.
        self._pool = postgres_pool(
            conninfo,
            max_size=pool_size,
            wait_seconds=wait_seconds,
            statement_seconds=statement_seconds,
        )
        self._schema = sql.Identifier(schema)
        self.read_only = read_only
        self._schema_name = schema
        if not read_only:
            self._execute_all(
                [
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.{} "
                        "(name text PRIMARY KEY, version integer NOT NULL)"
                    ).format(self._schema, sql.Identifier(self.registry))
                ]
            )
        self.version = version if version is not None else self.active_version()
        self._prefix = f"rv{self.version}_"
        if not read_only:
            self._create_tables()
        self._open_tallies(rulebooks, tally_from_trades)
        self._snapshot_state_statement = self._composed(self._snapshot_state_sql())

    def _table(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(self._schema, sql.Identifier(self._prefix + table))

    def _lock_schema_changes(self, cursor: Any) -> None:
        lock_schema_changes(cursor, self._schema_name)

    def _composed(self, statement: sql.Composable) -> bytes:
        """A statement's text, composed once: psycopg caches the parse of plain bytes."""
        with self._pool.connection() as conn:
            return statement.as_bytes(conn)

    def _snapshot_state_sql(self) -> sql.Composed:
        # The ids travel as one JSON array: psycopg dumps a list of strings
        # element by element in Python (0.6 ms for 1,000); msgspec encodes the
        # JSON in microseconds. Each id is looked up by its own index probe
        # (a correlated subquery): a join or ``= ANY(ids)`` lets the planner,
        # which cannot see how many ids there are, scan whole tables (on a
        # small one it compared every row with every id: 5 ms for 1,000 ids;
        # on a large one a single id would cost a full scan). Snapshot keys
        # are made in SQL, in ``snapshot_key``'s format.
        return sql.SQL(
            "SELECT (SELECT position FROM {tracking} WHERE id = 1), "
            "array_remove(ARRAY(SELECT (SELECT body FROM {touched} WHERE seller_id = id) "
            "FROM json_array_elements_text(%(ids)s::json) AS id), NULL), "
            "array_remove(ARRAY(SELECT (SELECT body FROM {snapshots} "
            "WHERE snapshot_key = %(rulebook)s::text || '|' || id) "
            "FROM json_array_elements_text(%(stored_for)s::json) AS id), NULL)"
        ).format(
            tracking=self._table("tracking"),
            touched=self._table("touched"),
            snapshots=self._table("snapshots"),
        )

    def snapshot_state(
        self, rulebook: str, seller_ids: Sequence[str], stored_for: Sequence[str]
    ) -> SnapshotState:
        # The ranking engine's hot path: one prepared statement, one round
        # trip. A single statement reads one snapshot of the database, so the
        # position, touched marks and snapshots agree with each other.
        with self._pool.connection() as conn:
            row = conn.execute(
                self._snapshot_state_statement,
                {
                    "ids": _json_text.encode(list(seller_ids)).decode(),
                    "stored_for": _json_text.encode(list(stored_for)).decode(),
                    "rulebook": rulebook,
                },
                binary=True,
                prepare=True,
            ).fetchone()
        if row is None:
            raise RuntimeError("the snapshot state query returned no row")
        position, touched_bodies, snapshot_bodies = row
        touched = dict(_touch_decoder.decode(body) for body in touched_bodies)
        found = [_snapshot_decoder.decode(body) for body in snapshot_bodies]
        return SnapshotState(position or 0, touched, {s.seller_id: s for s in found})

    def replay_lag(self) -> ReplayLag | None:
        """How far this database's replay trails its primary (None: not a standby)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), "
                "coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), "
                "pg_last_xact_replay_timestamp()"
            ).fetchone()
        if row is None or not row[0]:
            return None
        return ReplayLag(received_not_replayed_bytes=int(row[1]), last_replayed_at=row[2])

    def active_version(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT version FROM {}.{} WHERE name = %s").format(
                    self._schema, sql.Identifier(self.registry)
                ),
                (self.name,),
            ).fetchone()
        return int(row[0]) if row else 1

    def activate(self) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.{} VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version"
                ).format(self._schema, sql.Identifier(self.registry)),
                (self.name, self.version),
            )

    def _create_tables(self) -> None:
        t = self._table
        statements = [
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (member_id text PRIMARY KEY, body bytea NOT NULL)"
            ).format(t("members")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (trade_id text PRIMARY KEY, buyer_id text NOT NULL, "
                "seller_id text NOT NULL, created_us bigint, body bytea NOT NULL) WITH (fillfactor = 50)"
            ).format(t("trades")),
            # A view made by an earlier release lacks the column: left empty,
            # such a view keeps no tallies until it is rebuilt.
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS created_us bigint").format(
                t("trades")
            ),
            # A seller's trades, and a pair's by creation time (what tallies read).
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (seller_id, buyer_id, created_us)").format(
                sql.Identifier(f"{self._prefix}trades_pair"), t("trades")
            ),
            # A member's trades in creation order (the explanation's pages).
            *(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}, created_us, trade_id)").format(
                    sql.Identifier(f"{self._prefix}trades_{party}_created"),
                    t("trades"),
                    sql.Identifier(f"{party}_id"),
                )
                for party in ("seller", "buyer")
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (complaint_id text PRIMARY KEY, buyer_id text NOT NULL, "
                "seller_id text NOT NULL, filed_position bigint, body bytea NOT NULL)"
            ).format(t("complaints")),
            # A view made by an earlier release lacks the column: left empty,
            # such a view lists its complaints once it is rebuilt.
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS filed_position bigint").format(
                t("complaints")
            ),
            *self._party_indexes("complaints"),
            # A seller's complaints and refunds in log order (its lists' pages).
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (seller_id, filed_position)").format(
                sql.Identifier(f"{self._prefix}complaints_seller_filed"), t("complaints")
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (requested_position bigint PRIMARY KEY, "
                "seller_id text NOT NULL, trade_id text NOT NULL, refund_id text NOT NULL)"
            ).format(t("refunds")),
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (seller_id, requested_position)").format(
                sql.Identifier(f"{self._prefix}refunds_seller"), t("refunds")
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL)"
            ).format(t("tracking")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (seller_id text PRIMARY KEY, body bytea NOT NULL)"
            ).format(t("touched")),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (snapshot_key text PRIMARY KEY, body bytea NOT NULL)"
            ).format(t("snapshots")),
            *tally_rows.postgres_tables(t),
            # The tracking row exists from the start, so there is always a row to lock.
            sql.SQL("INSERT INTO {} VALUES (1, 0) ON CONFLICT (id) DO NOTHING").format(
                t("tracking")
            ),
        ]
        self._execute_all(statements)

    def _pair_bodies(
        self, cursor: psycopg.Cursor[Any], wanted: Sequence[tuple[str, str, int, int]]
    ) -> Iterable[tuple[str, str, bytes]]:
        # Every pair in one round trip: an index range scan per wanted pair.
        if not wanted:
            return []
        sellers, buyers, starts, ends = (list(column) for column in zip(*wanted, strict=True))
        cursor.execute(
            sql.SQL(
                "SELECT t.seller_id, t.buyer_id, t.body FROM "
                "unnest(%s::text[], %s::text[], %s::int8[], %s::int8[]) AS w (s, b, lo, hi) "
                "JOIN {} AS t ON t.seller_id = w.s AND t.buyer_id = w.b "
                "AND t.created_us >= w.lo AND t.created_us < w.hi"
            ).format(self._table("trades")),
            (sellers, buyers, starts, ends),
        )
        return [(s, b, bytes(body)) for s, b, body in cursor.fetchall()]

    def _trade_bodies_after(
        self,
        cursor: psycopg.Cursor[Any],
        member_id: str,
        role: Party,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[bytes]:
        column = sql.Identifier("seller_id" if role == "seller" else "buyer_id")
        start = after or (-(2**63), "")
        cursor.execute(
            sql.SQL(
                "SELECT body FROM {} WHERE {} = %s AND (created_us, trade_id) > (%s, %s) "
                "ORDER BY created_us, trade_id LIMIT %s"
            ).format(self._table("trades"), column),
            (member_id, *start, limit),
        )
        return [bytes(body) for (body,) in cursor.fetchall()]

    def _complaint_bodies_after(
        self, cursor: psycopg.Cursor[Any], seller_id: str, after: int | None, limit: int
    ) -> list[bytes]:
        cursor.execute(
            sql.SQL(
                "SELECT body FROM {} WHERE seller_id = %s AND filed_position > %s "
                "ORDER BY filed_position LIMIT %s"
            ).format(self._table("complaints")),
            (seller_id, -1 if after is None else after, limit),
        )
        return [bytes(body) for (body,) in cursor.fetchall()]

    def _refund_rows_after(
        self, cursor: psycopg.Cursor[Any], seller_id: str, after: int | None, limit: int
    ) -> list[tuple[str, bytes]]:
        cursor.execute(
            sql.SQL(
                "SELECT r.refund_id, t.body FROM {} AS r JOIN {} AS t ON t.trade_id = r.trade_id "
                "WHERE r.seller_id = %s AND r.requested_position > %s "
                "ORDER BY r.requested_position LIMIT %s"
            ).format(self._table("refunds"), self._table("trades")),
            (seller_id, -1 if after is None else after, limit),
        )
        return [(refund_id, bytes(body)) for refund_id, body in cursor.fetchall()]

    def _tally_rows(self, cursor: psycopg.Cursor[Any]) -> TallyRows:
        return tally_rows.PostgresTallyRows(cursor, self._table)

    def _party_indexes(self, table: str) -> list[sql.Composed]:
        """A trade or complaint is looked up by its seller and by its buyer."""
        return [
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(f"{self._prefix}{table}_{party}"),
                self._table(table),
                sql.Identifier(f"{party}_id"),
            )
            for party in ("seller", "buyer")
        ]

    def drop(self) -> None:
        self._execute_all(
            sql.SQL("DROP TABLE IF EXISTS {}").format(self._table(table)) for table in VIEW_TABLES
        )

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    def _bodies(
        self, cursor: psycopg.Cursor[Any], table: str, column: str, keys: Iterable[str]
    ) -> Iterator[bytes]:
        for chunk in chunks(keys):
            cursor.execute(
                sql.SQL("SELECT body FROM {} WHERE {} = ANY(%s)").format(
                    self._table(table), sql.Identifier(column)
                ),
                (chunk,),
            )
            for (body,) in cursor.fetchall():
                yield bytes(body)

    def seller_ids(self, limit: int) -> list[str]:
        with self._transaction() as cursor:
            # In code point order, as SQLite and the view in memory give them.
            cursor.execute(
                sql.SQL('SELECT DISTINCT seller_id COLLATE "C" FROM {} ORDER BY 1 LIMIT %s').format(
                    self._table("trades")
                ),
                (limit,),
            )
            return [str(seller_id) for (seller_id,) in cursor.fetchall()]

    def _counts_by(
        self, cursor: psycopg.Cursor[Any], table: str, column: str, keys: Sequence[str]
    ) -> Iterable[tuple[str, int]]:
        for chunk in chunks(keys):
            cursor.execute(
                sql.SQL("SELECT {0}, count(*) FROM {1} WHERE {0} = ANY(%s) GROUP BY {0}").format(
                    sql.Identifier(column), self._table(table)
                ),
                (chunk,),
            )
            yield from cursor.fetchall()

    def _upsert(
        self,
        cursor: psycopg.Cursor[Any],
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> None:
        if not rows:
            return
        # One statement for all the rows, never a round of ``executemany``.
        # Few rows travel as arrays (``unnest``); many are copied into a
        # session's staging table first: psycopg dumps arrays element by
        # element in Python, while ``COPY`` rows are formatted in C.
        key = _KEYS[table]
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        if len(rows) >= COPY_ROWS_MIN:
            source: sql.Composable = self._staged(cursor, table, columns, rows)
            params: list[Any] | None = None
        else:
            arrays = sql.SQL(", ").join(sql.SQL(f"%b::{_pg_type(c)}[]") for c in columns)
            source = sql.SQL("unnest({}) AS given ({})").format(arrays, names)
            params = [list(column) for column in zip(*rows, strict=True)]
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c != key
        )
        statement = sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
        ).format(self._table(table), names, names, source, sql.Identifier(key), updates)
        cursor.execute(statement, params)

    def _staged(
        self,
        cursor: psycopg.Cursor[Any],
        table: str,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> sql.Identifier:
        """The rows copied into this session's staging table for ``table``,
        emptied when the transaction ends."""
        stage = sql.Identifier(f"stage_{self._prefix}{table}")
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS"
            ).format(stage, self._table(table))
        )
        copy_in = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            stage, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cursor.copy(copy_in) as copy:
            copy.set_types([_pg_type(c) for c in columns])
            for row in rows:
                copy.write_row(row)
        return stage

    def _tracked(self, cursor: psycopg.Cursor[Any], *, lock: bool = False) -> int:
        statement = "SELECT position FROM {} WHERE id = 1" + (" FOR UPDATE" if lock else "")
        cursor.execute(sql.SQL(statement).format(self._table("tracking")))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _track(self, cursor: psycopg.Cursor[Any], position: int) -> None:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position"
            ).format(self._table("tracking")),
            (position,),
        )

    def close(self) -> None:
        self._pool.close()


def _pg_type(column: str) -> str:
    """A view column's PostgreSQL type: bodies are bytes, instants and log
    positions integers, the rest text."""
    integers = {"created_us", "filed_position", "requested_position"}
    return "int8" if column in integers else {"body": "bytea"}.get(column, "text")


def activated_version(view: ReputationView) -> int | None:
    """The version a rebuild activated since ``view`` was opened (None: it is
    still the active one, or it is a memory view, which lives in one process)."""
    if not isinstance(view, SqlView):
        return None
    active = view.active_version()
    return None if active == view.version else active


def open_view(
    database_url: str,
    *,
    version: int | None = None,
    rulebooks: Sequence[Rulebook] | None = None,
    tally_from_trades: int = TALLY_FROM_TRADES,
    read_only: bool = False,
) -> ReputationView:
    """The view that lives beside the log named by a ledger database URL,
    keeping tallies for ``rulebooks`` (default: the built-in ones) of the
    members with at least ``tally_from_trades`` trades; ``read_only``: the
    view as a PostgreSQL hot standby holds it, for reads only."""
    place = place_of(database_url)
    if read_only and place.kind != "postgresql":
        raise ValueError("a read-only view is read on a PostgreSQL standby")
    if place.kind == "memory":
        return MemoryView(rulebooks=rulebooks, tally_from_trades=tally_from_trades)
    if place.kind == "sqlite":
        return SQLiteView(
            place.path, version=version, rulebooks=rulebooks, tally_from_trades=tally_from_trades
        )
    return PostgresView(
        place.conninfo,
        schema=place.schema,
        version=version,
        rulebooks=rulebooks,
        tally_from_trades=tally_from_trades,
        wait_seconds=place.pool.connect_timeout_seconds,
        statement_seconds=place.pool.statement_timeout_seconds,
        read_only=read_only,
    )
