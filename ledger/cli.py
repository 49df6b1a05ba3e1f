"""The ``trustledger`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from ledger.app import LedgerApp
from ledger.database import DATABASE_URL_SETTING, database_url_from_environment
from ledger.errors import LedgerError
from ledger.policy import DEFAULT_RULEBOOK, builtin_rulebook_ids
from ledger.scenario import SCENARIO_END, run_scenario

LOG_LIMIT_DEFAULT = 100


def _time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from error
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone, e.g. Z")
    return at.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trustledger", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"memory:, sqlite:///path or postgresql://... (default: ${DATABASE_URL_SETTING} "
        "or sqlite:///trustledger.db)",
    )
    parser.add_argument(
        "--rulebook", default=DEFAULT_RULEBOOK, help=f"policy rulebook: {builtin_rulebook_ids()}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="append a small built-in marketplace story and show the log")
    deadlines = commands.add_parser("deadlines", help="fire every deadline due by --now, once")
    deadlines.add_argument("--now", type=_time, default=None, help="RFC 3339 time (default: now)")
    log = commands.add_parser("log", help="print events in log order as JSON lines")
    log.add_argument("--after", type=int, default=0, help="start after this position")
    log.add_argument("--limit", type=int, default=LOG_LIMIT_DEFAULT)
    return parser


def _print_log(app: LedgerApp, after: int, limit: int) -> None:
    encoder = msgspec.json.Encoder()
    for notification in app.read_log(after, limit):
        line = {
            "position": notification.id,
            "topic": notification.topic,
            "body": msgspec.Raw(notification.state),
        }
        sys.stdout.write(encoder.encode(line).decode() + "\n")


def _demo(app: LedgerApp) -> None:
    results = run_scenario(app)
    written = sum(len(result.positions) for _, result in results if not result.replayed)
    replayed = sum(1 for _, result in results if result.replayed)
    run = app.run_deadlines(SCENARIO_END)
    print(f"database: {app.database_url}")
    print(
        f"{len(results)} commands: {written} events written, {replayed} replayed "
        f"(idempotency keys make the story safe to run again)"
    )
    print(f"deadlines due by {SCENARIO_END.isoformat()}: {len(run.positions)} facts fired")
    print()
    for notification in app.iter_log():
        event = app.decode(notification)
        print(f"{notification.id:>4}  {event.occurred_at:%Y-%m-%d %H:%M}  {notification.topic}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = args.database_url or database_url_from_environment()
    app = LedgerApp(url, rulebook=args.rulebook)
    try:
        if args.command == "demo":
            _demo(app)
        elif args.command == "deadlines":
            run = app.run_deadlines(args.now or app.clock.now())
            print(
                f"now {run.now.isoformat()}: {run.aggregates_settled} trades looked at, "
                f"{len(run.positions)} facts fired"
            )
        elif args.command == "log":
            _print_log(app, args.after, args.limit)
    except LedgerError as error:
        print(f"refused ({error.code}): {error.detail}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
