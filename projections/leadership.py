"""Which follower is active: the one process holding a PostgreSQL advisory lock.

Several ``trustledger follow`` processes may run against one database. Exactly
one folds the log into the views, hashes it into the log tree, signs tree heads
and fires deadlines; the others wait as hot standbys and try the lock every
``poll_seconds``. The lock belongs to a session: when the active process dies
(``kill -9``, a crash) its connection closes, PostgreSQL ends the session and
releases the lock, and the next standby to try takes it. A machine that
vanishes without closing its connection is noticed by TCP keepalives
(``KEEPALIVE_*``: about 4 seconds).

Fencing. Taking the lock increments a term kept in the database
(``trustledger_follower``); every write of the active follower first reads
that row ``FOR SHARE`` in its own transaction and refuses to go on unless the
term is still its own (``Leadership.fence``). A follower that lost the lock
without noticing (its connection cut, its process paused) therefore cannot
commit once its successor has taken over: the successor's increment waits for
the writes already holding the row, and every later write sees the new term.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg
from psycopg import sql

from ledger.database import POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT
from ledger.store import advisory_key
from projections.connections import place_of

log = logging.getLogger("trustledger")

POLL_SECONDS_DEFAULT = 1.0
# The server ends the session of a peer that stops answering after about
# idle + interval * count seconds; the client gives up on an unanswered
# write after TCP_USER_TIMEOUT_MS.
KEEPALIVE_IDLE_SECONDS = 2
KEEPALIVE_INTERVAL_SECONDS = 1
KEEPALIVE_COUNT = 2
TCP_USER_TIMEOUT_MS = 4_000
TERM_TABLE = "trustledger_follower"
APPLICATION_NAME = "trustledger follower"


class LeadershipLost(RuntimeError):
    """This follower is no longer the active one: its write is refused."""


def lock_key(schema: str) -> int:
    """The follower lock of a deployment: one per schema."""
    return advisory_key(f"follower {schema}")


class Leadership:
    """Takes, holds and checks the follower lock of one PostgreSQL database and schema."""

    def __init__(self, database_url: str) -> None:
        place = place_of(database_url)
        if place.kind != "postgresql":
            raise ValueError("followers are elected on PostgreSQL; SQLite runs one process")
        self._conninfo = place.conninfo
        self._schema = place.schema
        self.key = lock_key(place.schema)
        self._table = sql.SQL("{}.{}").format(
            sql.Identifier(place.schema), sql.Identifier(TERM_TABLE)
        )
        self._conn: psycopg.Connection[Any] | None = None
        self.term: int | None = None

    def try_take(self) -> bool:
        """Take the lock if nobody holds it; whether this follower is now the active one."""
        if self.term is not None:
            return self.held()
        conn = self._connection()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if row is None or not row[0]:
                return False
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} "
                    "(id integer PRIMARY KEY CHECK (id = 1), term bigint NOT NULL)"
                ).format(self._table)
            )
            found = conn.execute(
                sql.SQL(
                    "INSERT INTO {} VALUES (1, 1) "
                    "ON CONFLICT (id) DO UPDATE SET term = {}.term + 1 RETURNING term"
                ).format(self._table, self._table),
            ).fetchone()
        except psycopg.Error:
            self.release()
            raise
        if found is None:
            raise LeadershipLost("the follower term could not be taken")
        self.term = int(found[0])
        log.warning("this follower is active (term %d)", self.term)
        return True

    def held(self) -> bool:
        """Whether this session still holds the lock (False once its connection is gone)."""
        if self._conn is None or self.term is None:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
                (self.key >> 32, self.key & 0xFFFFFFFF),
            ).fetchone()
        except psycopg.Error:
            log.exception("the follower lock's connection failed: this follower stops")
            self.release()
            return False
        if row is None or not row[0]:
            self.release()
            return False
        return True

    def fence(self, cursor: psycopg.Cursor[Any]) -> None:
        """Refuse the write in ``cursor``'s transaction unless this follower's term is current."""
        if self.term is None:
            raise LeadershipLost("this follower is not the active one")
        cursor.execute(sql.SQL("SELECT term FROM {} WHERE id = 1 FOR SHARE").format(self._table))
        row = cursor.fetchone()
        if row is None or int(row[0]) != self.term:
            raise LeadershipLost(
                f"another follower took over (term {row[0] if row else None}, ours {self.term})"
            )

    def release(self) -> None:
        """Give the lock up: unlocked at once while the session still answers,
        then the session ended. (Ending it alone frees the lock only when the
        server has finished the session, a moment after the close returns: a
        standby asking right away would still find it taken.)"""
        held, self.term = self.term is not None, None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if held and not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # a broken session: the server frees its lock when it ends it
        finally:
            conn.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            keepalives = (
                f"-c tcp_keepalives_idle={KEEPALIVE_IDLE_SECONDS} "
                f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL_SECONDS} "
                f"-c tcp_keepalives_count={KEEPALIVE_COUNT}"
            )
            self._conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
                options=keepalives,
                keepalives=1,
                keepalives_idle=KEEPALIVE_IDLE_SECONDS,
                keepalives_interval=KEEPALIVE_INTERVAL_SECONDS,
                keepalives_count=KEEPALIVE_COUNT,
                tcp_user_timeout=TCP_USER_TIMEOUT_MS,
                # Operators (and tests) see which process holds the lock in pg_stat_activity.
                application_name=f"{APPLICATION_NAME} {os.getpid()}",
            )
        return self._conn
