"""``trustledger keys``: API keys in the keys file (only their hashes are kept).

``add`` prints a new key once; ``list`` shows every key without its hash;
``revoke`` ends a key now and ``rotate`` makes a successor of the same role
while the old key keeps working for a grace period. Running servers read the
file again within ``KEYS_RELOAD_SECONDS`` (``api.service``): no restart.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import click

from api.auth import KeyRing, Role, StoredKey
from api.settings import Settings
from tools.listing import is_terminal, json_option, print_json, print_table

ROTATE_GRACE_HOURS_DEFAULT = 24.0

F = TypeVar("F", bound=Callable[..., object])


def register(group: click.Group) -> None:
    group.add_command(keys)


def _keys_file(command: F) -> F:
    return click.option(
        "--keys-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="default: $TRUSTLEDGER_KEYS_FILE",
    )(command)


@click.group(help="manage API keys (stored as hashes)")
def keys() -> None:
    pass


@keys.command(help="create a key for a role; it is printed once")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role]), help="what the key may do"
)
@click.option("--expires-in-days", type=float, default=None, help="default: never")
@click.option(
    "--caller",
    default=None,
    help="the service the key belongs to; its idempotency keys are scoped to it and "
    "survive rotation (default: the key's own id)",
)
@_keys_file
def add(
    role: str, expires_in_days: float | None, caller: str | None, keys_file: Path | None
) -> int:
    path = _path(keys_file)
    ring = KeyRing.load(path)
    days = expires_in_days
    expires = datetime.now(UTC) + timedelta(days=days) if days is not None else None
    try:
        plain = ring.add(Role(role), expires_at=expires, caller=caller)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    ring.save(path)
    _issued(plain, path)
    return 0


@keys.command("list", help="every key: id, role, state, caller, created, expires, revoked")
@json_option("the keys")
@_keys_file
def list_(as_json: bool, keys_file: Path | None) -> int:
    listed = KeyRing.load(_path(keys_file)).listed()
    now = datetime.now(UTC)
    if as_json:
        print_json([_record(key, now) for key in listed])
    elif is_terminal():
        columns = ("id", "role", "state", "caller", "created", "expires", "revoked")
        print_table(columns, [_row(key, now) for key in listed])
    else:
        for key in listed:
            print(_described(key, now))
    return 0


@keys.command(help="end a key now")
@click.argument("key_id", help="the key's id (keys list)")
@_keys_file
def revoke(key_id: str, keys_file: Path | None) -> int:
    path = _path(keys_file)
    ring = KeyRing.load(path)
    with _known(path):
        revoked = ring.revoke(key_id)
    ring.save(path)
    print(_described(revoked, datetime.now(UTC)))
    return 0


@keys.command(help="a new key of the same role; the old one ends later")
@click.argument("key_id", help="the key's id (keys list)")
@click.option(
    "--grace-hours",
    type=float,
    default=ROTATE_GRACE_HOURS_DEFAULT,
    help=f"how long the old key keeps working (default {ROTATE_GRACE_HOURS_DEFAULT:g})",
)
@_keys_file
def rotate(key_id: str, grace_hours: float, keys_file: Path | None) -> int:
    path = _path(keys_file)
    ring = KeyRing.load(path)
    with _known(path):
        plain = ring.rotate(key_id, timedelta(hours=grace_hours))
    ring.save(path)
    _issued(plain, path)
    return 0


def _path(keys_file: Path | None) -> Path:
    return keys_file or Settings.from_environment(database_url="memory:").keys_file


@contextmanager
def _known(path: Path) -> Iterator[None]:
    """The key ring's "no such key" as the command's exit message."""
    try:
        yield
    except KeyError as error:
        raise SystemExit(f"{error.args[0]} in {path}") from error


def _issued(plain: str, path: Path) -> None:
    print(plain)
    print(f"(only its hash is kept in {path}: store the key now)", file=sys.stderr)


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "-"


def _state(key: StoredKey, now: datetime) -> str:
    return key.state_at(now)


def _described(key: StoredKey, now: datetime) -> str:
    return (
        f"{key.id}  {key.role.value:<8} {_state(key, now):<5}  caller {key.scope}  "
        f"created {_when(key.created_at)}  "
        f"expires {_when(key.expires_at)}  revoked {_when(key.revoked_at)}"
    )


def _row(key: StoredKey, now: datetime) -> tuple[str, ...]:
    return (
        key.id,
        key.role.value,
        _state(key, now),
        key.scope,
        _when(key.created_at),
        _when(key.expires_at),
        _when(key.revoked_at),
    )


def _record(key: StoredKey, now: datetime) -> dict[str, object]:
    """A key as JSON: its hash left out, times as RFC 3339 or null."""
    return {
        "id": key.id,
        "role": key.role.value,
        "state": _state(key, now),
        "caller": key.scope,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    }
