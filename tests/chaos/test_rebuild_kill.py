"""A rebuild killed with SIGKILL mid-way resumes where its last batch committed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from projections.marketplace import Marketplace
from projections.runner import Runner
from projections.views import open_view
from tests.support import DAY, T0, Market

TRADES = 250
KILL_AFTER_POSITION = 200


def test_a_killed_rebuild_resumes_and_matches_the_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    market = Market(LedgerApp(url, clock=FixedClock(T0 + 1000 * DAY)), FixedClock(T0 + 1000 * DAY))
    market.members("buyer-1", "seller-1")
    for i in range(TRADES):
        market.succeeded_trade(f"T{i}", register=False)
    total = market.app.recorder.max_notification_id() or 0
    first = open_view(url)
    Runner(market.app, first).catch_up()  # readers have version 1
    first.close()

    command = [
        sys.executable,
        "-m",
        "tools.cli",
        "--database-url",
        url,
        "rebuild",
        "--batch-events",
        "5",
        "--drop-after",
        "0",
    ]
    rebuild = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at = _kill_when_past(rebuild, tmp_path / "ledger.db", KILL_AFTER_POSITION)
    assert 0 < killed_at < total, "the rebuild should die mid-way"

    resumed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    assert "resuming the rebuild of version 2" in resumed.stderr
    assert f"readers switched to version 2 at position {total}" in resumed.stdout

    view = open_view(url)
    market_fold = Marketplace()
    for notification in market.app.iter_log():
        market_fold.apply(market.app.decode(notification), notification.id)
    for member in ("buyer-1", "seller-1"):
        assert msgspec.to_builtins(view.file(member)) == msgspec.to_builtins(
            market_fold.file(member)
        )
    view.close()
    market.app.close()


def _kill_when_past(process: subprocess.Popen[bytes], path: Path, position: int) -> int:
    deadline = time.monotonic() + 60
    db = sqlite3.connect(path, timeout=30)
    try:
        while time.monotonic() < deadline:
            try:
                row = db.execute("SELECT position FROM rv2_tracking WHERE id = 1").fetchone()
            except sqlite3.OperationalError:
                row = None
            if row and row[0] >= position:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                return int(
                    db.execute("SELECT position FROM rv2_tracking WHERE id = 1").fetchone()[0]
                )
            time.sleep(0.001)
        raise AssertionError("the rebuild never got going")
    finally:
        db.close()
