"""``serve --workers`` beside ``trustledger follow``: the workers only answer,
the follower folds, and a caller reads its own writes across processes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.chaos.support import FollowerProcesses, ServerProcess, trade_body

pytestmark = pytest.mark.postgres

T = "2026-03-02T09:00:00Z"
WORKERS = 2


def _workers(pid: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(child) for child in path.read_text().split()] if path.exists() else []
    return [child for child in children if b"spawn_main" in _command_line(child)]


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


APPENDS_COUNTED = 20
SCRAPES = 8


def _appends_counted(server: ServerProcess) -> int:
    """trustledger_appends_total as one scrape of /metrics (a new connection) reads it."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    line = next(x for x in text.splitlines() if x.startswith("trustledger_appends_total "))
    return int(float(line.split()[1]))


def test_workers_answer_while_the_follower_folds(postgres_url: str, tmp_path: Path) -> None:
    followers = FollowerProcesses(postgres_url, tmp_path)
    server = ServerProcess(postgres_url, tmp_path, "--workers", str(WORKERS))
    workers: list[int] = []
    try:
        follower = followers.start()
        server.start()
        assert server.process is not None
        workers = _workers(server.process.pid)
        assert len(workers) == WORKERS
        for member in ("b1", "s1"):
            server.append("/v1/members", {"member_id": member, "occurred_at": T}, member)
        last = server.append("/v1/trades", trade_body("T1", T, buyer="b1", seller="s1"), "T1")
        answer = server.credit("s1", last)  # the follower folds it; the worker waits for that
        assert answer.status_code == 200, answer.text
        assert answer.json()["position"] >= last
        # Appends land on either worker; /metrics, from either, counts them all.
        for n in range(APPENDS_COUNTED):
            server.append("/v1/members", {"member_id": f"m{n}", "occurred_at": T}, f"m{n}")
        counted = {_appends_counted(server) for _ in range(SCRAPES)}
        assert counted == {3 + APPENDS_COUNTED}

        follower.kill()  # nothing folds now: a read of a new write cannot be served
        follower.wait(timeout=30)
        last = server.append("/v1/trades", trade_body("T2", T, buyer="b1", seller="s1"), "T2")
        started = time.monotonic()
        behind = server.credit("s1", last)
        assert behind.status_code == 503
        assert behind.json()["code"] == "view_behind"
        assert behind.headers["Retry-After"] == "1"
        assert time.monotonic() - started >= 4.5  # it waited its 5 seconds first

        followers.start()
        answer = server.credit("s1", last)
        assert answer.status_code == 200, answer.text
        assert answer.json()["position"] >= last
    finally:
        server.stop()
        followers.stop()
        for pid in workers:  # a worker the server's stop did not end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_workers_need_postgresql(tmp_path: Path) -> None:
    from tools.cli import main  # noqa: PLC0415 - the CLI is what is tested

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with pytest.raises(SystemExit, match="--workers needs PostgreSQL"):
        main(["--database-url", url, "serve", "--workers", "2"])
    with pytest.raises(SystemExit, match="follow runs beside"):
        main(["--database-url", url, "follow"])
