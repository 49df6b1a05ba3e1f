"""Two ``trustledger follow`` processes: one works, the other stands by and
takes over when the first is killed with SIGKILL, folding nothing twice and
firing no deadline twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.events import ReceiptConfirmed
from projections.log_tree import open_log_tree
from projections.marketplace import Marketplace
from projections.views import open_view
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import FollowerProcesses
from tests.support import T0, Market

pytestmark = pytest.mark.postgres

TRADES_PER_ROUND = 15
# The default bound a standby takes over within (Settings: standby poll 1 s).
TAKEOVER_SECONDS_MAX = 5.0
SETTLE_SECONDS_MAX = 60.0


@pytest.fixture
def followers(postgres_url: str, tmp_path: Path) -> Iterator[FollowerProcesses]:
    started = FollowerProcesses(postgres_url, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def _wait(what: str, done: Callable[[], bool], seconds: float = SETTLE_SECONDS_MAX) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_killed_follower_is_replaced_and_nothing_is_done_twice(
    postgres_url: str, followers: FollowerProcesses, chaos: ChaosRun
) -> None:
    # Recorded now, so the followers' deadlines (on the system clock) are due.
    now = datetime.now(UTC).replace(microsecond=0)
    market = Market(LedgerApp(postgres_url, clock=FixedClock(now)), FixedClock(now))
    view, tree = open_view(postgres_url), open_log_tree(postgres_url)
    try:
        market.members("buyer-1", "seller-1", at=T0)
        first, second = followers.start(), followers.start()
        _wait("a follower takes the lock", lambda: followers.holder() is not None)
        active = first if followers.holder() == first.pid else second
        standby = second if active is first else first

        def shipped_round(start: int) -> None:
            for i in range(start, start + TRADES_PER_ROUND):
                market.shipped_trade(f"T{i}", register=False)

        def settled(trades: int) -> Callable[[], bool]:
            def check() -> bool:
                head = market.app.recorder.max_notification_id() or 0
                confirmed = _auto_confirmed(market.app)
                return len(confirmed) == trades and view.position() == head == tree.size

            return check

        shipped_round(0)
        _wait("the active follower folds and fires round 1", settled(TRADES_PER_ROUND))
        assert standby.poll() is None

        active.kill()
        active.wait(timeout=30)
        takeover = _wait(
            "the standby takes over",
            lambda: followers.holder() == standby.pid,
            2 * TAKEOVER_SECONDS_MAX,
        )
        assert takeover <= TAKEOVER_SECONDS_MAX

        shipped_round(TRADES_PER_ROUND)
        _wait("the new active follower folds and fires round 2", settled(2 * TRADES_PER_ROUND))

        confirmed = _auto_confirmed(market.app)
        assert set(confirmed) == {f"T{i}" for i in range(2 * TRADES_PER_ROUND)}
        assert max(confirmed.values()) == 1  # no deadline fired twice
        fold = Marketplace()
        for notification in market.app.iter_log():
            fold.apply(market.app.decode(notification), notification.id)
        for member in ("buyer-1", "seller-1"):  # nothing folded twice
            assert msgspec.to_builtins(view.file(member)) == msgspec.to_builtins(fold.file(member))
        chaos.record(takeover_seconds=round(takeover, 2))
    finally:
        view.close()
        tree.close()
        market.app.close()


def _auto_confirmed(app: LedgerApp) -> Counter[str]:
    return Counter(
        event.trade_id
        for event in (app.decode(n) for n in app.iter_log())
        if isinstance(event, ReceiptConfirmed) and event.by == "auto"
    )
