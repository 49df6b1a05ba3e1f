"""Event recorders for memory, SQLite and PostgreSQL, with the ledger's side tables.

Two small tables are written in the same transaction as the events they belong
to, so they can never disagree with the log:

- **idempotency**: (caller, key) → hash of the command and the keys of the
  events it wrote. A repeated key answers with the original positions; it
  survives restarts because it is stored, not held in memory.
- **deadlines**: aggregate id → the time its next deadline falls due, so the
  deadline worker finds due aggregates with an index range scan instead of
  scanning the log.

Both arrive as keyword arguments of ``insert_events`` (``Application.save``
passes its keyword arguments through), the same way the library passes
tracking records.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
)
from eventsourcing.utils import Environment, EnvType
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier

from ledger.codec import StoredRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EventKey = tuple[UUID, int]
# What a projection reads from the log: position, topic and the stored body.
LogEntry = tuple[int, str, bytes]
# What the verifiable log hashes: position, originator id and version, topic, body.
StoredEntry = tuple[int, UUID, int, str, bytes]
_ENTRY_COLUMNS = "notification_id, topic, state"
# An append's transaction, opened and committed by statements in its pipeline.
BEGIN, COMMIT = SQL("BEGIN"), SQL("COMMIT")
_STORED_COLUMNS = "notification_id, originator_id, originator_version, topic, state"


class IdempotencyRecord(msgspec.Struct, frozen=True):
    caller: str
    key: str
    command_hash: str
    event_keys: tuple[EventKey, ...]


class DeadlineUpdate(msgspec.Struct, frozen=True):
    """The next due time of an aggregate's deadlines; ``None`` when it has none."""

    originator_id: UUID
    due_at: datetime | None


class DeadlinesDue(msgspec.Struct, frozen=True):
    """Where the deadline index stands at a time: how many aggregates are due
    (counted up to a limit; ``more`` says there are others), the earliest due
    time among them (how far behind the worker is) and the next one to fall due."""

    due: int
    more: bool
    oldest_due_at: datetime | None
    next_due_at: datetime | None


def to_micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _due_from(counted: int, limit: int, oldest: int | None, following: int | None) -> DeadlinesDue:
    return DeadlinesDue(
        min(counted, limit),
        counted > limit,
        from_micros(oldest) if counted else None,
        from_micros(following),
    )


_keys_encoder = msgspec.json.Encoder()
_keys_decoder = msgspec.json.Decoder(tuple[tuple[UUID, int], ...])


def _encode_keys(keys: Sequence[EventKey]) -> bytes:
    return _keys_encoder.encode(keys)


def _decode_keys(data: bytes) -> tuple[EventKey, ...]:
    return _keys_decoder.decode(data)


class LedgerRecorder(Protocol):
    """What the ledger needs from its recorder beyond the library's interface."""

    def find_idempotency(self, caller: str, key: str) -> IdempotencyRecord | None: ...

    def positions_of(self, event_keys: Sequence[EventKey]) -> list[int]: ...

    def due_aggregates(self, until: datetime, limit: int) -> list[UUID]: ...

    def deadlines_due(self, now: datetime, limit: int) -> DeadlinesDue:
        """The index's state at ``now``; costs the due aggregates up to ``limit``."""
        ...

    def select_entries(self, after: int, limit: int) -> list[LogEntry]:
        """The log after a position, lean: no Notification objects, no ids decoded."""
        ...

    def select_stored(self, after: int, limit: int) -> list[StoredEntry]:
        """The log after a position with every stored column (the Merkle tree's leaves)."""
        ...


def _side_rows(
    kwargs: dict[str, Any],
) -> tuple[Sequence[IdempotencyRecord], Sequence[DeadlineUpdate]]:
    return kwargs.get("idempotency", ()), kwargs.get("deadlines", ())


# --- In memory -----------------------------------------------------------------


class MemoryLedgerRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self._deadlines: dict[UUID, datetime] = {}

    def _insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        idempotency, deadlines = _side_rows(kwargs)
        with self._database_lock:
            for record in idempotency:
                if (record.caller, record.key) in self._idempotency:
                    raise IntegrityError(f"idempotency key {record.key!r} already used")
            ids = super()._insert_events(stored_events, **kwargs)
            for record in idempotency:
                self._idempotency[(record.caller, record.key)] = record
            for update in deadlines:
                if update.due_at is None:
                    self._deadlines.pop(update.originator_id, None)
                else:
                    self._deadlines[update.originator_id] = update.due_at
            return ids

    def find_idempotency(self, caller: str, key: str) -> IdempotencyRecord | None:
        with self._database_lock:
            return self._idempotency.get((caller, key))

    def positions_of(self, event_keys: Sequence[EventKey]) -> list[int]:
        with self._database_lock:
            return [self._stored_events_index[str(oid)][version] + 1 for oid, version in event_keys]

    def due_aggregates(self, until: datetime, limit: int) -> list[UUID]:
        with self._database_lock:
            due = sorted((at, oid) for oid, at in self._deadlines.items() if at <= until)
        return [oid for _, oid in due[:limit]]

    def deadlines_due(self, now: datetime, limit: int) -> DeadlinesDue:
        with self._database_lock:
            times = sorted(to_micros(at) for at in self._deadlines.values())
        until = to_micros(now)
        due = [at for at in times if at <= until]
        following = next((at for at in times if at > until), None)
        return _due_from(len(due), limit, due[0] if due else None, following)

    def select_entries(self, after: int, limit: int) -> list[LogEntry]:
        found = self.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [(n.id, n.topic, n.state) for n in found]

    def select_stored(self, after: int, limit: int) -> list[StoredEntry]:
        found = self.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [
            (n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
            for n in found
        ]


# --- SQLite --------------------------------------------------------------------


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """SQLite events with an explicit, never-reused position column.

    The library's table keys notifications on the implicit rowid, which VACUUM
    may renumber; an ``INTEGER PRIMARY KEY AUTOINCREMENT`` column is the rowid
    itself, survives VACUUM and is never reused after a delete.
    """

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        table = self.events_table_name
        self.insert_events_statement = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?)"
        )
        self.idempotency_table = f"{table}_idempotency"
        self.deadlines_table = f"{table}_deadlines"

    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "notification_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "topic TEXT NOT NULL, "
            "state BLOB NOT NULL, "
            "UNIQUE (originator_id, originator_version))",
            f"CREATE TABLE IF NOT EXISTS {table}_idempotency ("
            "caller TEXT NOT NULL, key TEXT NOT NULL, command_hash TEXT NOT NULL, "
            "event_keys BLOB NOT NULL, PRIMARY KEY (caller, key))",
            f"CREATE TABLE IF NOT EXISTS {table}_deadlines ("
            "originator_id TEXT PRIMARY KEY, due_at_us INTEGER NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {table}_deadlines_due ON {table}_deadlines (due_at_us)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        idempotency, deadlines = _side_rows(kwargs)
        for record in idempotency:
            c.execute(
                f"INSERT INTO {self.idempotency_table} VALUES (?,?,?,?)",
                (
                    record.caller,
                    record.key,
                    record.command_hash,
                    _encode_keys(record.event_keys),
                ),
            )
        for update in deadlines:
            if update.due_at is None:
                c.execute(
                    f"DELETE FROM {self.deadlines_table} WHERE originator_id = ?",
                    (update.originator_id.hex,),
                )
            else:
                c.execute(
                    f"INSERT INTO {self.deadlines_table} VALUES (?, ?) "
                    "ON CONFLICT (originator_id) DO UPDATE SET due_at_us = excluded.due_at_us",
                    (update.originator_id.hex, to_micros(update.due_at)),
                )
        return ids

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        # The library selects "rowid", which an INTEGER PRIMARY KEY column
        # reports under its own name; select the position column explicitly.
        clauses: list[str] = []
        params: list[Any] = []
        if start is not None:
            clauses.append("notification_id >= ?" if inclusive_of_start else "notification_id > ?")
            params.append(start)
        if stop is not None:
            clauses.append("notification_id <= ?")
            params.append(stop)
        if topics:
            clauses.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT * FROM {self.events_table_name} {where}ORDER BY notification_id LIMIT ?",
                params,
            )
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=self.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
                for row in c.fetchall()
            ]

    def find_idempotency(self, caller: str, key: str) -> IdempotencyRecord | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT command_hash, event_keys FROM {self.idempotency_table} "
                "WHERE caller = ? AND key = ?",
                (caller, key),
            )
            row = c.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(caller, key, row["command_hash"], _decode_keys(row["event_keys"]))

    def positions_of(self, event_keys: Sequence[EventKey]) -> list[int]:
        positions = []
        with self.datastore.transaction(commit=False) as c:
            for oid, version in event_keys:
                c.execute(
                    f"SELECT notification_id FROM {self.events_table_name} "
                    "WHERE originator_id = ? AND originator_version = ?",
                    (oid.hex, version),
                )
                positions.append(int(c.fetchone()["notification_id"]))
        return positions

    def due_aggregates(self, until: datetime, limit: int) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM {self.deadlines_table} "
                "WHERE due_at_us <= ? ORDER BY due_at_us LIMIT ?",
                (to_micros(until), limit),
            )
            return [UUID(row["originator_id"]) for row in c.fetchall()]

    def deadlines_due(self, now: datetime, limit: int) -> DeadlinesDue:
        until = to_micros(now)
        with self.datastore.transaction(commit=False) as c:
            # Three index reads: counting stops one past the limit.
            c.execute(
                f"SELECT count(*) AS n FROM (SELECT 1 FROM {self.deadlines_table} "
                "WHERE due_at_us <= ? LIMIT ?)",
                (until, limit + 1),
            )
            counted = int(c.fetchone()["n"])
            c.execute(f"SELECT min(due_at_us) AS at FROM {self.deadlines_table}")
            oldest = c.fetchone()["at"]
            c.execute(
                f"SELECT min(due_at_us) AS at FROM {self.deadlines_table} WHERE due_at_us > ?",
                (until,),
            )
            following = c.fetchone()["at"]
        return _due_from(counted, limit, oldest, following)

    def select_entries(self, after: int, limit: int) -> list[LogEntry]:
        rows = self._rows_after(_ENTRY_COLUMNS, after, limit)
        return [(row[0], row[1], row[2]) for row in rows]

    def select_stored(self, after: int, limit: int) -> list[StoredEntry]:
        rows = self._rows_after(_STORED_COLUMNS, after, limit)
        return [(row[0], _uuid_or_as_stored(row[1]), row[2], row[3], row[4]) for row in rows]

    def _rows_after(self, columns: str, after: int, limit: int) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {columns} FROM {self.events_table_name} "
                "WHERE notification_id > ? ORDER BY notification_id LIMIT ?",
                (after, limit),
            )
            return list(c.fetchall())


