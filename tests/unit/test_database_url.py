"""One reader of the database URL: the ledger's store and the projections beside it
find the same place, and refuse the same URLs with the same error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from ledger.app import LedgerApp
from ledger.database import (
    DatabaseUrl,
    DatabaseUrlError,
    PoolOptions,
    parse_database_url,
    persistence_env,
)
from ledger.store import LedgerPostgresFactory, PostgresLedgerRecorder
from projections.connections import place_of, postgres_pool
from projections.log_tree import open_log_tree
from projections.views import open_view

POSTGRES = (
    "postgresql://ann:s%40cret@db.example:6543/trust?schema=shop_1&pool_size=4&max_overflow=2"
)


def test_memory_and_sqlite_name_their_place() -> None:
    assert parse_database_url("memory:") == DatabaseUrl(kind="memory")
    assert parse_database_url("sqlite:///trustledger.db") == DatabaseUrl(
        kind="sqlite", path="trustledger.db"
    )
    assert parse_database_url("sqlite:////var/lib/tl%20x.db").path == "/var/lib/tl x.db"


def test_a_postgresql_url_is_taken_apart_and_typed() -> None:
    place = parse_database_url(POSTGRES)
    assert place == DatabaseUrl(
        kind="postgresql",
        conninfo="postgresql://ann:s%40cret@db.example:6543/trust",
        host="db.example",
        port=6543,
        ports="6543",
        dbname="trust",
        user="ann",
        password="s@cret",
        schema="shop_1",
        pool=PoolOptions(size=4, max_overflow=2, connect_timeout_seconds=3),
    )
    short = parse_database_url("postgres://db.example/trust")
    assert (short.kind, short.conninfo, short.port, short.user, short.schema) == (
        "postgresql",
        "postgresql://db.example/trust",
        5432,
        "postgres",
        "public",
    )


def test_the_store_and_the_projections_find_the_same_place() -> None:
    assert place_of(POSTGRES) == parse_database_url(POSTGRES)
    env = persistence_env(POSTGRES)
    assert {k: v for k, v in env.items() if k != "APPLICATION_RECORDER_TOPIC"} == {
        "PERSISTENCE_MODULE": get_topic(LedgerPostgresFactory),
        "POSTGRES_DBNAME": "trust",
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "6543",
        "POSTGRES_TARGET_SESSION_ATTRS": "",
        "POSTGRES_USER": "ann",
        "POSTGRES_PASSWORD": "s@cret",
        "POSTGRES_SCHEMA": "shop_1",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "2",
        "POSTGRES_CONNECT_TIMEOUT": "3",
        "POSTGRES_LOCK_TIMEOUT": "3",
        "POSTGRES_PRE_PING": "y",
    }
    for url in ("sqlite:///a.db", "sqlite:relative.db"):
        assert persistence_env(url)["SQLITE_DBNAME"] == place_of(url).path
    assert place_of("sqlite:relative.db").path == "relative.db"


def test_several_hosts_are_tried_in_turn_and_the_session_kind_chosen() -> None:
    url = "postgresql://ann@db1:6543,db2/trust?schema=s&target_session_attrs=read-write"
    place = parse_database_url(url)
    assert (place.host, place.port, place.ports) == ("db1,db2", 6543, "6543,5432")
    assert place.conninfo == ("postgresql://ann@db1:6543,db2/trust?target_session_attrs=read-write")
    env = persistence_env(url)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db1,db2", "6543,5432")
    assert env["POSTGRES_TARGET_SESSION_ATTRS"] == "read-write"


def test_the_event_store_connects_with_the_session_kind_asked(postgres_url: str) -> None:
    url = f"{postgres_url}&target_session_attrs=read-write"
    app = LedgerApp(url)
    try:
        recorder = app.recorder
        assert isinstance(recorder, PostgresLedgerRecorder)
        pool = recorder.datastore.pool
        assert isinstance(pool.kwargs, dict)
        assert pool.kwargs["target_session_attrs"] == "read-write"
        assert app.recorder.max_notification_id() in (None, 0)  # it connects
    finally:
        app.close()


REFUSED = [
    "mysql://root@db.example/trust",  # an unknown scheme is not PostgreSQL
    "memory",
    "",
    "sqlite://",
    "postgresql://db.example",  # no database
    "postgresql:///trust",  # no host
    "postgresql://db.example:port/trust",
    "postgresql://db.example:99999/trust",
    "postgresql://db.example/trust?pool_size=many",
    "postgresql://db.example/trust?pool_size=0",
    "postgresql://db.example/trust?max_overflow=-1",
    "postgresql://db.example/trust?connect_timeout=1.5",
    "postgresql://db.example/trust?pool_size=%C2%B2",  # a superscript two is no whole number
    "postgresql://db1,db2:x/trust",
    "postgresql://db1,/trust",
    "postgresql://db.example/trust?target_session_attrs=writable",
]
READERS: dict[str, Callable[[str], object]] = {
    "parse": parse_database_url,
    "store": persistence_env,
    "projections": place_of,
    "view": open_view,
    "log tree": open_log_tree,
}


@pytest.mark.parametrize("url", REFUSED)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_bad_url_is_refused_alike_everywhere(url: str, reader: str) -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        READERS[reader](url)
    assert repr(url) in str(refused.value)


def test_projections_open_beside_a_sqlite_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    view = open_view(url)
    tree = open_log_tree(url)
    try:
        assert (tmp_path / "ledger.db").exists()
    finally:
        view.close()
        tree.close()


def test_the_timeouts_are_url_options() -> None:
    url = f"{POSTGRES}&connect_timeout=2&lock_timeout=4&statement_timeout=9"
    place = parse_database_url(url)
    assert (
        place.pool.connect_timeout_seconds,
        place.pool.lock_timeout_seconds,
        place.pool.statement_timeout_seconds,
    ) == (2, 4, 9)
    env = persistence_env(url)
    assert (env["POSTGRES_CONNECT_TIMEOUT"], env["POSTGRES_LOCK_TIMEOUT"]) == ("2", "4")
    with pytest.raises(DatabaseUrlError, match="statement_timeout"):
        parse_database_url(f"{POSTGRES}&statement_timeout=0")


@pytest.mark.postgres
def test_a_projections_connection_carries_its_statement_timeout(postgres_server: str) -> None:
    with (
        postgres_pool(postgres_server, max_size=1, statement_seconds=7) as pool,
        pool.connection() as conn,
    ):
        row = conn.execute("SHOW statement_timeout").fetchone()
    assert row is not None and row[0] == "7s"
