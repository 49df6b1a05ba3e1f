"""``kill -9`` of the server under 16 writers, again and again.

Each writer records trades as a platform service would: every command has
its own Idempotency-Key and is sent again, with that key, until it is
acknowledged, across the server's deaths and restarts. Afterwards no
acknowledged fact is missing, none is recorded twice, the log verifies
against its tree, and the view equals a fresh fold of the log.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2 as httpx
import msgspec

from api.auth import Role
from ledger.app import LedgerApp
from ledger.events import MemberRegistered, PaymentEscrowed, TradeCreated
from projections.log_tree import LogTreeRunner, open_log_tree
from projections.log_verifier import verify_store
from projections.marketplace import Marketplace
from projections.runner import Runner
from projections.views import open_view
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import ServerProcess, trade_body

WRITERS = 16
KILLS = 5
KILLS_LONG = 25
SELLERS = 4
RETRY_SECONDS_MAX = 120.0
T = "2026-01-05T09:00:00Z"


class Writers:
    """The writers' shared record: each acknowledged command and its positions."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.acknowledged: dict[str, list[int]] = {}
        self.failures: list[str] = []
        self.sent = self.errors_5xx = 0
        self.stop = threading.Event()

    def command(self, client: httpx.Client, key: str, path: str, body: dict[str, Any]) -> None:
        """Send until acknowledged; the server may die and come back meanwhile."""
        headers = {**self.server.headers(Role.SERVICE), "Idempotency-Key": key}
        deadline = time.monotonic() + RETRY_SECONDS_MAX
        while time.monotonic() < deadline:
            try:
                answer = client.post(path, json=body, headers=headers)
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down or was killed mid-answer
                continue
            finally:
                with self.lock:
                    self.sent += 1
            if answer.status_code >= 500 and answer.status_code != 503:
                with self.lock:
                    self.errors_5xx += 1
            if answer.status_code == 201:
                with self.lock:
                    self.acknowledged[key] = answer.json()["positions"]
                return
            if answer.status_code == 503 or (
                answer.status_code == 409 and answer.json().get("retryable")
            ):
                time.sleep(0.1)
                continue
            with self.lock:
                self.failures.append(f"{key}: {answer.status_code} {answer.text[:160]}")
            return
        with self.lock:
            self.failures.append(f"{key}: never acknowledged")

    def write(self, writer: int) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=10) as client:
            buyer = f"b{writer}"
            self.command(client, buyer, "/v1/members", {"member_id": buyer, "occurred_at": T})
            n = 0
            while not self.stop.is_set():
                trade = f"T{writer}-{n}"
                body = trade_body(trade, T, buyer=buyer, seller=f"s{n % SELLERS}")
                self.command(client, trade, "/v1/trades", body)
                self.command(
                    client, f"{trade}-pay", f"/v1/trades/{trade}/payment", {"occurred_at": T}
                )
                n += 1


def test_killed_again_and_again_nothing_acknowledged_is_lost_or_doubled(
    stored_url: str, tmp_path: Path, chaos: ChaosRun
) -> None:
    kills = int(chaos.scaled(KILLS, KILLS_LONG))
    server = ServerProcess(stored_url, tmp_path)
    server.start()
    writers = Writers(server)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for s in range(SELLERS):
                writers.command(
                    client, f"s{s}", "/v1/members", {"member_id": f"s{s}", "occurred_at": T}
                )
        threads = [threading.Thread(target=writers.write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        chance = random.Random(7)
        for _ in range(kills):
            time.sleep(chance.uniform(0.5, 2.0))
            server.kill()
            time.sleep(chance.uniform(0.0, 0.5))
            server.start()
        time.sleep(1.0)
        writers.stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_SECONDS_MAX + 30)
    finally:
        server.stop()

    lost, doubled = _check_log(stored_url, writers.acknowledged)
    chaos.record(
        requests=writers.sent,
        faults=f"{kills} x kill -9 under {WRITERS} writers",
        acknowledged=len(writers.acknowledged),
        lost=lost,
        doubled=doubled,
        errors_5xx=writers.errors_5xx,
    )
    assert writers.failures == []
    assert (lost, doubled, writers.errors_5xx) == (0, 0, 0)
    trades = [key for key in writers.acknowledged if key.startswith("T") and "-pay" not in key]
    assert len(trades) > WRITERS  # the writers got work done between the kills


def _check_log(url: str, acknowledged: dict[str, list[int]]) -> tuple[int, int]:
    """Acknowledged commands missing from the log, and facts recorded twice; and
    the log must verify against its tree and fold into the view the server kept."""
    app = LedgerApp(url)
    try:
        events = {n.id: app.decode(n) for n in app.iter_log()}
        facts = Counter[str]()
        for event in events.values():
            if isinstance(event, MemberRegistered):
                facts[event.member_id] += 1
            elif isinstance(event, TradeCreated):
                facts[event.trade_id] += 1
            elif isinstance(event, PaymentEscrowed):
                facts[f"{event.trade_id}-pay"] += 1
        doubled = sum(1 for count in facts.values() if count > 1)
        lost = sum(
            1
            for key, positions in acknowledged.items()
            if facts[key] != 1 or not all(p in events for p in positions)
        )

        tree = open_log_tree(url)
        try:
            LogTreeRunner(app, tree).catch_up()
            report = verify_store(app, tree, heads=[], verifier=None)
        finally:
            tree.close()
        assert report.ok and report.pending == 0, report.problems

        view = open_view(url)
        try:
            Runner(app, view).catch_up()
            fold = Marketplace()
            for position, event in sorted(events.items()):
                fold.apply(event, position)
            for member in fold.members:
                assert msgspec.to_builtins(view.file(member)) == msgspec.to_builtins(
                    fold.file(member)
                ), member
        finally:
            view.close()
    finally:
        app.close()
    return lost, doubled
