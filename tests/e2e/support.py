"""The service in process, called over HTTP with one API key per role: raw
through the Starlette test client, or through the typed client (``client``)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn
from fastapi.testclient import TestClient

from api.auth import KeyRing, Role
from api.main import create_app
from api.settings import Settings
from client import TrustLedger
from ledger.clock import FixedClock
from ledger.policy import DEFAULT_RULEBOOK
from ledger.tree_head import write_new_key
from tests.support import T0

LIVE_START_SECONDS = 30


class InProcess(httpx.BaseTransport):
    """Hands the typed client's requests to an app served by a test client.

    Through the test client's public ``send``, so the app runs in the test
    client's event loop, and closing the typed client leaves the test client
    open. Answers arrive whole: a followed stream would never end.
    """

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._client.send(request)


def in_process(client: TestClient, api_key: str) -> TrustLedger:
    """The typed client over the app in process, with one API key.

    Nothing is retried: a refusal is the test's to see, at once.
    """
    return TrustLedger(str(client.base_url), api_key, retries=0, transport=InProcess(client))


class Api:
    """The app in process with a key per role: ``client`` for raw HTTP (where
    HTTP itself is what a test checks) and a typed client per role (``service``,
    ``ranking``, ``reader``, ``auditor``, ``admin``) for everything else."""

    def __init__(self, client: TestClient, keys: dict[Role, str], clock: FixedClock) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self._keys = itertools.count(1)
        self._ledgers: dict[Role, TrustLedger] = {}

    def ledger(self, role: Role) -> TrustLedger:
        """The typed client holding this role's key (one per role, kept)."""
        if role not in self._ledgers:
            self._ledgers[role] = in_process(self.client, self.keys[role])
        return self._ledgers[role]

    @property
    def service(self) -> TrustLedger:
        return self.ledger(Role.SERVICE)

    @property
    def ranking(self) -> TrustLedger:
        return self.ledger(Role.RANKING)

    @property
    def reader(self) -> TrustLedger:
        return self.ledger(Role.READER)

    @property
    def auditor(self) -> TrustLedger:
        return self.ledger(Role.AUDITOR)

    @property
    def admin(self) -> TrustLedger:
        return self.ledger(Role.ADMIN)

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.close()
        self._ledgers.clear()

    def headers(self, role: Role | None = Role.SERVICE, key: str | None = None) -> dict[str, str]:
        headers = {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}
        headers["Idempotency-Key"] = key or f"idem-{next(self._keys)}"
        return headers

    def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        role: Role | None = Role.SERVICE,
        key: str | None = None,
    ) -> Any:
        return self.client.post(path, json=body, headers=self.headers(role, key))

    def get(self, path: str, *, role: Role = Role.READER, **params: Any) -> Any:
        return self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.keys[role]}"}
        )

    def ok(self, path: str, body: dict[str, Any], **kwargs: Any) -> list[int]:
        response = self.post(path, body, **kwargs)
        assert response.status_code == 201, response.text
        positions: list[int] = response.json()["positions"]
        return positions


def when(hours: float) -> datetime:
    """A business time, ``hours`` after T0 (for the typed client)."""
    return T0 + timedelta(hours=hours)


def at(hours: float) -> str:
    """A business time as RFC 3339 (for raw HTTP bodies and parameters)."""
    return when(hours).isoformat().replace("+00:00", "Z")


@contextmanager
def running_api(
    database_url: str,
    tmp_path: Path,
    *,
    now: datetime | None = None,
    tree_head_key: bool = True,
    rulebook: str = DEFAULT_RULEBOOK,
    **overrides: Any,
) -> Iterator[Api]:
    ring = KeyRing([])
    keys = {role: ring.add(role) for role in Role}
    keys_file = tmp_path / "keys.json"
    ring.save(keys_file)
    key_file = tmp_path / "tree-head.pem"
    if tree_head_key and not key_file.exists():
        write_new_key(key_file)
    clock = FixedClock(now or T0 + timedelta(days=3650))
    settings = Settings(
        database_url=database_url,
        keys_file=keys_file,
        deadline_worker=False,
        tree_head_key=key_file if tree_head_key else None,
        rulebook=rulebook,
        **overrides,
    )
    app = create_app(settings, clock=clock, background=False)
    with TestClient(app) as client:
        api = Api(client, keys, clock)
        try:
            yield api
        finally:
            api.close()


@contextmanager
def live_server(
    database_url: str, tmp_path: Path, *, background: bool = True, **overrides: Any
) -> Iterator[tuple[str, dict[Role, str]]]:
    """The service on a real port (uvicorn in a thread), with one key per role:
    for clients that speak HTTP themselves. ``background`` runs the follower."""
    ring = KeyRing([])
    keys = {role: ring.add(role) for role in Role}
    keys_file = tmp_path / "live-keys.json"
    ring.save(keys_file)
    key_file = tmp_path / "live-tree-head.pem"
    write_new_key(key_file)
    settings = Settings(
        database_url=database_url,
        keys_file=keys_file,
        deadline_worker=False,
        tree_head_key=key_file,
        **overrides,
    )
    app = create_app(settings, background=background)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + LIVE_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(timeout=30)
