"""Service settings, from the environment (``TRUSTLEDGER_<NAME>``) or given in
code; unsafe combinations are refused.

pydantic-settings reads them: every field is a setting, its environment
variable is ``TRUSTLEDGER_`` and its name in capitals, and its description is
what ``trustledger settings`` prints and ``docs/operations.md`` tables. A
structured value (``rate_limits``) is given as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec
from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from api.auth import Role
from api.rate_limits import FAILED_AUTH_LIMIT_DEFAULT, RATE_LIMITS_DEFAULT, RateLimit
from ledger.database import DEFAULT_DATABASE_URL, parse_database_url
from ledger.policy import DEFAULT_RULEBOOK
from projections.follower import GATHER_SECONDS_DEFAULT, GATHER_SECONDS_MAX, FollowerSettings

ENV_PREFIX = "TRUSTLEDGER_"
# The variables ``serve --workers`` sets for the workers it spawns.
RULEBOOK_SETTING = ENV_PREFIX + "RULEBOOK"
KEYS_FILE_SETTING = ENV_PREFIX + "KEYS_FILE"
FOLLOWER_SETTING = ENV_PREFIX + "FOLLOWER"
READ_DATABASE_URL_SETTING = ENV_PREFIX + "READ_DATABASE_URL"


# Settings only code may give: development mode is turned on by ``serve
# --dev`` and nothing else, never by a variable left in an environment.
CODE_ONLY = frozenset({"dev_keys"})


class _Environment(EnvSettingsSource):
    """The process environment, less the settings only code may give."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in CODE_ONLY:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """What code gives, then the environment; no dotenv or secrets files."""
        return init_settings, _Environment(settings_cls)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="where the log and the views live: memory:, sqlite:///path or "
        "postgresql://user@host:port/db?schema=...",
    )
    read_database_url: str | None = Field(
        default=None,
        description="PostgreSQL hot standbys (streaming replication) that answer view "
        "queries; appends and the follower use database_url, the primary",
    )
    rulebook: str = Field(
        default=DEFAULT_RULEBOOK, description="the default rulebook, by id or file"
    )
    keys_file: Path = Field(
        default=Path("trustledger-keys.json"), description="the API keys (hashes only; mode 0600)"
    )
    dev_keys: bool = Field(
        default=False,
        description="development mode (serve --dev only, on a loopback address; never from "
        "the environment): one key per role made at start-up, printed, and kept in "
        "dev_keys_file; keys_file is not read",
    )
    dev_keys_file: Path = Field(
        default=Path("trustledger-dev-keys.json"),
        description="where development mode keeps its keys",
    )
    follower: Literal["inside", "apart"] = Field(
        default="inside",
        description="inside: this process also folds the log, hashes the tree, signs heads and "
        "fires deadlines; apart: API workers only, beside trustledger follow",
    )
    read_your_writes_seconds: float = Field(
        default=5.0,
        description="apart: how long a query with min_position waits for the view before "
        "503 view_behind",
    )
    feed_follow_seconds: float = Field(
        default=300.0,
        description="how long one following stream of the penalty change feed stays open",
    )
    deadline_worker: bool = Field(default=True, description="fire due deadlines on the real clock")
    deadline_interval_seconds: float = Field(
        default=30.0, description="how often due deadlines are fired"
    )
    projection_poll_seconds: float = Field(
        default=1.0, description="how often the log is looked at, besides PostgreSQL's wake-ups"
    )
    projection_gather_seconds: float = Field(
        default=GATHER_SECONDS_DEFAULT,
        ge=0,
        le=GATHER_SECONDS_MAX,
        description="woken by an append, how long the follower lets the appends behind it "
        "arrive before folding them: fewer, larger batches under load; the views trail the "
        "log by up to this much more",
    )
    tree_head_key: Path | None = Field(
        default=None,
        description="the Ed25519 key that signs tree heads (trustledger keygen); without one "
        "tree heads are refused (503), except in development mode",
    )
    tree_head_interval_seconds: float = Field(
        default=300.0, description="how often a tree head is signed while the log grows"
    )
    ranking_path: bool = Field(
        default=True,
        description="answer plain current-penalty calls outside FastAPI (the hot path)",
    )
    body_bytes_max: int = Field(
        default=1024 * 1024, description="the largest request body read (413 beyond it)"
    )
    rate_limits: dict[Role, RateLimit] = Field(
        default_factory=lambda: dict(RATE_LIMITS_DEFAULT),
        description="requests a second and burst per API key, by role (JSON)",
    )
    failed_auth_limit: RateLimit = Field(
        default=FAILED_AUTH_LIMIT_DEFAULT,
        description="requests without a valid key per client address (JSON)",
    )
    readiness_timeout_seconds: float = Field(
        default=2.0, description="/readyz answers 503 when the store takes longer than this"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: plain lines; json: one JSON object a line, the access lines with "
        "request id, key id, route, status, duration and the position an append wrote",
    )
    readiness_lag_seconds_max: float = Field(
        default=60.0,
        description="/readyz answers 503 when the view trails the log by more than this",
    )

    def follower_settings(self, **changes: Any) -> FollowerSettings:
        """The follower's intervals as these settings give them."""
        given = FollowerSettings(
            poll_seconds=self.projection_poll_seconds,
            gather_seconds=self.projection_gather_seconds,
            tree_head_interval_seconds=self.tree_head_interval_seconds,
            deadline_interval_seconds=self.deadline_interval_seconds,
            deadline_worker=self.deadline_worker,
        )
        return msgspec.structs.replace(given, **changes)

    @classmethod
    def from_environment(cls, **overrides: Any) -> Settings:
        """The settings the environment gives, with ``overrides`` on top."""
        return cls(**overrides)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        timings = (
            self.deadline_interval_seconds,
            self.projection_poll_seconds,
            self.tree_head_interval_seconds,
            self.readiness_timeout_seconds,
            self.readiness_lag_seconds_max,
            self.read_your_writes_seconds,
            self.feed_follow_seconds,
        )
        if min(timings) <= 0:
            raise ValueError("intervals, timeouts and lags must be positive")
        if self.read_database_url is not None and not all(
            parse_database_url(url).kind == "postgresql"
            for url in (self.database_url, self.read_database_url)
        ):
            raise ValueError("read replicas are PostgreSQL standbys of a PostgreSQL primary")
        if set(self.rate_limits) != set(Role):
            raise ValueError("rate_limits names a limit for every role")
        if self.body_bytes_max < 1:
            raise ValueError("body_bytes_max must be positive")
        if self.dev_keys and self.dev_keys_file.resolve() == self.keys_file.resolve():
            raise ValueError("development keys need a file of their own, not the keys file")
        return self
