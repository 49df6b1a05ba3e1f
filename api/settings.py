"""Service settings, read once from the environment; unsafe combinations are refused."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ledger.database import database_url_from_environment
from ledger.policy import DEFAULT_RULEBOOK


class Settings(msgspec.Struct, frozen=True):
    database_url: str
    rulebook: str = DEFAULT_RULEBOOK
    keys_file: Path = Path("trustledger-keys.json")
    # Development mode creates and prints one key per role at start-up.
    dev_keys: bool = False
    deadline_worker: bool = True
    deadline_interval_seconds: float = 30.0
    projection_poll_seconds: float = 1.0

    @classmethod
    def from_environment(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url_from_environment(),
            "rulebook": os.environ.get("TRUSTLEDGER_RULEBOOK", DEFAULT_RULEBOOK),
            "keys_file": Path(os.environ.get("TRUSTLEDGER_KEYS_FILE", "trustledger-keys.json")),
            "dev_keys": os.environ.get("TRUSTLEDGER_DEV_KEYS", "") == "1",
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.deadline_interval_seconds <= 0 or self.projection_poll_seconds <= 0:
            raise ValueError("intervals must be positive")
