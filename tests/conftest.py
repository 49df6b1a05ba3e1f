"""Fixtures: one ledger per test, on memory, SQLite and PostgreSQL.

PostgreSQL tests carry the ``postgres`` marker. They skip when the server is
unreachable on a developer machine, and fail when ``CI=true``: CI must never
pass without running them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import Market

POSTGRES_URL = os.environ.get(
    "TRUSTLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL.split("?")[0], connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        return str(error)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_available()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and PostgreSQL is unreachable at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh schema per test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{postgres_server}?schema={schema}&pool_size=4&max_overflow=8"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


BACKEND_NAMES = ("memory", "sqlite", "postgres")
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKEND_NAMES,
        help="run backend-parametrised tests on this backend only (repeatable; default: all)",
    )
    parser.addoption(
        "--chaos-long",
        action="store_true",
        help="the chaos suite's longer variants: more kills, a longer outage, more requests",
    )
    parser.addoption(
        "--chaos-report",
        default=None,
        help="write the chaos suite's counts (requests, faults, lost, doubled, 5xx) to this JSON file",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the backends ``--backend`` did not name, PostgreSQL-only tests included."""
    chosen: list[str] | None = config.getoption("--backend")
    if not chosen:
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        if backend is None and item.get_closest_marker("postgres") is not None:
            backend = "postgres"
        (kept if backend is None or backend in chosen else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory:"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def stored_url(database_url: str) -> str:
    """SQLite and PostgreSQL only: for what a memory view or tree cannot show, since it
    lives in one object (surviving a restart, two writers, rollback, stored versions)."""
    if database_url == "memory:":
        pytest.skip("a memory view or tree lives in one object only")
    return database_url


@pytest.fixture
def market(database_url: str) -> Iterator[Market]:
    """A ledger on every backend, driven through LedgerApp."""
    m = Market.open(database_url)
    try:
        yield m
    finally:
        m.app.close()


@pytest.fixture(autouse=True)
def _settings_come_from_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read ``TRUSTLEDGER_*`` variables: the environment a test runs in
    must not steer it (a test that wants one sets it)."""
    for name in [n for n in os.environ if n.startswith("TRUSTLEDGER_")]:
        monkeypatch.delenv(name)
