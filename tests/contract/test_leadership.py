"""The follower lock on PostgreSQL: one holder, takeover when it goes, and
writes of a follower that lost it refused (fencing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from ledger.clock import FixedClock
from projections.connections import place_of
from projections.follower import Follower, FollowerSettings
from projections.leadership import Leadership, LeadershipLost, lock_key
from projections.log_tree import open_log_tree
from projections.views import open_view
from tests.support import T0, Market

pytestmark = pytest.mark.postgres


@pytest.fixture
def pair(postgres_url: str) -> Iterator[tuple[Leadership, Leadership]]:
    first, second = Leadership(postgres_url), Leadership(postgres_url)
    try:
        yield first, second
    finally:
        first.release()
        second.release()


def _end_session(postgres_url: str, leadership: Leadership) -> None:
    """What a dead process or a cut connection leaves: the server ends its session."""
    conn = leadership._conn
    assert conn is not None
    pid = conn.info.backend_pid
    with psycopg.connect(place_of(postgres_url).conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the session did not end")


def test_one_follower_holds_the_lock_until_it_lets_go(
    pair: tuple[Leadership, Leadership],
) -> None:
    first, second = pair
    assert first.try_take()
    assert first.held()
    assert not second.try_take()
    assert not second.held()
    assert first.try_take()  # asking again while holding it keeps it
    term = first.term
    first.release()
    assert not first.held()
    assert second.try_take()
    assert second.term == (term or 0) + 1


def test_the_lock_is_free_once_the_holders_session_ends(
    postgres_url: str, pair: tuple[Leadership, Leadership]
) -> None:
    first, second = pair
    assert first.try_take()
    _end_session(postgres_url, first)
    assert second.try_take()
    assert not first.held()  # its connection is gone: it knows it lost the lock


def test_a_follower_that_lost_the_lock_cannot_write(
    postgres_url: str, pair: tuple[Leadership, Leadership]
) -> None:
    first, second = pair
    assert first.try_take()
    with psycopg.connect(place_of(postgres_url).conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {place_of(postgres_url).schema}")
        with conn.transaction(), conn.cursor() as cursor:
            first.fence(cursor)  # the holder's write goes through
        _end_session(postgres_url, first)
        assert second.try_take()
        # The first still believes it holds the lock (it has not looked):
        # its next write is refused all the same.
        with pytest.raises(LeadershipLost), conn.transaction(), conn.cursor() as cursor:
            first.fence(cursor)
        with conn.transaction(), conn.cursor() as cursor:
            second.fence(cursor)


def test_a_takeover_waits_for_the_write_in_flight(
    postgres_url: str, pair: tuple[Leadership, Leadership]
) -> None:
    """The successor's term is taken only once the old holder's open write
    has committed, so no write of the old term lands after it."""
    first, second = pair
    assert first.try_take()
    taken = threading.Event()
    with psycopg.connect(place_of(postgres_url).conninfo) as conn, conn.cursor() as cursor:
        cursor.execute(f"SET search_path TO {place_of(postgres_url).schema}")
        first.fence(cursor)  # a write in flight, holding the term row
        _end_session(postgres_url, first)

        def take() -> None:
            while not second.try_take():
                time.sleep(0.05)
            taken.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not taken.wait(1.0)  # the increment waits on the open write
        conn.commit()
        taker.join(timeout=10)
    assert taken.is_set()


def test_a_fenced_follower_folds_nothing_after_a_takeover(
    postgres_url: str, pair: tuple[Leadership, Leadership]
) -> None:
    first, second = pair
    market = Market.open(postgres_url)
    view, tree = open_view(postgres_url), open_log_tree(postgres_url)
    follower = Follower(
        market.app,
        view,
        tree,
        clock=FixedClock(T0),
        settings=FollowerSettings(deadline_worker=False),
        leadership=first,
    )
    try:
        assert first.try_take()
        market.members("buyer-1", "seller-1")
        follower.catch_up()
        folded = view.position()
        assert folded == market.log_size()
        market.succeeded_trade("T1")
        _end_session(postgres_url, first)
        assert second.try_take()
        with pytest.raises(LeadershipLost):
            follower.runner.run_batch()
        with pytest.raises(LeadershipLost):
            follower.tree_runner.catch_up()
        assert view.position() == folded
        assert tree.size == folded
    finally:
        view.close()
        tree.close()
        market.app.close()


def test_each_schema_has_its_own_lock() -> None:
    assert lock_key("a") != lock_key("b")
    assert lock_key("a") == lock_key("a")
    assert 0 < lock_key("a") < 2**63
