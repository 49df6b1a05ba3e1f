"""PostgreSQL goes away under load: a fast restart, then 20 seconds down.

Writers append through a real server, each retrying a command with its own
Idempotency-Key until it is acknowledged, as a platform service would;
readers ask for penalties. Every answer must be a 2xx or a 503 problem+json
with Retry-After, each within the pool's wait plus a margin; the server must
come back by itself; and the log must end holding each command's facts once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pytest

from api.auth import Role
from ledger.app import LedgerApp
from ledger.events import MemberRegistered
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import OwnCluster, ServerProcess

WRITERS = 8
READERS = 2
DOWN_SECONDS = 20.0
DOWN_SECONDS_LONG = 60.0
CONNECT_TIMEOUT_SECONDS = 2
# An answer may take the pool's wait for a connection, plus this much.
ANSWER_MARGIN_SECONDS = 3.0
RECOVERY_SECONDS_MAX = 30.0
T0 = "2026-01-05T09:00:00Z"

pytestmark = pytest.mark.postgres


@dataclass
class Tally:
    """Every answer the clients got, by kind, and the slowest."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    slowest: float = 0.0
    acknowledged: dict[str, list[int]] = field(default_factory=dict)

    def answer(self, response: httpx.Response, seconds: float) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            self.slowest = max(self.slowest, seconds)
            if response.status_code < 300:
                return
            problem = response.headers.get("content-type") == "application/problem+json"
            if response.status_code != 503 or not problem or "retry-after" not in response.headers:
                self.bad.append(f"{response.status_code} {response.text[:200]}")

    def failed(self, error: Exception) -> None:
        with self.lock:
            self.bad.append(f"no answer: {type(error).__name__} {error}")


def test_clients_see_only_success_or_a_quick_503_and_nothing_is_lost(
    tmp_path: Path, chaos: ChaosRun
) -> None:
    down_seconds = chaos.scaled(DOWN_SECONDS, DOWN_SECONDS_LONG)
    with OwnCluster() as cluster:
        url = f"{cluster.url}?connect_timeout={CONNECT_TIMEOUT_SECONDS}&lock_timeout=2"
        with ServerProcess(url, tmp_path) as server:
            tally, stop = Tally(), threading.Event()
            writers = [
                threading.Thread(target=_write, args=(server, tally, stop, w))
                for w in range(WRITERS)
            ]
            readers = [
                threading.Thread(target=_read, args=(server, tally, stop)) for _ in range(READERS)
            ]
            for thread in [*writers, *readers]:
                thread.start()
            time.sleep(2)
            cluster.stop("fast")
            cluster.start()
            time.sleep(3)
            cluster.stop("immediate")
            time.sleep(down_seconds)
            cluster.start()
            _wait_until_serving(server)
            time.sleep(2)
            stop.set()
            for thread in [*writers, *readers]:
                thread.join(timeout=120)

        app = LedgerApp(url)
        try:
            registered = Counter(
                event.member_id
                for event in map(app.decode, app.iter_log())
                if isinstance(event, MemberRegistered)
            )
        finally:
            app.close()
        chaos.record(
            requests=sum(tally.statuses.values()),
            faults=f"restart -m fast, stop -m immediate for {down_seconds:g} s",
            answered_503=tally.statuses[503],
            other_errors=len(tally.bad),
            slowest_s=round(tally.slowest, 2),
            acknowledged=len(tally.acknowledged),
            lost=len(set(tally.acknowledged) - set(registered)),
            doubled=sum(1 for count in registered.values() if count > 1),
        )
        assert tally.bad == []
        assert tally.statuses[503] > 0, "the outage should have been seen"
        assert tally.slowest <= CONNECT_TIMEOUT_SECONDS + ANSWER_MARGIN_SECONDS
        assert set(registered) == set(tally.acknowledged)
        assert max(registered.values()) == 1, "a fact was written twice"


def _write(server: ServerProcess, tally: Tally, stop: threading.Event, writer: int) -> None:
    """Register members one after another, each until it is acknowledged."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        command = 0
        while not stop.is_set():
            member = f"w{writer}-m{command}"
            headers = {**server.headers(Role.SERVICE), "Idempotency-Key": member}
            while True:
                started = time.monotonic()
                try:
                    response = client.post(
                        "/v1/members",
                        json={"member_id": member, "occurred_at": T0},
                        headers=headers,
                    )
                except httpx.HTTPError as error:
                    tally.failed(error)
                    return
                tally.answer(response, time.monotonic() - started)
                if response.status_code == 201:
                    with tally.lock:
                        tally.acknowledged[member] = response.json()["positions"]
                    break
                if response.status_code != 503:
                    return
                time.sleep(float(response.headers.get("retry-after", "1")) / 4)
            command += 1


def _read(server: ServerProcess, tally: Tally, stop: threading.Event) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.post(
                    "/v1/penalties/batch",
                    json={"seller_ids": ["w0-m0", "w1-m0", "nobody"]},
                    headers=server.headers(Role.RANKING),
                )
            except httpx.HTTPError as error:
                tally.failed(error)
                return
            tally.answer(response, time.monotonic() - started)
            time.sleep(0.05)


def _wait_until_serving(server: ServerProcess) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS_MAX
    while time.monotonic() < deadline:
        ready = httpx.get(f"{server.base_url}/readyz", timeout=10)
        if ready.status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError("the server did not recover without a restart")
