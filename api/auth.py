"""API keys: stored as hashes, one role each, sent as ``Authorization: Bearer``.

A key reads ``tl_<id>_<secret>``. The keys file keeps only the id, the role,
the caller and the SHA-256 of the whole key, so a leaked file grants nothing.
The caller is the service the key belongs to, and idempotency keys are scoped
to it, not to the key: a successor made by ``rotate`` inherits its caller, so
a retry sent with the new key is answered as the repeat it is. A key given
no caller is its own caller (its id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

import msgspec

from ledger.app import CALLER_PATTERN

KEYS_FILE_MAX_BYTES = 1_000_000
KEY_PREFIX = "tl_"
BEARER_SCHEME = "bearer"


class Role(StrEnum):
    SERVICE = "service"
    RANKING = "ranking"
    READER = "reader"
    AUDITOR = "auditor"
    ADMIN = "admin"


# What each role may do.
APPEND_ROLES = frozenset({Role.SERVICE, Role.ADMIN})
PENALTY_ROLES = frozenset({Role.RANKING, Role.READER, Role.AUDITOR, Role.ADMIN})
QUERY_ROLES = frozenset({Role.READER, Role.AUDITOR, Role.ADMIN})
AUDIT_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})
ADMIN_ROLES = frozenset({Role.ADMIN})


KeyState = Literal["valid", "ended"]


class StoredKey(msgspec.Struct, frozen=True):
    id: str
    role: Role
    sha256: str
    created_at: datetime
    # A key stops working at its expiry or its revocation, whichever comes first.
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    caller: str | None = None  # None: the key is its own caller

    @property
    def scope(self) -> str:
        """The caller idempotency keys are scoped to."""
        return self.caller or self.id

    def valid_at(self, now: datetime) -> bool:
        ends = [at for at in (self.expires_at, self.revoked_at) if at is not None]
        return all(now < at for at in ends)

    def state_at(self, now: datetime) -> KeyState:
        return "valid" if self.valid_at(now) else "ended"


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the key id, its role and its caller (the idempotency scope)."""

    key_id: str
    role: Role
    caller: str


class KeyRing:
    def __init__(self, keys: list[StoredKey]) -> None:
        self._by_id = {key.id: key for key in keys}

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        if not path.exists():
            return cls([])
        if path.stat().st_size > KEYS_FILE_MAX_BYTES:
            raise ValueError(f"keys file {path} is over {KEYS_FILE_MAX_BYTES} bytes")
        return cls(msgspec.json.decode(path.read_bytes(), type=list[StoredKey]))

    def save(self, path: Path) -> None:
        """Replace the file at once, readable by its owner only from its first byte."""
        data = msgspec.json.encode(sorted(self._by_id.values(), key=lambda k: k.id))
        text = json.dumps(json.loads(data), indent=2) + "\n"
        scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(scratch, path)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise

    def add(
        self, role: Role, *, expires_at: datetime | None = None, caller: str | None = None
    ) -> str:
        """Create a key for a role (and a caller); the plain key is returned once
        and never stored."""
        if caller is not None and not re.fullmatch(CALLER_PATTERN, caller):
            raise ValueError(f"a caller's name must match {CALLER_PATTERN}")
        key_id = secrets.token_hex(4)
        while key_id in self._by_id:
            key_id = secrets.token_hex(4)
        plain = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        stored = StoredKey(
            key_id, role, _digest(plain), _now(), expires_at=expires_at, caller=caller
        )
        self._by_id[key_id] = stored
        return plain

    def listed(self) -> list[StoredKey]:
        return sorted(self._by_id.values(), key=lambda key: key.created_at)

    def revoke(self, key_id: str) -> StoredKey:
        """End a key now (running servers reload the file within seconds)."""
        revoked = msgspec.structs.replace(self._known(key_id), revoked_at=_now())
        self._by_id[key_id] = revoked
        return revoked

    def rotate(self, key_id: str, grace: timedelta) -> str:
        """A new key of the same role and caller; the old one keeps working for
        ``grace`` (never longer than it would have), so callers can move over."""
        old = self._known(key_id)
        ends = _now() + grace
        if old.expires_at is not None:
            ends = min(ends, old.expires_at)
        self._by_id[key_id] = msgspec.structs.replace(old, expires_at=ends)
        return self.add(old.role, expires_at=old.expires_at, caller=old.scope)

    def authenticate(self, plain: str) -> Principal | None:
        if not plain.startswith(KEY_PREFIX) or plain.count("_") < 2:
            return None
        key_id = plain[len(KEY_PREFIX) :].split("_", 1)[0]
        stored = self._by_id.get(key_id)
        if stored is None or not hmac.compare_digest(stored.sha256, _digest(plain)):
            return None
        if not stored.valid_at(_now()):
            return None
        return Principal(stored.id, stored.role, stored.scope)

    def _known(self, key_id: str) -> StoredKey:
        stored = self._by_id.get(key_id)
        if stored is None:
            raise KeyError(f"no key {key_id!r}")
        return stored

    def __len__(self) -> int:
        return len(self._by_id)


def bearer_key(authorization: str | None) -> str | None:
    """The key an ``Authorization`` header carries, or None: no header, another
    scheme, or no key.

    Read as FastAPI's ``HTTPBearer`` reads it, so the routes and the ranking
    engine's hot path (both callers of this one function) agree on every
    header: the scheme in any case, then one space, then the key with the
    white space around it dropped.
    """
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if not key or scheme.lower() != BEARER_SCHEME:
        return None
    return key


def _now() -> datetime:
    # Keys expire by the wall clock: they are the operator's, not business facts.
    return datetime.now(UTC)


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()
