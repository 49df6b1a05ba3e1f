"""The penalty change feed: each seller's search penalty, written down again
whenever it changes, for the ranking engine to keep its own copy.

A seller's penalty changes in two ways: a new fact about the seller (the
log), or business time alone (a ban ending, a trade leaving a window, a
rating becoming visible), at the instant its last computation said it would
stay right until (``valid_until``). ``PenaltyFeedRunner`` follows both: it
reads the log after the position it has covered, up to what the view has
folded, and recomputes the penalty of every seller those facts touched; and
it recomputes the sellers whose last penalty is due to change by time. A
penalty equal to the one last written is not written again.

Each change gets the next **feed position** (1, 2, ...), and the changes and
the log position they cover are committed in one transaction: a consumer
resumes after the last feed position it saw and misses or repeats nothing.
The first change of a seller is its first penalty, so reading the feed from
0 gives every seller's penalty, then every change after.

The feed lives beside the log, outside the view's versions: a rebuilt view
does not renumber it. It is written for the serving rulebook by the follower
(fenced like the view's writes on PostgreSQL).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Literal

import msgspec

from ledger.app import LedgerApp
from ledger.clock import Clock
from ledger.commands import UtcTime
from ledger.database import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
    POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
)
from ledger.store import lock_schema_changes, to_micros
from projections.connections import Fence, SQLiteConnection, chunks, place_of, postgres_pool
from projections.marketplace import Cut
from projections.penalties import Penalty
from projections.queries import Reputation
from projections.runner import LogFollower
from projections.views import ReputationView, Touched

# Facts read per transaction (their sellers' penalties are recomputed in it).
FEED_EVENTS_MAX = 2_000
# Sellers recomputed per transaction because time moved their penalty.
FEED_DUE_SELLERS_MAX = 500
FEED_DUE_ROUNDS_MAX = 20
FEED_PAGE_MAX = 1_000
FEED_POOL_SIZE = 4

Cause = Literal["fact", "time"]


class PenaltyChange(msgspec.Struct, frozen=True):
    """A seller's penalty from ``as_of`` on, as the feed wrote it down."""

    feed_position: int
    seller_id: str
    rulebook: str
    cause: Cause
    as_of: UtcTime  # the business time it was computed at
    position: int  # the log position the penalty reflects
    penalty: Penalty


class Written(msgspec.Struct, frozen=True):
    """A seller's last penalty in the feed, and when time alone may change it."""

    penalty: Penalty
    valid_until: UtcTime | None


class Computed(msgspec.Struct, frozen=True):
    """A penalty just computed, for ``PenaltyFeed.record``."""

    seller_id: str
    cause: Cause
    written: Written


_encoder = msgspec.msgpack.Encoder()
_change_decoder = msgspec.msgpack.Decoder(PenaltyChange)
_written_decoder = msgspec.msgpack.Decoder(Written)


class PenaltyFeed(ABC):
    """Where the feed is kept: its changes, each seller's last, its position."""

    rulebook: str  # the scoring stamp of the rulebook its penalties follow
    fence: Fence | None = None

    @abstractmethod
    def changes(self, after: int, limit: int = FEED_PAGE_MAX) -> list[PenaltyChange]:
        """The changes after a feed position, oldest first."""

    @abstractmethod
    def covered(self) -> int:
        """The log position whose facts the feed reflects."""

    @abstractmethod
    def due(self, now: datetime, limit: int) -> list[str]:
        """Sellers whose last penalty may have changed by ``now`` with no new fact."""

    @abstractmethod
    def record(
        self, computed: Sequence[Computed], *, as_of: datetime, position: int, covered: int
    ) -> list[PenaltyChange]:
        """Write the penalties that differ from each seller's last as changes,
        keep every one as its seller's last, and cover the log up to
        ``covered``: all in one transaction. The changes written."""

    def close(self) -> None:  # noqa: B027 - feeds without resources need nothing here
        pass

    @staticmethod
    def _changed(computed: Sequence[Computed], before: dict[str, Written]) -> list[Computed]:
        return [
            c
            for c in computed
            if c.seller_id not in before or before[c.seller_id].penalty != c.written.penalty
        ]


