"""`trustledger export` and `trustledger import`: the whole log as NDJSON."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

from ledger.app import LedgerApp
from ledger.transfer import (
    AGGREGATE_CACHE_DEFAULT,
    BATCH_EVENTS_DEFAULT,
    BATCH_EVENTS_MAX,
    ImportRefusedError,
    describe,
    export_log,
    import_log,
)
from tools.progress import Progress, count_lines


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export", help="write the log in order as NDJSON to stdout")
    export.add_argument("--after", type=int, default=0, help="start after this position")
    load = commands.add_parser("import", help="validate and append an NDJSON export")
    load.add_argument("path", help="an NDJSON file written by export ('-' for stdin)")
    load.add_argument(
        "--batch-events",
        type=int,
        default=BATCH_EVENTS_DEFAULT,
        help=f"events per transaction (1-{BATCH_EVENTS_MAX:,})",
    )
    load.add_argument(
        "--cache-aggregates",
        type=int,
        default=AGGREGATE_CACHE_DEFAULT,
        help="aggregates kept in memory while checking",
    )


def run(args: argparse.Namespace, database_url: str) -> int:
    app = LedgerApp(database_url, rulebook=args.rulebook)
    try:
        if args.command == "export":
            return _export(app, args.after)
        return _import(app, args)
    finally:
        app.close()


def _export(app: LedgerApp, after: int) -> int:
    if after < 0:
        print("--after is a position, 0 or more", file=sys.stderr)
        return 2
    total = max((app.recorder.max_notification_id() or 0) - after, 0)
    progress = Progress("export", total)
    out: IO[bytes] = sys.stdout.buffer
    try:
        report = export_log(
            app,
            out,
            after=after,
            progress=lambda position, _events: progress.update(position - after),
        )
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stream
        return 0
    progress.finish((report.last_position or after) - after)
    print(describe(report, "exported"), file=sys.stderr)
    return 0


def _import(app: LedgerApp, args: argparse.Namespace) -> int:
    if not 1 <= args.batch_events <= BATCH_EVENTS_MAX:
        print(f"--batch-events is 1-{BATCH_EVENTS_MAX:,}", file=sys.stderr)
        return 2
    if args.cache_aggregates < 1:
        print("--cache-aggregates is 1 or more", file=sys.stderr)
        return 2
    path = None if args.path == "-" else Path(args.path)
    try:
        total = count_lines(path) if path is not None else None
        source: IO[bytes] = path.open("rb") if path is not None else sys.stdin.buffer
    except OSError as error:
        print(f"cannot read {args.path}: {error.strerror or error}", file=sys.stderr)
        return 2
    progress = Progress("import", total)
    try:
        report = import_log(
            app,
            source,
            batch_events=args.batch_events,
            cache_aggregates=args.cache_aggregates,
            progress=lambda _position, events: progress.update(events),
        )
    except ImportRefusedError as error:
        progress.finish(error.imported.events)
        print(
            f"import refused at line {error.line} ({error.code}): {error.reason}\n"
            f"nothing of that line's batch was written; {error.imported.events:,} events "
            f"in {error.imported.batches:,} earlier batches were imported",
            file=sys.stderr,
        )
        return 2
    finally:
        if path is not None:
            source.close()
    progress.finish(report.events)
    print(describe(report, "imported"))
    return 0