def _uuid_or_as_stored(value: Any) -> UUID:
    """A stored originator id; SQLite holds any value in any column, so one an
    attacker replaced is passed on as stored, for the log verifier to name."""
    try:
        return UUID(value)
    except (TypeError, ValueError, AttributeError):
        return value  # type: ignore[no-any-return]


# --- PostgreSQL ----------------------------------------------------------------


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock's key for a name, stable across releases;
    positive, so it reads back from ``pg_locks`` as it was given."""
    digest = hashlib.blake2b(f"trustledger {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def lock_schema_changes(cursor: Any, schema: str) -> None:
    """Take, for the rest of the cursor's transaction, the lock every process
    takes before it makes tables in a PostgreSQL schema: ``CREATE ... IF NOT
    EXISTS`` run by several processes at once (workers starting together)
    otherwise fails with "tuple concurrently updated"."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(f"tables {schema}"),))


# A connection that left the pool this recently is handed out again without
# a ping: a server gone in between costs one command a quick 503 (and the
# connection is discarded), where pinging at every checkout cost every
# command a round trip.
PING_SKIPPED_WITHIN_SECONDS = 1.0


class PingUnlessRecent:
    """The pool's checkout check: a connection is pinged as it leaves the pool
    unless it last left it less than ``window`` seconds ago."""

    def __init__(
        self,
        window: float = PING_SKIPPED_WITHIN_SECONDS,
        *,
        now: Callable[[], float] = time.monotonic,
        ping: Callable[[Any], None] = ConnectionPool.check_connection,
    ) -> None:
        self.window, self._now, self._ping = window, now, ping
        self._left_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, connection: Any) -> None:
        now = self._now()
        with self._lock:
            left_at = self._left_at.get(connection)
        if left_at is None or now - left_at >= self.window:
            self._ping(connection)  # raises for a dead connection: the pool replaces it
        with self._lock:
            self._left_at[connection] = now


