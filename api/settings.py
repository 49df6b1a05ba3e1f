"""Service settings, read once from the environment; unsafe combinations are refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import msgspec

from api.auth import Role
from api.rate_limits import FAILED_AUTH_LIMIT_DEFAULT, RATE_LIMITS_DEFAULT, RateLimit
from ledger.database import database_url_from_environment, parse_database_url
from ledger.policy import DEFAULT_RULEBOOK
from projections.follower import FollowerSettings

# The environment a process reads its settings from (``serve --workers`` sets
# them for its workers). FOLLOWER_SETTING is "inside" or "apart".
RULEBOOK_SETTING = "TRUSTLEDGER_RULEBOOK"
KEYS_FILE_SETTING = "TRUSTLEDGER_KEYS_FILE"
TREE_HEAD_KEY_SETTING = "TRUSTLEDGER_TREE_HEAD_KEY"
FOLLOWER_SETTING = "TRUSTLEDGER_FOLLOWER"
READ_DATABASE_URL_SETTING = "TRUSTLEDGER_READ_DATABASE_URL"


class Settings(msgspec.Struct, frozen=True):
    database_url: str
    # PostgreSQL hot standbys (streaming replication) that answer the view
    # queries; appends and the follower use ``database_url``, the primary.
    read_database_url: str | None = None
    rulebook: str = DEFAULT_RULEBOOK
    keys_file: Path = Path("trustledger-keys.json")
    # Development mode (``serve --dev`` only, on a loopback address) makes one
    # key per role at start-up, prints them and keeps them in ``dev_keys_file``
    # alone: the keys file of real callers is not read.
    dev_keys: bool = False
    dev_keys_file: Path = Path("trustledger-dev-keys.json")
    # "inside": this process also runs the follower (the runner, the log tree,
    # tree-head signing, the deadline worker): one ``serve`` is everything.
    # "apart": API workers only; ``trustledger follow`` runs the follower.
    follower: Literal["inside", "apart"] = "inside"
    # Apart: how long a request with min_position waits for the follower to
    # fold that far before it is answered 503 (view_behind) with Retry-After.
    read_your_writes_seconds: float = 5.0
    # How long one following stream of the penalty change feed stays open
    # before it ends (the consumer reconnects after the last change it applied).
    feed_follow_seconds: float = 300.0
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

    def follower_settings(self, **changes: Any) -> FollowerSettings:
        """The follower's intervals as these settings give them."""
        given = FollowerSettings(
            poll_seconds=self.projection_poll_seconds,
            tree_head_interval_seconds=self.tree_head_interval_seconds,
            deadline_interval_seconds=self.deadline_interval_seconds,
            deadline_worker=self.deadline_worker,
        )
        return msgspec.structs.replace(given, **changes)

    @classmethod
    def from_environment(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url_from_environment(),
            "rulebook": os.environ.get(RULEBOOK_SETTING, DEFAULT_RULEBOOK),
            "keys_file": Path(os.environ.get(KEYS_FILE_SETTING, "trustledger-keys.json")),
            "tree_head_key": _path_or_none(os.environ.get(TREE_HEAD_KEY_SETTING, "")),
            "follower": os.environ.get(FOLLOWER_SETTING, "inside"),
            "read_database_url": os.environ.get(READ_DATABASE_URL_SETTING) or None,
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
                self.read_your_writes_seconds,
                self.feed_follow_seconds,
            )
            <= 0
        ):
            raise ValueError("intervals, timeouts and lags must be positive")
        if self.read_database_url is not None and not all(
            parse_database_url(url).kind == "postgresql"
            for url in (self.database_url, self.read_database_url)
        ):
            raise ValueError("read replicas are PostgreSQL standbys of a PostgreSQL primary")
        if self.follower not in ("inside", "apart"):
            raise ValueError(f"follower is inside or apart, not {self.follower!r}")
        if set(self.rate_limits) != set(Role):
            raise ValueError("rate_limits names a limit for every role")
        if self.body_bytes_max < 1:
            raise ValueError("body_bytes_max must be positive")
        if self.dev_keys and self.dev_keys_file.resolve() == self.keys_file.resolve():
            raise ValueError("development keys need a file of their own, not the keys file")


def _path_or_none(value: str) -> Path | None:
    return Path(value) if value else None
