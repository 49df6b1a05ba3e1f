"""Where the log lives, chosen by one setting: ``TRUSTLEDGER_DATABASE_URL``.

- ``memory:`` — in process, gone on exit (tests, what-ifs);
- ``sqlite:///path/to/file.db`` — the embedded default, ``./trustledger.db``;
- ``postgresql://user[:password]@host[:port]/dbname[?schema=...&pool_size=...]``
  — production, through a psycopg connection pool.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.utils import get_topic

from ledger.store import PostgresLedgerRecorder, SQLiteLedgerRecorder

DATABASE_URL_SETTING = "TRUSTLEDGER_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///trustledger.db"
POSTGRES_POOL_SIZE_DEFAULT = 8
# With the pool size, 40 connections: as many as the HTTP worker threads (anyio default).
POSTGRES_MAX_OVERFLOW_DEFAULT = 32


class DatabaseUrlError(ValueError):
    pass


def database_url_from_environment() -> str:
    return os.environ.get(DATABASE_URL_SETTING) or DEFAULT_DATABASE_URL


def persistence_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    if url == "memory:":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise DatabaseUrlError(
                f"{url!r}: a sqlite URL names a file, e.g. sqlite:///trustledger.db"
            )
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteLedgerRecorder),
        }
    if parts.scheme in ("postgresql", "postgres"):
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise DatabaseUrlError(f"{url!r}: expected postgresql://user@host:port/dbname")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": query.get("schema", "public"),
            "POSTGRES_POOL_SIZE": query.get("pool_size", str(POSTGRES_POOL_SIZE_DEFAULT)),
            "POSTGRES_MAX_OVERFLOW": query.get("max_overflow", str(POSTGRES_MAX_OVERFLOW_DEFAULT)),
            "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresLedgerRecorder),
        }
    raise DatabaseUrlError(
        f"{url!r}: expected memory:, sqlite:///path or postgresql://user@host:port/db"
    )
