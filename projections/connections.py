"""Where a projection's tables live, and the SQLite connection they take turns on.

Every projection (the reputation view, the log tree) keeps its tables beside
the log named by the ledger's database URL: in the same SQLite file, or in the
same PostgreSQL schema.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from ledger.database import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
    POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
    DatabaseUrl,
    parse_database_url,
)
from ledger.store import PingUnlessRecent

# SQLite allows 32766 host parameters; stay far below it per IN (...) list.
SQL_IN_LIST_MAX = 500

K = TypeVar("K")

# A check a write runs in its own transaction, given its cursor, before it
# writes; it raises to refuse the write (``projections.leadership``).
Fence = Callable[[Any], None]


def place_of(database_url: str) -> DatabaseUrl:
    """Where a projection's tables live: beside the log, so in the place the
    ledger's own parser finds (an unknown scheme is its ``DatabaseUrlError``)."""
    return parse_database_url(database_url)


def postgres_pool(
    conninfo: str,
    *,
    max_size: int,
    wait_seconds: float = POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT,
    statement_seconds: int = POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT,
) -> ConnectionPool[psycopg.Connection[Any]]:
    """A projection's connections: each checked as it leaves the pool unless
    it left it within the last second, as the event store's are (one the
    server closed while it sat idle is replaced; one in steady use is not
    pinged before every transaction), a request that waits longer than
    ``wait_seconds`` for one fails instead of hanging through an outage, and
    no statement runs longer than ``statement_seconds``."""
    options = f"-c statement_timeout={statement_seconds * 1000}"
    return ConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "options": options},
        timeout=wait_seconds,
        check=PingUnlessRecent(),
        open=True,
    )


def chunks(keys: Iterable[K]) -> Iterator[list[K]]:
    """Keys in lists of at most ``SQL_IN_LIST_MAX``, for IN (...) lists."""
    chunk: list[K] = []
    for key in keys:
        chunk.append(key)
        if len(chunk) == SQL_IN_LIST_MAX:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class SQLiteConnection:
    """One connection serving a runner's thread and readers' threads: its
    transactions take turns."""

    def __init__(self, path: str) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Cursor]:
        # A read takes no write lock (BEGIN IMMEDIATE would).
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, statement: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One statement in its own (autocommit) transaction."""
        with self._lock:
            return self._db.execute(statement, parameters)

    def close(self) -> None:
        self._db.close()