class MemoryPenaltyFeed(PenaltyFeed):
    def __init__(self, rulebook: str) -> None:
        self.rulebook = rulebook
        self._changes: list[PenaltyChange] = []
        self._written: dict[str, Written] = {}
        self._covered = 0
        self._lock = threading.Lock()

    def changes(self, after: int, limit: int = FEED_PAGE_MAX) -> list[PenaltyChange]:
        with self._lock:
            return self._changes[after : after + min(limit, FEED_PAGE_MAX)]

    def covered(self) -> int:
        return self._covered

    def due(self, now: datetime, limit: int) -> list[str]:
        with self._lock:
            due = [
                (w.valid_until, seller)
                for seller, w in self._written.items()
                if w.valid_until is not None and w.valid_until <= now
            ]
        return [seller for _, seller in sorted(due)[:limit]]

    def record(
        self, computed: Sequence[Computed], *, as_of: datetime, position: int, covered: int
    ) -> list[PenaltyChange]:
        with self._lock:
            before = {s: w for s in (c.seller_id for c in computed) if (w := self._written.get(s))}
            size = len(self._changes)
            changes = [
                _change(size + i + 1, c, self.rulebook, as_of, position)
                for i, c in enumerate(self._changed(computed, before))
            ]
            self._changes.extend(changes)
            self._written.update((c.seller_id, c.written) for c in computed)
            self._covered = max(self._covered, covered)
            return changes


class SqlPenaltyFeed(PenaltyFeed):
    """The feed in three tables beside the log (SQLite and PostgreSQL alike;
    statements are written with ``?`` and PostgreSQL's take ``%s``)."""

    rulebook: str

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _sql(self, statement: str) -> str: ...

    def changes(self, after: int, limit: int = FEED_PAGE_MAX) -> list[PenaltyChange]:
        with self._transaction(write=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT body FROM penalty_feed WHERE feed_position > ? "
                    "ORDER BY feed_position LIMIT ?"
                ),
                (after, min(limit, FEED_PAGE_MAX)),
            )
            return [_change_decoder.decode(bytes(body)) for (body,) in cursor.fetchall()]

    def covered(self) -> int:
        with self._transaction(write=False) as cursor:
            return self._covered(cursor)[0]

    def due(self, now: datetime, limit: int) -> list[str]:
        with self._transaction(write=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT seller_id FROM penalty_feed_sellers WHERE valid_until_us <= ? "
                    "ORDER BY valid_until_us, seller_id LIMIT ?"
                ),
                (_micros(now), limit),
            )
            return [str(seller) for (seller,) in cursor.fetchall()]

    def record(
        self, computed: Sequence[Computed], *, as_of: datetime, position: int, covered: int
    ) -> list[PenaltyChange]:
        with self._transaction(write=True) as cursor:
            covered_before, size = self._covered(cursor, lock=True)
            if self.fence is not None:
                self.fence(cursor)
            before = self._written_in(cursor, [c.seller_id for c in computed])
            changes = [
                _change(size + i + 1, c, self.rulebook, as_of, position)
                for i, c in enumerate(self._changed(computed, before))
            ]
            if changes:
                cursor.executemany(
                    self._sql("INSERT INTO penalty_feed (feed_position, body) VALUES (?, ?)"),
                    [(c.feed_position, _encoder.encode(c)) for c in changes],
                )
            if computed:
                cursor.executemany(
                    self._sql(
                        "INSERT INTO penalty_feed_sellers (seller_id, valid_until_us, body) "
                        "VALUES (?, ?, ?) ON CONFLICT (seller_id) DO UPDATE SET "
                        "valid_until_us = excluded.valid_until_us, body = excluded.body"
                    ),
                    [
                        (c.seller_id, _micros(c.written.valid_until), _encoder.encode(c.written))
                        for c in computed
                    ],
                )
            cursor.execute(
                self._sql(
                    "INSERT INTO penalty_feed_tracking (id, covered, size) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET covered = excluded.covered, size = excluded.size"
                ),
                (max(covered, covered_before), size + len(changes)),
            )
        return changes

    # Locks the tracking row for a write (PostgreSQL): writers take turns.
    _lock_clause = ""

    def _covered(self, cursor: Any, *, lock: bool = False) -> tuple[int, int]:
        statement = "SELECT covered, size FROM penalty_feed_tracking WHERE id = 1"
        cursor.execute(self._sql(statement + (self._lock_clause if lock else "")))
        row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _written_in(self, cursor: Any, seller_ids: Sequence[str]) -> dict[str, Written]:
        found: dict[str, Written] = {}
        for chunk in chunks(seller_ids):
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                self._sql(
                    f"SELECT seller_id, body FROM penalty_feed_sellers WHERE seller_id IN ({marks})"
                ),
                chunk,
            )
            found.update((s, _written_decoder.decode(bytes(b))) for s, b in cursor.fetchall())
        return found


