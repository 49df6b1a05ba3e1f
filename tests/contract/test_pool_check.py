"""The event store's pool, and each projection's, checks a connection as it
leaves the pool, unless the connection left it within the last second: a
connection in steady use is not pinged before every command, one the server
closed while it sat idle is."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import timedelta

import psycopg
import pytest

from ledger.store import PING_SKIPPED_WITHIN_SECONDS, PingUnlessRecent
from projections.connections import place_of, postgres_pool
from tests.support import T0, Market


class Connection:
    """Stands for a pooled connection: only its identity matters to the check."""


class Clock:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def _check() -> tuple[PingUnlessRecent, Clock, list[Connection]]:
    clock, pinged = Clock(), list[Connection]()
    return PingUnlessRecent(1.0, now=clock, ping=pinged.append), clock, pinged


def test_a_connection_not_seen_before_is_pinged() -> None:
    check, _, pinged = _check()
    conn = Connection()
    check(conn)
    assert pinged == [conn]


def test_a_connection_that_left_the_pool_within_the_window_is_not_pinged() -> None:
    check, clock, pinged = _check()
    conn = Connection()
    check(conn)
    clock.at += 0.9
    check(conn)
    clock.at += 0.9  # each checkout starts the window again
    check(conn)
    assert pinged == [conn]


def test_a_connection_idle_for_the_window_is_pinged_again() -> None:
    check, clock, pinged = _check()
    first, second = Connection(), Connection()
    check(first)
    check(second)
    clock.at += 1.0
    check(first)
    assert pinged == [first, second, first]


def test_a_failed_ping_raises_so_the_pool_replaces_the_connection() -> None:
    def refuse(conn: object) -> None:
        raise psycopg.OperationalError("server closed the connection")

    check = PingUnlessRecent(1.0, ping=refuse)
    with pytest.raises(psycopg.OperationalError):
        check(Connection())


@pytest.mark.postgres
def test_connections_the_server_closed_while_idle_are_replaced(postgres_url: str) -> None:
    market = Market.open(postgres_url)
    try:
        market.trade()
        datastore = market.app.factory.datastore  # type: ignore[attr-defined]
        with ExitStack() as held:  # the pool's connections, all at once
            pids = [
                held.enter_context(datastore.get_connection()).info.backend_pid for _ in range(4)
            ]
        with psycopg.connect(place_of(postgres_url).conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        time.sleep(PING_SKIPPED_WITHIN_SECONDS + 0.1)
        # One pooled connection is dead: pinged as it leaves the pool, found
        # dead and replaced (psycopg_pool waits a second before the next try:
        # a whole pool of dead connections costs the first caller a 503).
        for i in range(8):
            market.trade(f"T{i + 2}", at=T0 + timedelta(hours=2))
    finally:
        market.app.close()


@pytest.mark.postgres
def test_a_projections_connections_the_server_closed_while_idle_are_replaced(
    postgres_url: str,
) -> None:
    pool = postgres_pool(place_of(postgres_url).conninfo, max_size=4)
    try:
        with ExitStack() as held:  # the pool's connections, all at once
            pids = [held.enter_context(pool.connection()).info.backend_pid for _ in range(4)]
        with pool.connection() as steady:  # in steady use: not pinged again
            assert steady.info.backend_pid in pids
        with psycopg.connect(place_of(postgres_url).conninfo, autocommit=True) as admin:
            for pid in pids[:2]:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(PING_SKIPPED_WITHIN_SECONDS + 0.1)
        for _ in range(8):
            with pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()
