"""``trustledger rebuild`` while a server answers readers and takes appends.

The server must answer every read 200 before, during and after the switch
to the rebuilt version, move its reads and its folding to that version by
itself, and keep folding new appends into it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx

from api.auth import Role
from ledger.app import LedgerApp
from ledger.clock import FixedClock
from tests.chaos.conftest import ChaosRun
from tests.chaos.support import ServerProcess
from tests.support import DAY, T0, Market

TRADES = 150
READERS = 4
DROP_AFTER_SECONDS = 3
READS = (
    "/v1/members/seller-1/credit",
    "/v1/sellers/seller-1/dsr",
    "/v1/sellers/seller-1/penalty",
    "/v1/buyers/buyer-1/history",
)


def test_a_server_answers_throughout_a_rebuild_and_follows_the_switch(
    stored_url: str, tmp_path: Path, chaos: ChaosRun
) -> None:
    clock = FixedClock(T0 + 30 * DAY)
    market = Market(LedgerApp(stored_url, clock=clock), clock)
    market.members("buyer-1", "seller-1")
    for i in range(TRADES):
        market.succeeded_trade(f"T{i}", register=False)
        market.rate(f"T{i}")
    market.app.close()

    with ServerProcess(stored_url, tmp_path) as server:
        statuses: Counter[int] = Counter()
        wrong: list[str] = []
        stop = threading.Event()

        def read() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                while not stop.is_set():
                    for path in READS:
                        answer = client.get(path, headers=server.headers(Role.READER))
                        statuses[answer.status_code] += 1
                        if answer.status_code != 200:
                            wrong.append(f"{path}: {answer.status_code} {answer.text[:160]}")

        readers = [threading.Thread(target=read) for _ in range(READERS)]
        for thread in readers:
            thread.start()
        rebuild = subprocess.run(
            [
                *(sys.executable, "-m", "tools.cli", "--database-url", stored_url, "rebuild"),
                *("--batch-events", "50", "--drop-after", str(DROP_AFTER_SECONDS)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        assert "readers switched to version 2" in rebuild.stdout
        appended = httpx.post(
            f"{server.base_url}/v1/members",
            json={"member_id": "after-the-switch", "occurred_at": "2026-01-05T09:00:00Z"},
            headers={**server.headers(Role.SERVICE), "Idempotency-Key": "after"},
        )
        assert appended.status_code == 201
        position = appended.json()["positions"][-1]
        time.sleep(2)
        stop.set()
        for thread in readers:
            thread.join(timeout=60)

        chaos.record(
            requests=sum(statuses.values()),
            faults="trustledger rebuild and the switch of view versions",
            not_200=len(wrong),
            errors_5xx=sum(n for code, n in statuses.items() if code >= 500),
        )
        assert wrong == []
        assert statuses[200] > len(READS) * READERS
        ready = httpx.get(f"{server.base_url}/readyz", timeout=10).json()
        assert ready["view_version"] == 2
        credit = httpx.get(
            f"{server.base_url}/v1/members/after-the-switch/credit?min_position={position}",
            headers=server.headers(Role.READER),
        )
        assert credit.status_code == 200  # folded into the new version