class LedgerPostgresFactory(PostgresFactory):
    """The event store's PostgreSQL factory, with libpq's target_session_attrs
    and a cheaper checkout check.

    The library's datastore connects by host and port alone (several, comma
    separated, libpq tries in turn); which of them to use after a failover,
    the promoted standby rather than a former primary, is libpq's
    ``target_session_attrs``, set on the pool's connection arguments before
    the pool opens. Its pre-ping pings every connection leaving the pool;
    ``PingUnlessRecent`` spares the ones in steady use.
    """

    TARGET_SESSION_ATTRS = "POSTGRES_TARGET_SESSION_ATTRS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        attrs = self.env.get(self.TARGET_SESSION_ATTRS)
        if attrs:
            kwargs = self.datastore.pool.kwargs
            if not isinstance(kwargs, dict):
                raise TypeError("the event store's pool takes its connection arguments as a dict")
            kwargs["target_session_attrs"] = attrs
        if self.datastore.pre_ping:
            # psycopg_pool keeps the check it was given here, and has no setter.
            self.datastore.pool._check = PingUnlessRecent()


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.idempotency_table = Identifier(f"{events_table_name}_idempotency")
        self.deadlines_table = Identifier(f"{events_table_name}_deadlines")
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                    "caller text NOT NULL, key text NOT NULL, command_hash text NOT NULL, "
                    "event_keys bytea NOT NULL, PRIMARY KEY (caller, key))"
                ).format(schema=schema, table=self.idempotency_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                    "originator_id uuid PRIMARY KEY, due_at_us bigint NOT NULL)"
                ).format(schema=schema, table=self.deadlines_table),
                SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (due_at_us)").format(
                    index=Identifier(f"{events_table_name}_deadlines_due"),
                    schema=schema,
                    table=self.deadlines_table,
                ),
            ]
        )
        self._schema = schema

    def _create_table(self, curs: Any) -> None:
        lock_schema_changes(curs, self.datastore.schema)
        super()._create_table(curs)

    def refresh_statistics(self) -> None:
        """Have PostgreSQL sample the events table again: the planner of a table
        that grew fast from empty plans it as empty (a sequential scan per read)
        until autovacuum gets to it."""
        statement = SQL("ANALYZE {schema}.{table}").format(
            schema=self._schema, table=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn:
            conn.execute(statement)

    # The library tries these reads ten times when the database cannot be
    # reached, each try waiting up to connect_timeout for a connection: a
    # minute's wait for a caller. The ledger tries once and fails fast; the
    # caller (or the runner's next poll) tries again.
    select_events = PostgresApplicationRecorder.select_events.__wrapped__
    select_notifications = PostgresApplicationRecorder.select_notifications.__wrapped__
    max_notification_id = PostgresApplicationRecorder.max_notification_id.__wrapped__

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's pipelined write, with three differences.

        The whole transaction is one round trip: BEGIN, the table lock, the
        notification, the events, the side rows and COMMIT are sent together
        and synced once (the library synced three or four times); each round
        trip waits for the database's process and then this thread to run
        again, which on a busy machine is most of a write's time.

        A failure (a lost race, a duplicate key) raises at the sync; the
        statements after it, COMMIT included, are skipped, so nothing of the
        transaction is kept. The library kept such a failure inside the
        pipeline, which left psycopg's prepared statements out of step with the
        server's: later unrelated writes on that pooled connection failed. The
        connection is closed, so the pool replaces it rather than reuse one
        left in a failed transaction. And one attempt only: a write that cannot
        reach the database fails at once, and the caller's retry with the same
        idempotency key is what makes it safe to try again.
        """
        with self.datastore.get_connection() as conn:
            if not conn.autocommit:
                raise RuntimeError("the event store's connections must be in autocommit mode")
            try:
                with conn.pipeline() as pipeline, conn.cursor() as curs:
                    # The pool's connections commit each statement on their own
                    # (autocommit): the transaction is opened and committed by
                    # statements in the same pipeline, so the whole write is one
                    # round trip to the server.
                    conn.execute(BEGIN)
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    conn.execute(COMMIT)
                    pipeline.sync()
                    return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            except Exception:
                conn.close()
                raise

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # The events go first (under the library's table lock); the side rows
        # use another cursor so the events' RETURNING rows stay readable.
        super()._insert_stored_events(curs, stored_events, **kwargs)
        idempotency, deadlines = _side_rows(kwargs)
        if not idempotency and not deadlines:
            return
        # One statement per side table for a whole group of commands.
        with curs.connection.cursor() as side:
            if idempotency:
                side.execute(
                    SQL(
                        "INSERT INTO {schema}.{table} "
                        "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %b::bytea[])"
                    ).format(schema=self._schema, table=self.idempotency_table),
                    (
                        [r.caller for r in idempotency],
                        [r.key for r in idempotency],
                        [r.command_hash for r in idempotency],
                        [_encode_keys(r.event_keys) for r in idempotency],
                    ),
                )
            self._write_deadlines(side, deadlines)

    def copy_events(
        self, rows: Sequence[StoredRow], deadlines: Sequence[DeadlineUpdate]
    ) -> list[int]:
        """The bulk path: COPY a batch under the table lock; its positions in order.

        With the table locked, the batch's positions are exactly those above
        the highest one before it, so they are read back instead of returned.
        """
        table = SQL("{schema}.{table}").format(
            schema=self._schema, table=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            curs.execute(
                SQL("SELECT COALESCE(MAX(notification_id), 0) AS top FROM {t}").format(t=table)
            )
            top = curs.fetchone()["top"]  # type: ignore[index]
            statement = SQL(
                "COPY {t} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
            ).format(t=table)
            with curs.copy(statement) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)
            self._notify_channel(curs)
            self._write_deadlines(curs, deadlines)
            return self._copied_positions(curs, table, top, len(rows))

    @staticmethod
    def _copied_positions(curs: Any, table: Composable, top: int, count: int) -> list[int]:
        """The positions a COPY under the table lock took above ``top``, in row order.

        Only this transaction can have taken positions above ``top``; when the
        highest is now ``top + count`` they are every number in between, which
        one index lookup tells. Reading back each row cost a 1M-event import
        about a second. After a gap in the sequence (a refused batch) the rows
        are read back.
        """
        curs.execute(SQL("SELECT MAX(notification_id) AS last FROM {t}").format(t=table))
        if curs.fetchone()["last"] == top + count:
            return list(range(top + 1, top + count + 1))
        curs.execute(
            SQL(
                "SELECT notification_id FROM {t} WHERE notification_id > %s ORDER BY notification_id"
            ).format(t=table),
            (top,),
        )
        return [int(row["notification_id"]) for row in curs.fetchall()]

    def _write_deadlines(self, curs: Any, deadlines: Sequence[DeadlineUpdate]) -> None:
        latest = {u.originator_id: u.due_at for u in deadlines}  # one row per trade
        removed = [oid for oid, due_at in latest.items() if due_at is None]
        due = [(oid, to_micros(due_at)) for oid, due_at in latest.items() if due_at is not None]
        if removed:
            curs.execute(
                SQL("DELETE FROM {schema}.{table} WHERE originator_id = ANY(%s)").format(
                    schema=self._schema, table=self.deadlines_table
                ),
                (removed,),
            )
        if due:
            curs.execute(
                SQL(
                    "INSERT INTO {schema}.{table} SELECT * FROM unnest(%s::uuid[], %s::bigint[]) "
                    "ON CONFLICT (originator_id) DO UPDATE SET due_at_us = EXCLUDED.due_at_us"
                ).format(schema=self._schema, table=self.deadlines_table),
                ([oid for oid, _ in due], [at for _, at in due]),
            )

    def find_idempotency(self, caller: str, key: str) -> IdempotencyRecord | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT command_hash, event_keys FROM {schema}.{table} "
                    "WHERE caller = %s AND key = %s"
                ).format(schema=self._schema, table=self.idempotency_table),
                (caller, key),
            )
            row = curs.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            caller, key, row["command_hash"], _decode_keys(bytes(row["event_keys"]))
        )

    def positions_of(self, event_keys: Sequence[EventKey]) -> list[int]:
        ids = [oid for oid, _ in event_keys]
        versions = [version for _, version in event_keys]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT k.ord, e.notification_id FROM "
                    "unnest(%s::uuid[], %s::bigint[]) WITH ORDINALITY AS k(oid, ver, ord) "
                    "JOIN {schema}.{table} e "
                    "ON e.originator_id = k.oid AND e.originator_version = k.ver "
                    "ORDER BY k.ord"
                ).format(schema=self._schema, table=Identifier(self.events_table_name)),
                (ids, versions),
            )
            return [int(row["notification_id"]) for row in curs.fetchall()]

    def due_aggregates(self, until: datetime, limit: int) -> list[UUID]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT originator_id FROM {schema}.{table} "
                    "WHERE due_at_us <= %s ORDER BY due_at_us LIMIT %s"
                ).format(schema=self._schema, table=self.deadlines_table),
                (to_micros(until), limit),
            )
            return [row["originator_id"] for row in curs.fetchall()]

    def deadlines_due(self, now: datetime, limit: int) -> DeadlinesDue:
        until = to_micros(now)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            # Index reads only: counting stops one past the limit.
            curs.execute(
                SQL(
                    "SELECT (SELECT count(*) FROM (SELECT 1 FROM {schema}.{table} "
                    "WHERE due_at_us <= %s LIMIT %s) AS due) AS counted, "
                    "(SELECT min(due_at_us) FROM {schema}.{table}) AS oldest, "
                    "(SELECT min(due_at_us) FROM {schema}.{table} WHERE due_at_us > %s) "
                    "AS following"
                ).format(schema=self._schema, table=self.deadlines_table),
                (until, limit + 1, until),
            )
            row = curs.fetchone()
        if row is None:
            raise RuntimeError("a query of three aggregates returned no row")
        return _due_from(int(row["counted"]), limit, row["oldest"], row["following"])

    def select_entries(self, after: int, limit: int) -> list[LogEntry]:
        return self._rows_after(_ENTRY_COLUMNS, after, limit)

    def select_stored(self, after: int, limit: int) -> list[StoredEntry]:
        return self._rows_after(_STORED_COLUMNS, after, limit)

    def _rows_after(self, columns: str, after: int, limit: int) -> list[Any]:
        # Plain tuples and binary results (uuid, bytea decoded by psycopg):
        # a rebuild reads millions of rows.
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(
                SQL(
                    "SELECT " + columns + " FROM {schema}.{table} "
                    "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
                ).format(schema=self._schema, table=Identifier(self.events_table_name)),
                (after, limit),
                prepare=True,
            )
            return curs.fetchall()
