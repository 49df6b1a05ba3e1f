"""Key management on a running server: no restart needed.

A key revoked with ``trustledger keys revoke`` stops working within a few
seconds; a key added or rotated in starts working as quickly; an address that
keeps sending bad keys is slowed down with 429 and Retry-After.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from api.auth import Role
from api.rate_limits import FAILED_AUTH_LIMIT_DEFAULT
from tests.chaos.support import ServerProcess

EFFECT_SECONDS_MAX = 5.0


def test_revoked_and_rotated_keys_take_effect_without_a_restart(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path) as server:
        reader = server.keys[Role.READER]

        def status(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return httpx.get(f"{server.base_url}/v1/rulebooks", headers=headers).status_code

        def keys(*arguments: str) -> str:
            command = [sys.executable, "-m", "tools.cli", "keys", *arguments]
            command += ["--keys-file", str(server.keys_file)]
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout

        assert status(reader) == 200
        successor = keys("rotate", reader.split("_")[1], "--grace-hours", "0").strip()
        _within(EFFECT_SECONDS_MAX, lambda: status(reader) == 401 and status(successor) == 200)
        keys("revoke", successor.split("_")[1])
        _within(EFFECT_SECONDS_MAX, lambda: status(successor) == 401)
        added = keys("add", "--role", "reader").strip()
        _within(EFFECT_SECONDS_MAX, lambda: status(added) == 200)

        with httpx.Client(base_url=server.base_url) as client:
            bad = {"Authorization": "Bearer tl_forged_key"}
            answers, times = [], []
            for _ in range(40):
                answers.append(client.get("/v1/rulebooks", headers=bad))
                times.append(time.monotonic())
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {401, 429}
        # The failures above count too: at most a burst, then 429 but for the
        # tokens the bucket earns back while the refusals go on.
        first_refusal = statuses.index(429)
        assert 10 < first_refusal <= FAILED_AUTH_LIMIT_DEFAULT.burst
        earned = (times[-1] - times[first_refusal]) * FAILED_AUTH_LIMIT_DEFAULT.per_second
        assert statuses[first_refusal:].count(401) <= int(earned) + 1
        refused = [a for a in answers if a.status_code == 429]
        assert all(int(a.headers["retry-after"]) >= 1 for a in refused)


def _within(seconds: float, holds: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in effect within {seconds} s")
        time.sleep(0.2)
