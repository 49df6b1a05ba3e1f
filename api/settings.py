"""Service settings, read once from the environment; unsafe combinations are refused."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from api.auth import Role
from api.rate_limits import FAILED_AUTH_LIMIT_DEFAULT, RATE_LIMITS_DEFAULT, RateLimit
from ledger.database import database_url_from_environment
from ledger.policy import DEFAULT_RULEBOOK


class Settings(msgspec.Struct, frozen=True):
    database_url: str
    rulebook: str = DEFAULT_RULEBOOK
    keys_file: Path = Path("trustledger-keys.json")
    # Development mode (``serve --dev`` only, on a loopback address) makes one
    # key per role at start-up, prints them and keeps them in ``dev_keys_file``
    # alone: the keys file of real callers is not read.
    dev_keys: bool = False
    dev_keys_file: Path = Path("trustledger-dev-keys.json")
    deadline_worker: bool = True
    deadline_interval_seconds: float = 30.0
    projection_poll_seconds: float = 1.0
    # The Ed25519 key that signs tree heads (``trustledger keygen`` makes one).
    # Without one, development mode signs with a key made at start-up; otherwise
    # tree heads are refused (503) rather than signed by a key nobody keeps.
    tree_head_key: Path | None = None
    tree_head_interval_seconds: float = 300.0
    # Plain current-penalty calls answered outside FastAPI (api.ranking_path);
    # off, every request takes the routes (the comparison tests use both).
    ranking_path: bool = True
    # The largest request body read (413 beyond it): a batch of 1,000 of the
    # longest ids is about 135 KB.
    body_bytes_max: int = 1024 * 1024
    # Requests per API key by its role, and failed sign-ins per client address.
    rate_limits: dict[Role, RateLimit] = msgspec.field(
        default_factory=lambda: dict(RATE_LIMITS_DEFAULT)
    )
    failed_auth_limit: RateLimit = FAILED_AUTH_LIMIT_DEFAULT
    # /readyz answers 503 when the store takes longer than this to answer it,
    # or when the view trails the log by more than this much recording time.
    readiness_timeout_seconds: float = 2.0
    readiness_lag_seconds_max: float = 60.0

    @classmethod
    def from_environment(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url_from_environment(),
            "rulebook": os.environ.get("TRUSTLEDGER_RULEBOOK", DEFAULT_RULEBOOK),
            "keys_file": Path(os.environ.get("TRUSTLEDGER_KEYS_FILE", "trustledger-keys.json")),
            "tree_head_key": _path_or_none(os.environ.get("TRUSTLEDGER_TREE_HEAD_KEY", "")),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if (
            min(
                self.deadline_interval_seconds,
                self.projection_poll_seconds,
                self.tree_head_interval_seconds,
                self.readiness_timeout_seconds,
                self.readiness_lag_seconds_max,
            )
            <= 0
        ):
            raise ValueError("intervals, timeouts and lags must be positive")
        if set(self.rate_limits) != set(Role):
            raise ValueError("rate_limits names a limit for every role")
        if self.body_bytes_max < 1:
            raise ValueError("body_bytes_max must be positive")
        if self.dev_keys and self.dev_keys_file.resolve() == self.keys_file.resolve():
            raise ValueError("development keys need a file of their own, not the keys file")


def _path_or_none(value: str) -> Path | None:
    return Path(value) if value else None
