"""Reads from a PostgreSQL hot standby: a primary and a standby of the test's
own (``pg_basebackup -R``), API workers reading the standby, the follower
writing the primary, and read-your-writes waiting for the standby's replay."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from api.auth import Role
from api.settings import READ_DATABASE_URL_SETTING
from ledger.app import LedgerApp
from ledger.events import TradeCreated
from projections.views import open_view
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import FollowerProcesses, OwnCluster, ServerProcess, trade_body

pytestmark = pytest.mark.postgres

T = "2026-03-02T09:00:00Z"


def test_queries_are_answered_by_the_standby_once_it_replayed_the_write(
    tmp_path: Path,
) -> None:
    with OwnCluster() as primary, OwnCluster(standby_of=primary) as standby:
        assert standby.execute("SELECT pg_is_in_recovery()") is True
        followers = FollowerProcesses(primary.url, tmp_path)
        server = ServerProcess(
            primary.url,
            tmp_path,
            "--workers",
            "1",
            env={READ_DATABASE_URL_SETTING: standby.url},
        )
        try:
            followers.start()
            server.start()
            for member in ("b1", "s1"):
                server.append("/v1/members", {"member_id": member, "occurred_at": T}, member)
            last = server.append("/v1/trades", trade_body("T1", T, buyer="b1", seller="s1"), "T1")
            answer = server.credit("s1", last)
            assert answer.status_code == 200, answer.text
            assert answer.json()["position"] >= last

            # The standby stops replaying: the follower folds the next
            # write on the primary, but the answer waits for the standby.
            standby.execute("SELECT pg_wal_replay_pause()")
            last = server.append("/v1/trades", trade_body("T2", T, buyer="b1", seller="s1"), "T2")
            behind = server.credit("s1", last)
            assert behind.status_code == 503, behind.text
            assert behind.json()["code"] == "view_behind"
            ready = httpx.get(f"{server.base_url}/readyz").json()
            assert ready["replica"]["received_not_replayed_bytes"] > 0
            assert ready["log_position"] >= last > ready["view_position"]

            standby.execute("SELECT pg_wal_replay_resume()")
            answer = server.credit("s1", last)
            assert answer.status_code == 200, answer.text
            assert answer.json()["position"] >= last
            ready = httpx.get(f"{server.base_url}/readyz").json()
            assert ready["replica"]["received_not_replayed_bytes"] == 0
        finally:
            server.stop()
            followers.stop()


class Writer:
    """Appends trades one after another until told to stop, retrying each with
    its Idempotency-Key through outages; keeps what was acknowledged."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.acknowledged: dict[str, list[int]] = {}
        self.retried = 0
        self.stop = threading.Event()

    def run(self) -> None:
        headers = self.server.headers(Role.SERVICE)
        with httpx.Client(base_url=self.server.base_url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                trade = f"T{n}"
                body = trade_body(trade, T, buyer="b1", seller="s1")
                self.acknowledged[trade] = self._append(
                    client, body, {**headers, "Idempotency-Key": trade}
                )
                n += 1

    def _append(
        self, client: httpx.Client, body: dict[str, object], headers: dict[str, str]
    ) -> list[int]:
        deadline = time.monotonic() + FAILOVER_SECONDS_MAX
        last = "no answer"  # what the last try got, for a failure to say
        while time.monotonic() < deadline:
            try:
                answer = client.post("/v1/trades", json=body, headers=headers)
            except httpx.HTTPError as error:
                answer, last = None, repr(error)
            if answer is not None and answer.status_code == 201:
                return [int(p) for p in answer.json()["positions"]]
            if answer is not None and answer.status_code not in (503, 409):
                raise AssertionError(f"{answer.status_code} {answer.text}")
            if answer is not None:
                last = f"{answer.status_code} {answer.text}"
            self.retried += 1
            time.sleep(0.1)
        raise AssertionError(
            f"{body['trade_id']} was not acknowledged through the failover; last: {last}"
        )

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + FAILOVER_SECONDS_MAX
        while len(self.acknowledged) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} appends acknowledged")
            time.sleep(0.05)


FAILOVER_SECONDS_MAX = 60.0


@pytest.mark.parametrize("synchronous", [True, False], ids=["synchronous", "asynchronous"])
def test_workers_and_the_follower_carry_on_against_the_promoted_standby(
    synchronous: bool, tmp_path: Path, chaos: ChaosRun
) -> None:
    """Synchronous replication: no acknowledged append is lost. Without it,
    what the primary acknowledged but had not streamed is lost: counted."""
    settings = ("synchronous_standby_names='*'", "synchronous_commit=on") if synchronous else ()
    with OwnCluster(*settings) as primary, OwnCluster(standby_of=primary) as standby:
        # libpq tries both hosts and takes the one that accepts writes.
        both = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
            "?target_session_attrs=read-write&connect_timeout=2&lock_timeout=2"
        )
        followers = FollowerProcesses(both, tmp_path)
        server = ServerProcess(both, tmp_path, "--workers", "2")
        writer = Writer(server)
        thread = threading.Thread(target=writer.run)
        try:
            followers.start()
            server.start()
            for member in ("b1", "s1"):
                server.append("/v1/members", {"member_id": member, "occurred_at": T}, member)
            thread.start()
            writer.wait_for(20)
            primary.stop("immediate")  # a crash: no shutdown checkpoint, sessions cut
            failed_at = len(writer.acknowledged)
            standby.promote()
            writer.wait_for(failed_at + 20)  # the workers write to the new primary
            writer.stop.set()
            thread.join(timeout=FAILOVER_SECONDS_MAX)
            lost, head = _lost(both, writer.acknowledged)
            if synchronous:
                assert lost == []
            _wait_folded(both, head)  # the follower took the lock there and folds
            answer = server.credit("s1", head)
            assert answer.status_code == 200, answer.text
            chaos.record(
                synchronous=synchronous,
                acknowledged=len(writer.acknowledged),
                lost=len(lost),
                retried=writer.retried,
            )
        finally:
            writer.stop.set()
            if thread.is_alive():
                thread.join(timeout=FAILOVER_SECONDS_MAX)
            server.stop()
            followers.stop()


def _lost(url: str, acknowledged: dict[str, list[int]]) -> tuple[list[str], int]:
    """The acknowledged trades the log does not hold, and the log's last position."""
    app = LedgerApp(url)
    try:
        stored = _trades_in_log(app)
        return [t for t in acknowledged if t not in stored], app.recorder.max_notification_id() or 0
    finally:
        app.close()


def _wait_folded(url: str, position: int) -> None:
    view = open_view(url)
    try:
        deadline = time.monotonic() + FAILOVER_SECONDS_MAX
        while view.position() < position:
            assert time.monotonic() < deadline, "the follower did not carry on"
            time.sleep(0.1)
    finally:
        view.close()


def _trades_in_log(app: LedgerApp) -> set[str]:
    return {
        event.trade_id
        for event in (app.decode(n) for n in app.iter_log())
        if isinstance(event, TradeCreated)
    }
