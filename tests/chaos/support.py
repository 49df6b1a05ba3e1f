"""Real parts for the chaos suite: a PostgreSQL cluster of the test's own,
``trustledger serve`` and ``trustledger follow`` in child processes.

The cluster is made with ``initdb`` in a temporary directory and listens on a
port of its own, so a test may stop, restart or kill it without touching the
shared server. As root, the PostgreSQL programs run as the ``postgres`` user
(``initdb`` refuses root). Everything started is stopped and removed at exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2 as httpx
import psycopg

from api.auth import KeyRing, Role
from projections.connections import place_of
from projections.leadership import APPLICATION_NAME, lock_key

SERVER_START_SECONDS_MAX = 60.0
FOLLOWER_DEADLINE_INTERVAL_SECONDS = 0.5
CLUSTER_START_SECONDS_MAX = 60.0


def trade_body(
    trade_id: str,
    occurred_at: str,
    /,
    *,
    buyer: str = "buyer-1",
    seller: str = "seller-1",
    **changes: Any,
) -> dict[str, Any]:
    """The JSON of a new trade, as a platform service sends it."""
    body: dict[str, Any] = {
        "trade_id": trade_id,
        "buyer_id": buyer,
        "seller_id": seller,
        "item_id": "teapot",
        "amount_minor": 5_000,
        "currency": "CNY",
        "goods_kind": "physical",
        "shipping": "express",
        "occurred_at": occurred_at,
    }
    return {**body, **changes}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin(program: str) -> str:
    found = subprocess.run(
        ["pg_config", "--bindir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(found) / program)


class OwnCluster:
    """A PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self, *settings: str, standby_of: OwnCluster | None = None) -> None:
        """``settings``: server settings (``name=value``) it always starts with;
        ``standby_of``: a hot standby streaming from that cluster (a base backup
        of it, ``pg_basebackup -R``) instead of a new cluster."""
        self.port = free_port()
        self.settings = settings
        self.base = Path(tempfile.mkdtemp(prefix="trustledger-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        if standby_of is None:
            self._as_owner(
                postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
            )
        else:
            self._as_owner(
                postgres_bin("pg_basebackup"),
                *("-D", str(self.data), "-h", "127.0.0.1", "-p", str(standby_of.port)),
                *("-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast"),
            )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in self.settings)
        self._pg_ctl("start", "-w", "-t", str(int(CLUSTER_START_SECONDS_MAX)), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-w", "-m", mode)

    def promote(self) -> None:
        """A standby becomes a primary (it stops following and accepts writes)."""
        self._pg_ctl("promote", "-w")

    def execute(self, statement: str) -> Any:
        """One statement, autocommitted; its first row's first value, if any."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    def running(self) -> bool:
        status = subprocess.run(
            self._owner_command(postgres_bin("pg_ctl"), "status", "-D", str(self.data)),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> OwnCluster:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def _pg_ctl(self, *arguments: str) -> None:
        self._as_owner(
            postgres_bin("pg_ctl"), *arguments, "-D", str(self.data), "-l", str(self.log)
        )

    def _as_owner(self, *command: str) -> None:
        subprocess.run(self._owner_command(*command), check=True, capture_output=True)

    @staticmethod
    def _owner_command(*command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)


class FollowerProcesses:
    """``trustledger follow`` processes against one schema, each logging to its own file."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tools.cli", "--database-url", self.url, "follow"]
        command += ["--deadline-interval", str(FOLLOWER_DEADLINE_INTERVAL_SECONDS)]
        log = self.workdir / f"follower-{len(self.processes)}.log"
        with log.open("ab") as out:  # the child keeps its own copy
            process = subprocess.Popen(command, stdout=out, stderr=out, cwd=self.workdir)
        self.processes.append(process)
        return process

    def holder(self) -> int | None:
        """The pid of the process holding the follower lock, if one does."""
        place = place_of(self.url)
        key = lock_key(place.schema)
        with psycopg.connect(place.conninfo) as conn:
            row = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
                (key >> 32, key & 0xFFFFFFFF),
            ).fetchone()
        if row is None or not str(row[0]).startswith(APPLICATION_NAME):
            return None
        return int(str(row[0]).rsplit(" ", 1)[1])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


class ServerProcess:
    """``trustledger serve`` in a child process, with a key per role."""

    def __init__(
        self, database_url: str, workdir: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.extra = extra
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        ring = KeyRing([])
        self.keys = {role: ring.add(role) for role in Role}
        self.keys_file = workdir / "keys.json"
        ring.save(self.keys_file)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def append(self, path: str, body: dict[str, Any], key: str) -> int:
        """An append a platform service makes, acknowledged; its last position."""
        headers = {**self.headers(Role.SERVICE), "Idempotency-Key": key}
        answer = httpx.post(f"{self.base_url}{path}", json=body, headers=headers, timeout=30)
        if answer.status_code != 201:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text}")
        return int(answer.json()["positions"][-1])

    def credit(self, member_id: str, min_position: int) -> httpx.Response:
        """A member's credit as a reader asks for it, reading its own writes."""
        return httpx.get(
            f"{self.base_url}/v1/members/{member_id}/credit",
            params={"min_position": min_position},
            headers=self.headers(Role.READER),
            timeout=30,
        )

    def start(self) -> None:
        command = [sys.executable, "-m", "tools.cli", "--database-url", self.database_url]
        command += ["serve", "--port", str(self.port), "--keys-file", str(self.keys_file)]
        command += ["--no-deadline-worker", "--log-level", "warning", *self.extra]
        with (self.workdir / "server.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, cwd=self.workdir, env=self.env
            )
        deadline = time.monotonic() + SERVER_START_SECONDS_MAX
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start in time")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