def _tables(binary: str, big: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS penalty_feed (feed_position {big} PRIMARY KEY, body {binary} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS penalty_feed_sellers (seller_id TEXT PRIMARY KEY, "
        f"valid_until_us {big}, body {binary} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS penalty_feed_sellers_due ON penalty_feed_sellers (valid_until_us)",
        f"CREATE TABLE IF NOT EXISTS penalty_feed_tracking (id INTEGER PRIMARY KEY CHECK (id = 1), "
        f"covered {big} NOT NULL, size {big} NOT NULL)",
    ]


class SQLitePenaltyFeed(SqlPenaltyFeed):
    def __init__(self, path: str, rulebook: str) -> None:
        self.rulebook = rulebook
        self._db = SQLiteConnection(path)
        with self._db.transaction() as cursor:
            for statement in _tables("BLOB", "INTEGER"):
                cursor.execute(statement)

    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        return self._db.transaction(write=write)

    def _sql(self, statement: str) -> str:
        return statement

    def close(self) -> None:
        self._db.close()


class PostgresPenaltyFeed(SqlPenaltyFeed):
    _lock_clause = " FOR UPDATE"

    def __init__(
        self,
        conninfo: str,
        rulebook: str,
        *,
        schema: str = "public",
        wait_seconds: float = POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
        statement_seconds: int = POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
        read_only: bool = False,
    ) -> None:
        self.rulebook = rulebook
        self._schema = schema
        self._pool = postgres_pool(
            conninfo,
            max_size=FEED_POOL_SIZE,
            wait_seconds=wait_seconds,
            statement_seconds=statement_seconds,
        )
        if not read_only:
            with self._transaction(write=True) as cursor:
                lock_schema_changes(cursor, schema)
                for statement in _tables("bytea", "bigint"):
                    cursor.execute(statement)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SELECT set_config('search_path', %s, true)", (self._schema,))
            yield cursor

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def close(self) -> None:
        self._pool.close()


def open_penalty_feed(database_url: str, rulebook: str, *, read_only: bool = False) -> PenaltyFeed:
    """The feed beside the log a ledger database URL names."""
    place = place_of(database_url)
    if place.kind == "memory":
        return MemoryPenaltyFeed(rulebook)
    if place.kind == "sqlite":
        return SQLitePenaltyFeed(place.path, rulebook)
    return PostgresPenaltyFeed(
        place.conninfo,
        rulebook,
        schema=place.schema,
        wait_seconds=place.pool.connect_timeout_seconds,
        statement_seconds=place.pool.statement_timeout_seconds,
        read_only=read_only,
    )


def _change(
    feed_position: int, computed: Computed, rulebook: str, as_of: datetime, position: int
) -> PenaltyChange:
    return PenaltyChange(
        feed_position,
        computed.seller_id,
        rulebook,
        computed.cause,
        as_of,
        position,
        computed.written.penalty,
    )


def _micros(at: datetime | None) -> int | None:
    return None if at is None else to_micros(at)


class PenaltyFeedRunner(LogFollower):
    """Keeps the feed up with the view: facts first, then time."""

    def __init__(
        self,
        app: LedgerApp,
        feed: PenaltyFeed,
        reputation: Reputation,
        clock: Clock,
        *,
        batch_events: int = FEED_EVENTS_MAX,
    ) -> None:
        super().__init__(app, batch_events=batch_events, batch_events_max=FEED_EVENTS_MAX)
        self.feed = feed
        self.reputation = reputation
        self.clock = clock
        self._topics = ReputationView.topics()

    def catch_up(self) -> int:
        """Recompute the sellers touched by facts the view has folded and the
        feed not yet covered, then those whose time came; changes written."""
        written = 0
        with self._lock:
            while (step := self._facts()) is not None:
                written += step
            # Bounded: a due seller is recomputed to a later instant, so each
            # round takes others; the rest wait for the next catch-up.
            for _ in range(FEED_DUE_ROUNDS_MAX):
                step = self._time()
                if step is None:
                    break
                written += step
        return written

    def _facts(self) -> int | None:
        """One batch of facts; None when the feed covers what the view folded."""
        covered = self.feed.covered()
        folded = self.reputation.view.position()
        if covered >= folded:
            return None
        page = self.app.read_events(covered, self.batch_events, topics=self._topics)
        events = [(p, e) for p, e in page.events if p <= folded]
        sellers = sorted(Touched.by(events).sellers)
        # A page that read the whole log went past what the view folded.
        reached = min(page.reached, folded) if page.read == self.batch_events else folded
        return len(self._recompute(sellers, "fact", folded=folded, covered=reached))

    def _time(self) -> int | None:
        """One batch of sellers due by time; None when none is."""
        due = self.feed.due(self.clock.now(), FEED_DUE_SELLERS_MAX)
        if not due:
            return None
        return len(self._recompute(due, "time", folded=self.reputation.view.position(), covered=0))

    def _recompute(
        self, sellers: Sequence[str], cause: Cause, *, folded: int, covered: int
    ) -> list[PenaltyChange]:
        now = self.clock.now()
        book = self.reputation.rulebook()
        cut = Cut(now)
        computed = []
        for seller in sellers:
            found = self.reputation.penalty_at(seller, cut, book)
            if found is not None:
                penalty, valid_until = found
                computed.append(Computed(seller, cause, Written(penalty, valid_until)))
        return self.feed.record(computed, as_of=now, position=folded, covered=covered)
