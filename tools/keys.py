"""``trustledger keys``: API keys in the keys file (only their hashes are kept).

``add`` prints a new key once; ``list`` shows every key without its hash;
``revoke`` ends a key now and ``rotate`` makes a successor of the same role
while the old key keeps working for a grace period. Running servers read the
file again within ``KEYS_RELOAD_SECONDS`` (``api.service``): no restart.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.auth import KeyRing, Role, StoredKey
from api.settings import Settings

ROTATE_GRACE_HOURS_DEFAULT = 24.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="manage API keys (stored as hashes)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    add = actions.add_parser("add", help="create a key for a role; it is printed once")
    add.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="what the key may do"
    )
    add.add_argument("--expires-in-days", type=float, default=None, help="default: never")
    add.add_argument(
        "--caller",
        default=None,
        help="the service the key belongs to; its idempotency keys are scoped to it and "
        "survive rotation (default: the key's own id)",
    )
    listed = actions.add_parser("list", help="every key: id, role, created, expires, revoked")
    revoke = actions.add_parser("revoke", help="end a key now")
    revoke.add_argument("key_id", help="the key's id (keys list)")
    rotate = actions.add_parser("rotate", help="a new key of the same role; the old one ends later")
    rotate.add_argument("key_id", help="the key's id (keys list)")
    rotate.add_argument(
        "--grace-hours",
        type=float,
        default=ROTATE_GRACE_HOURS_DEFAULT,
        help=f"how long the old key keeps working (default {ROTATE_GRACE_HOURS_DEFAULT:g})",
    )
    for action in (add, listed, revoke, rotate):
        action.add_argument(
            "--keys-file", type=Path, default=None, help="default: $TRUSTLEDGER_KEYS_FILE"
        )


def run(args: argparse.Namespace) -> int:
    path: Path = args.keys_file or Settings.from_environment(database_url="memory:").keys_file
    ring = KeyRing.load(path)
    try:
        if args.keys_command == "add":
            days = args.expires_in_days
            expires = datetime.now(UTC) + timedelta(days=days) if days is not None else None
            try:
                plain = ring.add(Role(args.role), expires_at=expires, caller=args.caller)
            except ValueError as error:
                raise SystemExit(str(error)) from error
            _issued(plain, path)
        elif args.keys_command == "list":
            for key in ring.listed():
                print(_described(key))
            return 0
        elif args.keys_command == "revoke":
            print(_described(ring.revoke(args.key_id)))
        else:
            plain = ring.rotate(args.key_id, timedelta(hours=args.grace_hours))
            _issued(plain, path)
    except KeyError as error:
        raise SystemExit(f"{error.args[0]} in {path}") from error
    ring.save(path)
    return 0


def _issued(plain: str, path: Path) -> None:
    print(plain)
    print(f"(only its hash is kept in {path}: store the key now)", file=sys.stderr)


def _described(key: StoredKey) -> str:
    def when(at: datetime | None) -> str:
        return at.isoformat(timespec="seconds") if at is not None else "-"

    valid = "valid" if key.valid_at(datetime.now(UTC)) else "ended"
    return (
        f"{key.id}  {key.role.value:<8} {valid:<5}  caller {key.scope}  "
        f"created {when(key.created_at)}  "
        f"expires {when(key.expires_at)}  revoked {when(key.revoked_at)}"
    )
