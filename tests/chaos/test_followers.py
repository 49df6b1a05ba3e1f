"""Two ``trustledger follow`` processes: one works, the other stands by and
takes over when the first is killed with SIGKILL, folding nothing twice and
firing no deadline twice."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import msgspec
import pytest

from api.auth import Role
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.events import ReceiptConfirmed
from projections.log_tree import open_log_tree
from projections.marketplace import Marketplace
from projections.views import open_view
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import FollowerProcesses, ServerProcess, trade_body
from tests.support import T0, Market

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


@pytest.mark.postgres
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


def test_the_penalty_feed_resumes_after_a_disconnect(tmp_path: Path) -> None:
    """A ranking engine reads the feed as it streams, is cut off, and resumes
    after the last change it applied: the next line is the next change."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with ServerProcess(url, tmp_path) as server:
        for member in ("b1", "s1"):
            server.append("/v1/members", {"member_id": member, "occurred_at": recent}, member)
        server.append("/v1/trades", trade_body("T1", recent, buyer="b1", seller="s1"), "T1")
        # An order placed moves no penalty; the payment is the seller's first fact that can.
        server.append("/v1/trades/T1/payment", {"occurred_at": recent}, "T1-pay")
        (first,) = _stream(server, after=0, lines=1)
        assert (first["feed_position"], first["seller_id"]) == (1, "s1")
        assert first["penalty"]["searchable"]

        violation = {
            "violation_id": "V1",
            "category": "serious",
            "points": 12,  # banned for 7 days from an hour ago
            "reason": "counterfeit listings",
            "occurred_at": recent,
        }
        position = server.append("/v1/sellers/s1/violations", violation, "V1")
        (second,) = _stream(server, after=first["feed_position"], lines=1)
        assert (second["feed_position"], second["cause"]) == (2, "fact")
        assert second["position"] >= position
        assert not second["penalty"]["searchable"]
        assert _stream(server, after=2, lines=None) == []  # nothing repeated after it


def _stream(server: ServerProcess, *, after: int, lines: int | None) -> list[dict[str, Any]]:
    """``lines`` lines of the following stream, then a disconnect (None: the
    changes there are now, without following)."""
    params = {"after": after, "follow": lines is not None}
    read: list[dict[str, Any]] = []
    with httpx.stream(
        "GET",
        f"{server.base_url}/v1/penalties/changes",
        params=params,
        headers=server.headers(Role.RANKING),
        timeout=SETTLE_SECONDS_MAX,
    ) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            read.append(json.loads(line))
            if lines is not None and len(read) == lines:
                break  # leaving the block closes the connection
    return read
