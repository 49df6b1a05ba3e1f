"""`trustledger export` and `trustledger import`: the whole log as NDJSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

import click

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
from tools.arguments import GlobalOptions, pass_global_options
from tools.progress import Progress, count_lines


def register(group: click.Group) -> None:
    group.add_command(export)
    group.add_command(import_)


@click.command(help="write the log in order as NDJSON to stdout")
@click.option("--after", type=int, default=0, help="start after this position")
@pass_global_options
def export(options: GlobalOptions, after: int) -> int:
    app = LedgerApp(options.url, rulebook=options.rulebook)
    try:
        return _export(app, after)
    finally:
        app.close()


@click.command("import", help="validate and append an NDJSON export")
@click.argument("path", help="an NDJSON file written by export ('-' for stdin)")
@click.option(
    "--batch-events",
    type=int,
    default=BATCH_EVENTS_DEFAULT,
    help=f"events per transaction (1-{BATCH_EVENTS_MAX:,})",
)
@click.option(
    "--cache-aggregates",
    type=int,
    default=AGGREGATE_CACHE_DEFAULT,
    help="aggregates kept in memory while checking",
)
@pass_global_options
def import_(options: GlobalOptions, path: str, batch_events: int, cache_aggregates: int) -> int:
    app = LedgerApp(options.url, rulebook=options.rulebook)
    try:
        return _import(app, path, batch_events, cache_aggregates)
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


def _import(app: LedgerApp, named: str, batch_events: int, cache_aggregates: int) -> int:
    if not 1 <= batch_events <= BATCH_EVENTS_MAX:
        print(f"--batch-events is 1-{BATCH_EVENTS_MAX:,}", file=sys.stderr)
        return 2
    if cache_aggregates < 1:
        print("--cache-aggregates is 1 or more", file=sys.stderr)
        return 2
    path = None if named == "-" else Path(named)
    try:
        total = count_lines(path) if path is not None else None
        source: IO[bytes] = path.open("rb") if path is not None else sys.stdin.buffer
    except OSError as error:
        print(f"cannot read {named}: {error.strerror or error}", file=sys.stderr)
        return 2
    progress = Progress("import", total)
    try:
        report = import_log(
            app,
            source,
            batch_events=batch_events,
            cache_aggregates=cache_aggregates,
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
