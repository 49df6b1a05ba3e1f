"""Where the log lives, chosen by one setting: ``TRUSTLEDGER_DATABASE_URL``.

- ``memory:`` — in process, gone on exit (tests, what-ifs);
- ``sqlite:///path/to/file.db`` — the embedded default, ``./trustledger.db``;
- ``postgresql://user[:password]@host[:port]/dbname[?schema=...&pool_size=...]``
  — production, through a psycopg connection pool (options: ``schema``,
  ``pool_size``, ``max_overflow``, and in seconds ``connect_timeout``,
  ``lock_timeout`` and ``statement_timeout``). Several hosts
  (``host1:port1,host2:port2``) are tried in turn, as libpq does, and
  ``target_session_attrs`` (libpq's: ``read-write`` for a primary, ``standby``
  ...) chooses among them: after a failover, connections made anew find the
  promoted standby.

``parse_database_url`` is the one reader of such a URL: the ledger's store
and every projection beside it (``projections.connections.place_of``) take
their place from it, so a URL is refused the same way wherever it is used.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Literal
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import msgspec
import psycopg
from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from eventsourcing.utils import get_topic

from ledger.store import LedgerPostgresFactory, PostgresLedgerRecorder, SQLiteLedgerRecorder

DATABASE_URL_SETTING = "TRUSTLEDGER_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///trustledger.db"
POSTGRES_PORT_DEFAULT = 5432
POSTGRES_POOL_SIZE_DEFAULT = 8
# With the pool size, 40 connections: as many as the HTTP worker threads (anyio default).
POSTGRES_MAX_OVERFLOW_DEFAULT = 32
# How long a command or a query waits for a pooled connection before it fails
# (503 over HTTP), how long an append waits for the log's write lock, and how
# long any one statement may run: a caller hears within seconds that the
# database is away, instead of waiting out the outage.
POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT = 3
POSTGRES_LOCK_TIMEOUT_SECONDS_DEFAULT = 3
POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT = 60
MEMORY_URL = "memory:"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# libpq's choices of which of several hosts to use.
TARGET_SESSION_ATTRS = (
    "any",
    "read-write",
    "read-only",
    "primary",
    "standby",
    "prefer-standby",
)

DatabaseKind = Literal["memory", "sqlite", "postgresql"]

# What the stores raise when the database cannot be reached or did not answer
# in time (no connection within connect_timeout, a lock not had within
# lock_timeout, a server gone, a SQLite file locked past its timeout). The
# request may be tried again later (HTTP 503); an append is retried with its
# idempotency key, which answers the original positions if it did land.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    PersistenceOperationalError,
    PersistenceInterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)


class DatabaseUrlError(ValueError):
    pass


class PoolOptions(msgspec.Struct, frozen=True):
    """The PostgreSQL connection pool a URL asks for (``?pool_size=&max_overflow=``)."""

    size: int = POSTGRES_POOL_SIZE_DEFAULT
    max_overflow: int = POSTGRES_MAX_OVERFLOW_DEFAULT
    connect_timeout_seconds: int = POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT
    lock_timeout_seconds: int = POSTGRES_LOCK_TIMEOUT_SECONDS_DEFAULT
    statement_timeout_seconds: int = POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT


class DatabaseUrl(msgspec.Struct, frozen=True, kw_only=True):
    """A database URL taken apart and checked; which fields mean something depends on ``kind``."""

    kind: DatabaseKind
    path: str = ""  # sqlite: the file
    # postgresql: the URL as psycopg takes it: without TrustLedger's options,
    # with libpq's target_session_attrs if given.
    conninfo: str = ""
    host: str = ""  # several: comma-separated, as libpq takes them
    port: int = POSTGRES_PORT_DEFAULT  # the first host's
    ports: str = ""  # every host's, comma-separated
    target_session_attrs: str = ""
    dbname: str = ""
    user: str = "postgres"
    password: str = ""
    schema: str = "public"
    pool: PoolOptions = PoolOptions()


def database_url_from_environment() -> str:
    return os.environ.get(DATABASE_URL_SETTING) or DEFAULT_DATABASE_URL


def parse_database_url(url: str) -> DatabaseUrl:
    """The place a URL names; anything else is a ``DatabaseUrlError`` that quotes it."""
    if url == MEMORY_URL:
        return DatabaseUrl(kind="memory")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path.removeprefix("/"))
        if not path:
            raise DatabaseUrlError(
                f"{url!r}: a sqlite URL names a file, e.g. sqlite:///trustledger.db"
            )
        return DatabaseUrl(kind="sqlite", path=path)
    if parts.scheme in POSTGRES_SCHEMES:
        return _postgresql(url, parts)
    raise DatabaseUrlError(
        f"{url!r}: expected memory:, sqlite:///path or postgresql://user@host:port/db"
    )


def _hosts(url: str, parts: SplitResult) -> list[tuple[str, int]]:
    """Each host of the URL with its port (``host1:port1,host2:port2``)."""
    hosts = []
    for entry in parts.netloc.rpartition("@")[2].split(","):
        one = urlsplit(f"//{entry}")
        try:
            port = one.port or POSTGRES_PORT_DEFAULT
        except ValueError as error:  # not a number, or out of range
            raise DatabaseUrlError(f"{url!r}: {error}") from error
        if not one.hostname:
            raise DatabaseUrlError(f"{url!r}: expected postgresql://user@host:port/dbname")
        hosts.append((one.hostname, port))
    return hosts


def _postgresql(url: str, parts: SplitResult) -> DatabaseUrl:
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    dbname = parts.path.lstrip("/")
    hosts = _hosts(url, parts)
    if not dbname:
        raise DatabaseUrlError(f"{url!r}: expected postgresql://user@host:port/dbname")
    attrs = query.get("target_session_attrs", "")
    if attrs and attrs not in TARGET_SESSION_ATTRS:
        raise DatabaseUrlError(
            f"{url!r}: target_session_attrs is one of {', '.join(TARGET_SESSION_ATTRS)}"
        )
    conninfo = url.split("?", 1)[0].replace("postgres://", "postgresql://", 1)
    pool = PoolOptions(
        size=_count(url, query, "pool_size", POSTGRES_POOL_SIZE_DEFAULT, least=1),
        max_overflow=_count(url, query, "max_overflow", POSTGRES_MAX_OVERFLOW_DEFAULT),
        connect_timeout_seconds=_count(
            url, query, "connect_timeout", POSTGRES_CONNECT_TIMEOUT_SECONDS_DEFAULT, least=1
        ),
        lock_timeout_seconds=_count(
            url, query, "lock_timeout", POSTGRES_LOCK_TIMEOUT_SECONDS_DEFAULT, least=1
        ),
        statement_timeout_seconds=_count(
            url, query, "statement_timeout", POSTGRES_STATEMENT_TIMEOUT_SECONDS_DEFAULT, least=1
        ),
    )
    return DatabaseUrl(
        kind="postgresql",
        # psycopg reads the URL itself; the query holds TrustLedger's options,
        # and of libpq's only target_session_attrs.
        conninfo=f"{conninfo}?target_session_attrs={attrs}" if attrs else conninfo,
        host=",".join(host for host, _ in hosts),
        port=hosts[0][1],
        ports=",".join(str(port) for _, port in hosts),
        target_session_attrs=attrs,
        dbname=dbname,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=query.get("schema") or "public",
        pool=pool,
    )


def _count(url: str, query: dict[str, str], name: str, default: int, *, least: int = 0) -> int:
    """A whole-number option of the query, refused here rather than when the pool opens."""
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < least:
        raise DatabaseUrlError(f"{url!r}: {name} must be a whole number of at least {least}")
    return int(text)


def persistence_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    place = parse_database_url(url)
    if place.kind == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if place.kind == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": place.path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteLedgerRecorder),
        }
    return {
        "PERSISTENCE_MODULE": get_topic(LedgerPostgresFactory),
        "POSTGRES_DBNAME": place.dbname,
        "POSTGRES_HOST": place.host,
        "POSTGRES_PORT": place.ports,
        "POSTGRES_TARGET_SESSION_ATTRS": place.target_session_attrs,
        "POSTGRES_USER": place.user,
        "POSTGRES_PASSWORD": place.password,
        "POSTGRES_SCHEMA": place.schema,
        "POSTGRES_POOL_SIZE": str(place.pool.size),
        "POSTGRES_MAX_OVERFLOW": str(place.pool.max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": str(place.pool.connect_timeout_seconds),
        "POSTGRES_LOCK_TIMEOUT": str(place.pool.lock_timeout_seconds),
        # A connection is checked as it leaves the pool: one the server closed
        # (a restart, a failover) is replaced instead of failing a command.
        "POSTGRES_PRE_PING": "y",
        "APPLICATION_RECORDER_TOPIC": get_topic(PostgresLedgerRecorder),
    }
