"""`trustledger bench`: TrustLedger side by side with its baselines, in the same run.

Every figure is measured against a baseline doing the same work with the same
number of clients: appends vs the eventsourcing library's plain
``repository.get`` + ``save``; the projection rebuild vs a raw ``SELECT`` of the
same log with msgspec decoding and no folding; ranking queries over HTTP.
``big_sellers`` asks for the figures of members with 10^3 to 10^6 trades and
compares them across sizes: what a figure costs as one member's history grows.

The store measured is the embedded SQLite default (scratch files in a
temporary directory, removed afterwards) unless ``--postgres`` names a
PostgreSQL server (a fresh schema per figure, dropped afterwards). Sections
that need PostgreSQL (``SQLITE_SKIPS``) are skipped on SQLite, each with its
reason in the output and the results.

A full run of every section on PostgreSQL writes ``bench/results.json`` and
``bench/results.md`` (the committed figures); any other run (SQLite,
``--quick``, ``--only``, ``--big-sellers``, ``--big-buyers``) writes to a
temporary directory instead, unless ``--out`` says where. While it runs, each
section's figures are kept as it finishes, in ``partial/`` under ``--out`` or
the temporary directory.
"""

from __future__ import annotations

import gc
import http.client
import io
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import click
import msgspec
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from client.errors import Unavailable
from client.sync import TrustLedger
from ledger import commands as c
from ledger.app import LedgerApp, Origin
from ledger.clock import FixedClock
from ledger.codec import decode_event
from ledger.database import DatabaseUrlError, parse_database_url
from ledger.events import Event
from projections.connections import place_of
from projections.runner import Runner
from projections.views import SqlView, open_view
from tools import big_sellers
from tools.arguments import Count, GlobalOptions, SpreadCommand, pass_global_options

# The server catches its projections up with the log before it listens.
SERVER_START_SECONDS_MAX = 300
START = datetime(2025, 1, 1, tzinfo=UTC)


class Workload(msgspec.Struct, frozen=True):
    name: str
    memory_trades: int
    commands: int
    clients: Sequence[int]
    rebuild_trades: int
    http_sellers: int
    http_requests: int
    http_clients: Sequence[int]
    # The trades of each big seller and each big buyer (``big_sellers``).
    big_sellers: Sequence[int]
    big_buyers: Sequence[int]
    # Timed answers per figure and size: at most this many, and no more once
    # the figure's answers took this long (at least BIG_SAMPLES_MIN).
    big_samples: int
    big_figure_seconds: float
    # API worker processes beside a follower (``workers``): the ranking calls
    # at each concurrency, then appends at ``append_clients`` against the
    # same server's no-op POST.
    worker_counts: Sequence[int] = (1, 2)
    worker_clients: Sequence[int] = (1, 4, 16)
    worker_appends: int = 5_000
    append_clients: int = 32


QUICK = Workload(
    "quick",
    memory_trades=2_000,
    commands=2_000,
    clients=(1, 32),
    rebuild_trades=4_000,
    http_sellers=1_000,
    http_requests=300,
    http_clients=(1, 8),
    big_sellers=(1_000, 10_000),
    big_buyers=(100, 1_000),
    big_samples=5,
    big_figure_seconds=1.0,
    worker_clients=(1, 4),
    worker_appends=1_000,
)
FULL = Workload(
    "full",
    memory_trades=150_000,
    commands=20_000,
    clients=(1, 32),
    rebuild_trades=150_000,
    http_sellers=10_000,
    http_requests=3_000,
    http_clients=(1, 4, 16),
    big_sellers=(1_000, 10_000, 100_000, 1_000_000),
    big_buyers=(1_000, 100_000),
    big_samples=15,
    big_figure_seconds=60.0,
)
SECTIONS = ("appends", "import", "rebuild", "http", "workers", "memory", "big_sellers")
# The sections a run on SQLite skips, each with the reason it gives.
SQLITE_SKIPS = {
    "workers": "several API worker processes beside a follower need PostgreSQL "
    "(on SQLite, one `serve` process holds everything; `http` measures it)",
}
# Where a run that is not the full one of every section writes by default.
SCRATCH_OUT = Path(tempfile.gettempdir()) / "trustledger-bench"


class Arguments(msgspec.Struct, frozen=True):
    """What the command line asked of a run."""

    quick: bool
    # The PostgreSQL server to measure on; None: scratch SQLite files.
    postgres: str | None
    only: Sequence[str]
    big_sellers: Sequence[int]
    big_buyers: Sequence[int]
    out: Path | None


_trades = Count(
    "trades", 1, big_sellers.TRADES_MAX, f"a big member has 1-{big_sellers.TRADES_MAX:,} trades"
)


def register(group: click.Group) -> None:
    @group.command(
        "bench",
        cls=SpreadCommand,
        help="benchmarks beside their baselines, on scratch SQLite files or on PostgreSQL",
    )
    @click.option("--quick", is_flag=True, help="CI-sized: under two minutes")
    @click.option(
        "--postgres",
        envvar="TRUSTLEDGER_BENCH_POSTGRES",
        default=None,
        metavar="URL",
        callback=_postgres_url,
        help="measure on this PostgreSQL server, a fresh schema per figure "
        "(default: $TRUSTLEDGER_BENCH_POSTGRES; without either, on scratch SQLite files)",
    )
    @click.option(
        "--only",
        multiple=True,
        type=click.Choice(SECTIONS),
        metavar="SECTION...",
        help=f"run only these sections ({', '.join(SECTIONS)}; default: all)",
    )
    @click.option(
        "--big-sellers",
        multiple=True,
        type=_trades,
        metavar="TRADES...",
        help="the big sellers' sizes in trades (default: the workload's)",
    )
    @click.option(
        "--big-buyers",
        multiple=True,
        type=_trades,
        metavar="TRADES...",
        help="the big buyers' sizes in trades (default: the workload's)",
    )
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"default: bench/ for a full run of every section on PostgreSQL, else {SCRATCH_OUT}",
    )
    @pass_global_options
    def bench(options: GlobalOptions, /, **given: Any) -> int:
        # The benchmark writes and drops stores of its own; it never measures
        # on the ledger that --database-url names.
        if options.database_url is not None:
            raise click.UsageError(
                "bench measures on scratch stores of its own, not on --database-url: "
                "give --postgres URL to measure on PostgreSQL (without it, on SQLite)"
            )
        return run(Arguments(**given))


def _postgres_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A PostgreSQL URL, or None (SQLite); anything else is a usage error."""
    if value is None:
        return None
    try:
        kind = parse_database_url(value).kind
    except DatabaseUrlError as error:
        raise click.BadParameter(str(error)) from error
    if kind != "postgresql":
        raise click.BadParameter(
            f"{value!r}: expected postgresql://user@host:port/db (without it, bench measures on SQLite)"
        )
    return value


def run(args: Arguments) -> int:
    workload = QUICK if args.quick else FULL
    if args.big_sellers:
        workload = msgspec.structs.replace(workload, big_sellers=tuple(sorted(args.big_sellers)))
    if args.big_buyers:
        workload = msgspec.structs.replace(workload, big_buyers=tuple(sorted(args.big_buyers)))
    sections: Sequence[str] = args.only or SECTIONS
    # Only a full run of every section on PostgreSQL, as the workload sizes
    # it, replaces the committed figures.
    resized = args.big_sellers or args.big_buyers
    complete = (
        args.postgres is not None
        and not args.quick
        and not resized
        and set(sections) == set(SECTIONS)
    )
    out: Path = args.out or (Path("bench") if complete else SCRATCH_OUT)
    asked = [name for name in SECTIONS if name in sections]
    on_sqlite = args.postgres is None
    skipped = {name: SQLITE_SKIPS[name] for name in asked if on_sqlite and name in SQLITE_SKIPS}
    with tempfile.TemporaryDirectory(prefix="trustledger-bench-") as scratch:
        store = Store(args.postgres, Path(scratch))
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "workload": msgspec.to_builtins(workload),
            "store": store.describe(),
            "sections": [name for name in asked if name not in skipped],
            "skipped": skipped,
        }
        if args.postgres is not None:
            results["postgres"] = args.postgres
        for name, reason in skipped.items():
            print(f"{name}: skipped on SQLite: {reason}", file=sys.stderr, flush=True)
        for name in results["sections"]:
            results[name] = SECTION_RUNS[name](store, workload)
            # A long run keeps what it has measured so far, should a later section fail.
            _write((args.out or SCRATCH_OUT) / "partial", results)
            print(f"{name}: done", file=sys.stderr, flush=True)
    _write(out, results)
    print(markdown(results))
    print(f"results written to {out}/results.json and results.md", file=sys.stderr)
    return 0


def _write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(msgspec.json.format(msgspec.json.encode(results)) + b"\n")
    (out / "results.md").write_text(markdown(results))


def _appends(store: Store, workload: Workload) -> list[dict[str, Any]]:
    rows = []
    for clients in workload.clients:
        with store.scratch() as url:
            rows.append(bench_appends(url, workload, clients))
    return rows


def _import(store: Store, workload: Workload) -> dict[str, Any]:
    return bench_import(store, workload.rebuild_trades)


def _rebuild(store: Store, workload: Workload) -> dict[str, Any]:
    with store.scratch() as url:
        return bench_rebuild(url, workload)


def _http(store: Store, workload: Workload) -> dict[str, Any]:
    with store.scratch() as url:
        return bench_http(url, workload)


def _workers(store: Store, workload: Workload) -> dict[str, Any]:
    with store.scratch() as url:
        return bench_workers(url, workload)


def _memory(store: Store, workload: Workload) -> dict[str, Any]:
    return bench_memory(store, workload.memory_trades, 4 * workload.memory_trades)


# --- Stores ----------------------------------------------------------------------------


class Store:
    """Where a run measures: fresh schemas on a PostgreSQL server, or fresh
    SQLite files in a scratch directory; each figure's store is removed after it."""

    def __init__(self, postgres: str | None, directory: Path) -> None:
        self.postgres = postgres
        self.directory = directory
        self.kind: Literal["sqlite", "postgresql"] = "sqlite" if postgres is None else "postgresql"

    def describe(self) -> dict[str, str]:
        """What the results say was measured: the store and its version."""
        if self.postgres is None:
            return {"kind": "sqlite", "name": "SQLite", "version": sqlite3.sqlite_version}
        with psycopg.connect(self.postgres) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return {"kind": "postgresql", "name": "PostgreSQL", "version": str(row[0]) if row else "?"}

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """The database URL of a fresh, empty store, removed when the block ends."""
        name = f"bench_{uuid.uuid4().hex[:10]}"
        if self.postgres is None:
            # A directory of its own: the baseline's file goes beside the ledger's.
            place = self.directory / name
            place.mkdir()
            try:
                yield f"sqlite:///{place / 'ledger.db'}"
            finally:
                shutil.rmtree(place)
            return
        with psycopg.connect(self.postgres, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        try:
            yield f"{self.postgres}?schema={name}&pool_size=8&max_overflow=32"
        finally:
            with psycopg.connect(self.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {name} CASCADE")


@contextmanager
def _sqlite(path: str) -> Iterator[sqlite3.Connection]:
    """A plain connection to a scratch SQLite file, closed (not only committed) after the block."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# --- Appends ---------------------------------------------------------------------------


class BaselineTrade(Aggregate):
    """The library's plain way: a mutable aggregate, one event a command."""

    @event("Created")
    def __init__(self, trade_id: str) -> None:
        self.trade_id = trade_id
        self.paid = False

    @event("Paid")
    def pay(self) -> None:
        self.paid = True


class BaselineApp(Application[uuid.UUID]):
    name = "baseline"


def bench_appends(url: str, workload: Workload, clients: int) -> dict[str, Any]:
    """Pay for N existing trades: one aggregate read and one event written per command."""
    n = workload.commands
    clock = FixedClock(START + timedelta(days=400))
    app = LedgerApp(url, clock=clock)
    app.register_member(
        c.RegisterMember(member_id="b", occurred_at=START), Origin("bench", f"m-b-{clients}")
    )
    app.register_member(
        c.RegisterMember(member_id="s", occurred_at=START), Origin("bench", f"m-s-{clients}")
    )
    trade_ids = [f"T{clients}-{i}" for i in range(n)]

    def create(trade_id: str) -> None:
        command = c.CreateTrade(
            trade_id=trade_id,
            buyer_id="b",
            seller_id="s",
            item_id="i",
            amount_minor=1_000,
            currency="CNY",
            goods_kind="physical",
            shipping="express",
            occurred_at=START + timedelta(hours=1),
        )
        app.create_trade(command, Origin("bench", f"create-{trade_id}"))

    def pay_ours(trade_id: str) -> None:
        command = c.PayIntoEscrow(trade_id=trade_id, occurred_at=START + timedelta(hours=2))
        app.pay_into_escrow(command, Origin("bench", f"pay-{trade_id}"))

    _parallel(32, [partial(create, t) for t in trade_ids])
    ours = _parallel(clients, [partial(pay_ours, t) for t in trade_ids])
    app.close()

    env = _baseline_env(url)
    baseline = BaselineApp(env=env)
    aggregates = [BaselineTrade(t) for t in trade_ids]
    for i in range(0, n, 500):
        baseline.save(*aggregates[i : i + 500])
    ids = [a.id for a in aggregates]

    def pay(aggregate_id: uuid.UUID) -> None:
        trade: BaselineTrade = baseline.repository.get(aggregate_id)
        trade.pay()
        baseline.save(trade)

    theirs = _parallel(clients, [partial(pay, i) for i in ids])
    baseline.close()
    return {
        "clients": clients,
        "commands": n,
        "trustledger": ours,
        "baseline": theirs,
        "ratio": round(ours["events_per_s"] / theirs["events_per_s"], 2),
    }


def _parallel(clients: int, calls: list[Callable[[], object]]) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(reversed(calls))

    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue or failures:
                    return
                call = queue.pop()
            started = time.perf_counter()
            try:
                call()
            except Exception as failure:  # a figure from fewer calls would mislead
                with lock:
                    failures.append(failure)
                return
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} call(s) failed") from failures[0]
    latencies.sort()
    return {
        "events_per_s": round(len(calls) / wall, 1),
        "p50_ms": round(_quantile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        "seconds": round(wall, 2),
    }


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(int(q * len(sorted_values)), len(sorted_values) - 1)]


def _baseline_env(url: str) -> dict[str, str]:
    from ledger.database import persistence_env  # noqa: PLC0415 - the same store settings

    env = persistence_env(url)
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    if "SQLITE_DBNAME" in env:
        # The library's SQLite tables have one name whatever the application:
        # the baseline gets a file of its own beside the ledger's.
        env["SQLITE_DBNAME"] = str(Path(env["SQLITE_DBNAME"]).with_name("baseline.db"))
    return env


# --- Rebuild ---------------------------------------------------------------------------


def bench_rebuild(url: str, workload: Workload) -> dict[str, Any]:
    """Fold the whole log into a fresh view vs reading and decoding it raw."""
    app = LedgerApp(url, clock=FixedClock(START + timedelta(days=4000)))
    events = _fill(app, workload.rebuild_trades)
    _settle_database(url)
    view = open_view(url)
    _settle_heap()
    started = time.perf_counter()
    Runner(app, view).catch_up()
    ours = events / (time.perf_counter() - started)
    view.close()
    app.close()
    started = time.perf_counter()
    decoded = 0
    for state in _raw_states(url):
        decode_event(state)
        decoded += 1
    theirs = decoded / (time.perf_counter() - started)
    return {
        "events": events,
        "trustledger_events_per_s": round(ours),
        "raw_read_decode_events_per_s": round(theirs),
        "ratio": round(ours / theirs, 3),
    }


def _raw_states(url: str) -> Iterator[bytes]:
    """The stored bodies of the log in order, read in one plain query and nothing else."""
    place = place_of(url)
    if place.kind == "sqlite":
        with _sqlite(place.path) as lite:
            # The log's table under the library's SQLite name (one per file).
            rows = lite.execute("SELECT state FROM stored_events ORDER BY notification_id")
            yield from (state for (state,) in rows)
        return
    with psycopg.connect(place.conninfo) as conn, conn.cursor(name="raw") as cursor:
        cursor.itersize = 10_000
        cursor.execute(
            f'SELECT state FROM "{place.schema}".trustledger_events ORDER BY notification_id'
        )
        yield from (state for (state,) in cursor)


def _settle_database(url: str) -> None:
    """Let the store finish with the fill (statistics, dirty pages) before either side is timed."""
    place = place_of(url)
    if place.kind == "sqlite":
        with _sqlite(place.path) as conn:
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with psycopg.connect(place.conninfo, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{place.schema}".trustledger_events')
        conn.execute("CHECKPOINT")


def _checkpoint(url: str) -> None:
    """Write out what the fill left pending (PostgreSQL's dirty pages, SQLite's
    write-ahead log), so a timed write does not pay for the one before it."""
    place = place_of(url)
    if place.kind == "sqlite":
        with _sqlite(place.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with psycopg.connect(place.conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _settle_heap() -> None:
    """Collect and freeze what the set-up left, so it does not slow the timed part."""
    gc.collect()
    gc.freeze()


def _fill(app: LedgerApp, trades: int) -> int:
    """Fill the store with the simulator's mix (fixed seed), through the bulk path.

    The simulation runs in memory, then its export is imported: the bulk path
    is how a large log is restored, and it keeps the set-up out of the timings.
    """
    from ledger.transfer import export_log, import_log  # noqa: PLC0415
    from tools.simulator import SimulationConfig, simulate  # noqa: PLC0415 - bench only

    source = LedgerApp("memory:", clock=app.clock)
    simulate(
        source, SimulationConfig(members=max(200, trades // 10), trades=trades, days=365, seed=7)
    )
    buffer = io.BytesIO()
    export_log(source, buffer)
    source.close()
    buffer.seek(0)
    return import_log(app, buffer).events


# --- Output ----------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    store = results["store"]
    where = "scratch files" if store["kind"] == "sqlite" else "a fresh schema per figure"
    measured = (
        f"Measured {results['date']} on {results['machine']} "
        f"({results['workload']['name']} workload), on {store['name']} {store['version']} ({where})."
    )
    skipped = [
        f"Skipped on {store['name']}: {name}, as {reason}."
        for name, reason in results.get("skipped", {}).items()
    ]
    if skipped:
        measured = "\n".join([measured, "", *skipped])
    lines = _baseline_rows(results)
    if lines:
        lines = ["| figure | TrustLedger | baseline | ratio |", "|---|---|---|---|", *lines]
    big = results.get("big_sellers")
    if big:
        lines += ["", *_big_seller_tables(big)] if lines else _big_seller_tables(big)
    return "\n".join([measured, "", *lines]) + "\n"


def _baseline_rows(results: dict[str, Any]) -> list[str]:
    """The table rows of the sections measured beside a baseline."""
    lines: list[str] = []
    for row in results.get("appends", []):
        ours, theirs = row["trustledger"], row["baseline"]
        lines.append(
            f"| appends, {row['clients']} client(s): events/s (p50/p99 ms) | "
            f"{ours['events_per_s']:,.0f} ({ours['p50_ms']}/{ours['p99_ms']}) | "
            f"{theirs['events_per_s']:,.0f} ({theirs['p50_ms']}/{theirs['p99_ms']}) | {row['ratio']}x |"
        )
    imported = results.get("import")
    if imported:
        lines.append(
            f"| bulk import of {imported['events']:,} events: events/s | {imported['trustledger_events_per_s']:,} | "
            f"{imported['baseline_rows_per_s']:,} ({imported['baseline']}) | {imported['ratio']}x |"
        )
    rebuild = results.get("rebuild")
    if rebuild:
        lines.append(
            f"| rebuild of {rebuild['events']:,} events: events/s | {rebuild['trustledger_events_per_s']:,} | "
            f"{rebuild['raw_read_decode_events_per_s']:,} (raw read+decode) | {rebuild['ratio']}x |"
        )
    memory = results.get("memory")
    if memory:
        small, large = memory["small"], memory["large"]
        lines.append(
            f"| rebuild peak RSS, {small['events']:,} vs {large['events']:,} events | "
            f"{small['peak_rss_mib']} MiB vs {large['peak_rss_mib']} MiB | - | {memory['ratio']}x |"
        )
    http = results.get("http")
    for run in http["runs"] if http else []:
        for name in ("single", "batch_1000"):
            figure = run[name]
            lines.append(
                f"| HTTP {name} penalty, {run['clients']} client(s): requests/s (p50/p99 ms) | "
                f"{figure['requests_per_s']:,.0f} ({figure['p50_ms']}/{figure['p99_ms']}) | - | - |"
            )
    return lines + _worker_rows(results.get("workers"))


def _append_row(appends: dict[str, Any], workers: int, where: str, run: dict[str, Any]) -> str:
    ours, noop = appends["trades"], appends["noop"]
    used = appends.get("cores_used", {"load_generator": appends["load_generator_cores"]})
    split = ", ".join(f"{name.replace('_', ' ')} {cores}" for name, cores in used.items())
    caught_up = appends.get("caught_up_seconds")
    trailing = "" if caught_up is None else f"; every read model folded {caught_up} s after"
    return (
        f"| HTTP appends, {workers} worker(s), {where}, {appends['clients']} clients: "
        f"trades/s (p50/p99 ms); cores used of {run['cores']}: {split}{trailing} | "
        f"{ours['events_per_s']:,.0f} ({ours['p50_ms']}/{ours['p99_ms']}) | "
        f"{noop['events_per_s']:,.0f} ({noop['p50_ms']}/{noop['p99_ms']}) (no-op POST) | "
        f"{appends['ratio']}x |"
    )


def _worker_rows(workers: dict[str, Any] | None) -> list[str]:
    """API workers beside a follower: the ranking calls, then appends against the no-op POST."""
    lines: list[str] = []
    if not workers:
        return lines
    for run in workers["runs"]:
        n = run["workers"]
        for query in run["queries"]:
            for name in ("single", "batch_1000"):
                figure = query[name]
                lines.append(
                    f"| HTTP {name} penalty, {n} worker(s), {query['clients']} client(s): "
                    f"requests/s (p50/p99 ms) | {figure['requests_per_s']:,.0f} "
                    f"({figure['p50_ms']}/{figure['p99_ms']}) | - | - |"
                )
        for key, where in (
            ("appends", "follower beside"),
            ("appends_follower_stopped", "follower stopped"),
        ):
            if key in run:
                lines.append(_append_row(run[key], n, where, workers))
    return lines


def _big_seller_tables(big: dict[str, Any]) -> list[str]:
    """Each figure by member size, its p99 against the smallest size's, and the targets
    (marked at the biggest size); then what each member's log cost to import and store."""
    lines = [
        f"Big members: one client over HTTP, each figure's answers after one to warm up "
        f"(clock {big['clock']}, business times over the {big['period_days']} days before it).",
        "",
        "| figure | member's trades | p50 ms | p99 ms | samples | p99 vs smallest | target |",
        "|---|---|---|---|---|---|---|",
    ]
    scaling = {row["figure"]: row for row in big["scaling"]}
    for figure, label in BIG_FIGURES.items():
        sized = sorted(
            (r for r in big["figures"] if r["figure"] == figure), key=lambda r: r["trades"]
        )
        for row in sized:
            ratio = row["p99_ms"] / max(sized[0]["p99_ms"], 0.01)
            target = "-"
            if figure in scaling and row is sized[-1]:
                target = _targets(scaling[figure])
            lines.append(
                f"| {label} | {row['trades']:,} | {row['p50_ms']} | {row['p99_ms']} | "
                f"{row['samples']} | {ratio:.1f}x | {target} |"
            )
    biggest = max((row["trades"] for row in big["sellers"]), default=0)
    if biggest < TARGET_TRADES:
        lines += [
            "",
            f"The targets are for {TARGET_TRADES:,} trades; this run's biggest seller has "
            f"{biggest:,}, so they are checked there.",
        ]
    fold = big.get("fold")
    if fold is not None:
        lines += [
            "",
            f"Folding the whole imported log into the view (rows and tallies) took "
            f"{fold['seconds']} s for {fold['events']:,} events ({fold['events_per_s']:,}/s).",
        ]
    lines += [
        "",
        "| member | trades | events | import s (events/s) | view rows | view bytes "
        "| tally rows | tally bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for member in [*big["sellers"], *big["buyers"]]:
        lines.append(
            f"| {member['member_id']} | {member['trades']:,} | {member['events']:,} | "
            f"{member['import_seconds']} ({member['import_events_per_s']:,}) | "
            f"{_count(member.get('view_rows'))} | {_count(member.get('view_bytes'))} | "
            f"{_count(member.get('tally_rows'))} | {_count(member.get('tally_bytes'))} |"
        )
    return lines


def _targets(scaling: dict[str, Any]) -> str:
    marks = [f"p99 ≤ {scaling['p99_ratio_max']}x the smallest's: {_met(scaling['p99_ratio_met'])}"]
    if "p99_ms_met" in scaling:
        marks.append(f"p99 ≤ {scaling['p99_ms_max']} ms: {_met(scaling['p99_ms_met'])}")
    return "; ".join(marks)


def _met(met: bool) -> str:
    return "met" if met else "**missed**"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _machine() -> str:
    cores = os.cpu_count()
    return (
        f"{platform.machine()} {cores} cores, Python {sys.version.split()[0]}, {platform.system()}"
    )


# --- Ranking queries over HTTP -----------------------------------------------------------

# How long the workers' benchmark waits for the follower to fold the filled log.
FOLD_SECONDS_MAX = 1800.0
FOLD_CHECK_SECONDS = 0.1  # how often the read models' lags are asked while waiting


def bench_http(url: str, workload: Workload) -> dict[str, Any]:
    """Single penalties and 1,000-seller batches over loopback HTTP, at each concurrency.

    The server is ``trustledger serve`` in its own process, as in production;
    the clients are threads of this one, each with a keep-alive connection, so
    they do not take the server's interpreter lock. All share the machine's
    cores with the store (PostgreSQL's processes, or SQLite inside the server).
    """
    from api.auth import KeyRing, Role  # noqa: PLC0415 - the server of this benchmark only

    app = LedgerApp(url, clock=FixedClock(START + timedelta(days=4000)))
    _fill(app, workload.http_sellers * 2)
    sellers = sorted({m for m in _members(app) if m.startswith("s")})[: workload.http_sellers]
    app.close()
    ring = KeyRing([])
    key = ring.add(Role.RANKING)
    keys_file = Path(f"/tmp/bench-keys-{uuid.uuid4().hex}.json")
    ring.save(keys_file)
    with _Server(url, keys_file) as port:
        # The ranking engine asks over and over: the first ask computes each
        # seller's snapshot, later ones are served from it until a fact or time
        # changes it. Warm once, then time the steady state.
        _warm(port, key, sellers)
        client = _Client(port, key)
        runs = [_http_run(client, sellers, workload, clients) for clients in workload.http_clients]
        client.close()
    keys_file.unlink()
    return {"sellers": len(sellers), "runs": runs}


def bench_workers(url: str, workload: Workload) -> dict[str, Any]:
    """The ranking calls and appends over HTTP against ``serve --workers N``
    beside ``trustledger follow``, for each N, with the load generator's CPU.

    Appends are new trades between members of the filled log, each with its
    own Idempotency-Key; the ceiling they are held against is the same
    server's no-op POST (``/v1/ping``: the key checked, the body read), sent
    the same bodies by as many clients. Each figure starts with every read
    model folded up to the log (a follower still catching up would slow the
    no-op), after one untimed round of appends has let the worker remember
    the members it decides on, as a worker does in steady operation.
    """
    from api.auth import KeyRing, Role  # noqa: PLC0415 - the server of this benchmark only

    app = LedgerApp(url, clock=FixedClock(START + timedelta(days=4000)))
    _fill(app, workload.http_sellers * 2)
    members = _members(app)
    app.close()
    sellers = sorted(m for m in members if m.startswith("s"))[: workload.http_sellers]
    # The simulator's shops, and its other members (ids "<run>-u<n>") as buyers.
    shops = sorted(m for m in members if "-u" not in m)
    buyers = sorted(m for m in members if "-u" in m)
    ring = KeyRing([])
    ranking, service, admin = ring.add(Role.RANKING), ring.add(Role.SERVICE), ring.add(Role.ADMIN)
    keys_file = Path(f"/tmp/bench-keys-{uuid.uuid4().hex}.json")
    ring.save(keys_file)
    runs = []
    try:
        for workers in workload.worker_counts:
            follower, server = _Follower(url), _Server(url, keys_file, workers=workers)
            with follower, server as port:
                _wait_folded(port, admin)
                _warm(port, ranking, sellers)  # the snapshots, as bench_http
                client = _Client(port, ranking)
                queries = [
                    _http_run(client, sellers, workload, clients)
                    for clients in workload.worker_clients
                ]
                client.close()
                cores = _Cores(server=server.pid, follower=follower.pid)
                # Untimed: the members the appends name, remembered by the worker.
                _appends_over_http(
                    _Client(port, service), buyers, shops, workload, cores, tag=f"w{workers}w"
                )
                _wait_folded(port, admin)
                appends = _appends_over_http(
                    _Client(port, service), buyers, shops, workload, cores, tag=f"w{workers}"
                )
                appends["caught_up_seconds"] = _wait_folded(port, admin)
                # The follower on a machine of its own: here, stopped while timed.
                follower.stop()
                apart = _appends_over_http(
                    _Client(port, service), buyers, shops, workload, cores, tag=f"w{workers}a"
                )
            runs.append(
                {
                    "workers": workers,
                    "queries": queries,
                    "appends": appends,
                    "appends_follower_stopped": apart,
                }
            )
    finally:
        keys_file.unlink()
    return {"sellers": len(sellers), "cores": os.cpu_count(), "runs": runs}


class _Cores:
    """CPU time of the processes of a measurement, read from ``/proc`` (Linux):
    a server and a follower with their children, the PostgreSQL server's
    processes (this machine's), and this load generator."""

    TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, *, server: int, follower: int) -> None:
        self.roots = {"server": server, "follower": follower}

    def seconds(self) -> dict[str, float]:
        spent = {name: sum(map(self._cpu, self._tree(pid))) for name, pid in self.roots.items()}
        spent["postgres"] = sum(map(self._cpu, self._named("postgres")))
        spent["load_generator"] = time.process_time()
        return spent

    def _cpu(self, pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0  # gone, or not Linux
        return (int(fields[11]) + int(fields[12])) / self.TICKS  # utime + stime

    def _tree(self, pid: int) -> list[int]:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        try:
            kids = [int(child) for child in children.read_text().split()]
        except OSError:
            kids = []
        return [pid, *(p for kid in kids for p in self._tree(kid))]

    @staticmethod
    def _named(name: str) -> list[int]:
        pids = []
        for entry in Path("/proc").glob("[0-9]*/comm"):
            try:
                if entry.read_text().strip() == name:
                    pids.append(int(entry.parent.name))
            except OSError:
                continue
        return pids


def _appends_over_http(
    client: _Client,
    buyers: list[str],
    sellers: list[str],
    workload: Workload,
    cores: _Cores,
    *,
    tag: str,
) -> dict[str, Any]:
    """New trades at ``append_clients`` against the no-op POST with the same
    bodies, with the cores each process used while the trades were sent."""
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    bodies = [
        msgspec.json.encode(
            {
                "trade_id": f"bench-{tag}-{i}",
                "buyer_id": buyers[i % len(buyers)],
                "seller_id": sellers[(i * 7) % len(sellers)],
                "item_id": f"item-{i % 97}",
                "amount_minor": 5_000,
                "currency": "CNY",
                "goods_kind": "physical",
                "shipping": "express",
                "occurred_at": at,
            }
        )
        for i in range(workload.worker_appends)
    ]
    clients = workload.append_clients
    noop = _parallel(clients, [partial(client.post, "/v1/ping", body) for body in bodies])
    before = cores.seconds()
    appended = _parallel(
        clients,
        [
            partial(client.post, "/v1/trades", body, f"bench-{tag}-{i}")
            for i, body in enumerate(bodies)
        ],
    )
    after = cores.seconds()
    client.close()
    wall = max(appended["seconds"], 1e-9)
    used = {name: round((after[name] - before[name]) / wall, 2) for name in before}
    ratio = appended["events_per_s"] / max(noop["events_per_s"], 1e-9)
    return {
        "clients": clients,
        "trades": appended,
        "noop": noop,
        "ratio": round(ratio, 2),
        "load_generator_cores": used["load_generator"],
        "cores_used": used,
    }


def _api(port: int, key: str) -> TrustLedger:
    """The typed client, for what the benchmark sets up or checks through the
    API; a figure waits for the view to fold up to its position, hence the timeout."""
    return TrustLedger(f"http://127.0.0.1:{port}", key, timeout=60.0)


def _warm(port: int, key: str, sellers: list[str]) -> None:
    """Every seller's penalty asked once, in batches of 1,000, untimed."""
    with _api(port, key) as api:
        for i in range(0, len(sellers), 1000):
            api.get_penalties(sellers[i : i + 1000])


def _wait_folded(port: int, admin_key: str) -> float:
    """Until the follower has brought every read model (the view, the penalty
    feed, the log tree) up to the log's head; how long that took."""
    start = time.monotonic()
    with _api(port, admin_key) as api:
        while time.monotonic() < start + FOLD_SECONDS_MAX:
            try:
                status = api.get_operations_status()
            except Unavailable:  # not ready yet: the view trails by too much
                pass
            else:
                if all(model.lag_events == 0 for model in status.projections):
                    return round(time.monotonic() - start, 2)
            time.sleep(FOLD_CHECK_SECONDS)
    raise RuntimeError("the follower did not fold the log in time")


class _Follower:
    """``trustledger follow`` in a child process, until the block ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> None:
        command = [sys.executable, "-m", "tools.cli", "--database-url", self.url, "follow"]
        self.process = subprocess.Popen([*command, "--no-deadline-worker"])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the follower has not started")
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def __exit__(self, *_: object) -> None:
        self.stop()


def _http_run(
    client: _Client, sellers: list[str], workload: Workload, clients: int
) -> dict[str, Any]:
    n = workload.http_requests
    first = sellers[:1000]
    singles = _parallel(
        clients, [partial(client.single, sellers[i % len(sellers)]) for i in range(n)]
    )
    batches = _parallel(clients, [partial(client.batch, first) for _ in range(max(n // 20, 10))])
    return {
        "clients": clients,
        "single": {**singles, "requests_per_s": singles.pop("events_per_s")},
        "batch_1000": {**batches, "requests_per_s": batches.pop("events_per_s")},
    }


class _Server:
    """``trustledger serve`` in a child process, until the block ends.

    Given a time, the same server runs on a clock standing at it (the command
    line has no such option): a log made for that clock is then read as of it.
    """

    def __init__(
        self,
        url: str,
        keys_file: Path,
        clock_at: datetime | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self.url, self.keys_file, self.clock_at = url, keys_file, clock_at
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if self.clock_at is None:
            command = [sys.executable, "-m", "tools.cli", "--database-url", self.url, "serve"]
            command += ["--port", str(port), "--keys-file", str(self.keys_file)]
            command += ["--no-deadline-worker", "--log-level", "warning"]
            if self.workers is not None:
                command += ["--workers", str(self.workers)]
        else:
            command = [sys.executable, "-c", SERVE_AT_CHILD, self.url, str(port)]
            command += [str(self.keys_file), self.clock_at.isoformat()]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + SERVER_START_SECONDS_MAX
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return port
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start in time")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server has not started")
        return self.process.pid

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


class _Client:
    """One keep-alive connection per client thread, as an HTTP client pool holds.

    The load generator: it measures the server's throughput and latency, so the
    measuring client must cost as little as possible (set-up and checks use ``_api``).
    """

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.local = threading.local()
        self.connections: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def single(self, seller: str) -> None:
        self._request("GET", f"/v1/sellers/{seller}/penalty")

    def get(self, path: str) -> None:
        self._request("GET", path)

    def batch(self, sellers: list[str]) -> None:
        self._request("POST", "/v1/penalties/batch", msgspec.json.encode({"seller_ids": sellers}))

    def post(self, path: str, body: bytes, key: str | None = None) -> None:
        self._request("POST", path, body, {"Idempotency-Key": key} if key else None)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not hasattr(self.local, "conn"):
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.connections.append(self.local.conn)
        self.local.conn.request(
            method, path, body=body, headers={**self.headers, **(headers or {})}
        )
        response = self.local.conn.getresponse()
        response.read()
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{method} {path}: {response.status}")


# ``trustledger serve --no-deadline-worker`` (argv: database URL, port, keys
# file), on a clock standing at argv[4].
SERVE_AT_CHILD = """
import sys
from datetime import datetime
from pathlib import Path
import uvicorn
from api.main import create_app
from api.settings import Settings
from ledger.clock import FixedClock
from tools.runtime import tune_garbage_collector
url, port, keys_file, now = sys.argv[1:]
tune_garbage_collector()
settings = Settings.from_environment(
    database_url=url, keys_file=Path(keys_file), deadline_worker=False
)
app = create_app(settings, clock=FixedClock(datetime.fromisoformat(now)))
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
"""


def _members(app: LedgerApp) -> list[str]:
    from ledger.events import MemberRegistered  # noqa: PLC0415

    return [
        event.member_id
        for event in (app.decode(n) for n in app.iter_log())
        if isinstance(event, MemberRegistered)
    ]


# --- Memory ------------------------------------------------------------------------------


def bench_memory(store: Store, small_trades: int, large_trades: int) -> dict[str, Any]:
    """Peak RSS of a rebuild of a small and a 4x larger log, each in a fresh process."""
    figures = {}
    for label, trades in (("small", small_trades), ("large", large_trades)):
        with store.scratch() as url:
            app = LedgerApp(url, clock=FixedClock(START + timedelta(days=4000)))
            events = _fill(app, trades)
            app.close()
            child = subprocess.run(
                [sys.executable, "-c", REBUILD_CHILD, url],
                capture_output=True,
                text=True,
                check=True,
                timeout=3600,
            )
            figures[label] = {
                "events": events,
                "peak_rss_mib": round(int(child.stdout.strip()) / 1024, 1),
            }
    ratio = figures["large"]["peak_rss_mib"] / figures["small"]["peak_rss_mib"]
    return {**figures, "ratio": round(ratio, 2)}


# Rebuilds the view of the log at argv[1] and prints its peak RSS in KiB. VmHWM,
# not ru_maxrss: the latter survives exec and would report the forked parent's size.
REBUILD_CHILD = """
import sys
from ledger.app import LedgerApp
from projections.runner import Runner
from projections.views import open_view
app = LedgerApp(sys.argv[1])
view = open_view(sys.argv[1], version=99)
Runner(app, view).catch_up()
view.close()
app.close()
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


# --- Bulk import -------------------------------------------------------------------------


def bench_import(store: Store, trades: int) -> dict[str, Any]:
    """``trustledger import`` of an export vs a raw bulk write of the same rows
    into a plain table: COPY on PostgreSQL, one transaction of INSERTs on SQLite."""
    from ledger.log_line import LogLine  # noqa: PLC0415
    from ledger.transfer import export_log, import_log  # noqa: PLC0415
    from tools.simulator import SimulationConfig, simulate  # noqa: PLC0415 - bench only

    clock = FixedClock(START + timedelta(days=4000))
    source = LedgerApp("memory:", clock=clock)
    simulate(
        source, SimulationConfig(members=max(200, trades // 10), trades=trades, days=365, seed=7)
    )
    export = io.BytesIO()
    export_log(source, export)
    source.close()
    # Each side holds only its own input while it is timed: the export here,
    # then the same stored rows (an export line's body is the stored state).
    with store.scratch() as url:
        target = LedgerApp(url, clock=clock)
        export.seek(0)
        _checkpoint(url)
        _settle_heap()
        started = time.perf_counter()
        events = import_log(target, export).events
        ours = events / (time.perf_counter() - started)
        target.close()
    lines = msgspec.json.Decoder(LogLine)
    rows = [
        (line.originator_id, line.originator_version, line.topic, bytes(line.body))
        for line in map(lines.decode, export.getvalue().splitlines())
    ]
    del export
    with store.scratch() as url:
        place = place_of(url)
        if place.kind == "sqlite":
            baseline, theirs = "INSERT into a plain table", _plain_inserts(place.path, rows)
        else:
            baseline, theirs = "COPY into a plain table", _plain_copy(url, rows)
    return {
        "events": events,
        "trustledger_events_per_s": round(ours),
        "baseline": baseline,
        "baseline_rows_per_s": round(theirs),
        "ratio": round(ours / theirs, 3),
    }


PlainRow = tuple[uuid.UUID, int, str, bytes]


def _plain_copy(url: str, rows: list[PlainRow]) -> float:
    """Rows a second COPY writes into a plain table shaped as the log's."""
    schema = place_of(url).schema
    with psycopg.connect(place_of(url).conninfo) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.plain (originator_id uuid, originator_version bigint, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(f"CREATE UNIQUE INDEX ON {schema}.plain (notification_id)")
        conn.commit()
        _checkpoint(url)
        _settle_heap()
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(
                f"COPY {schema}.plain (originator_id, originator_version, topic, state) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def _plain_inserts(path: str, rows: list[PlainRow]) -> float:
    """Rows a second one transaction of INSERTs writes into a plain SQLite
    table shaped as the log's (SQLite has no COPY)."""
    with _sqlite(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE plain (notification_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, topic TEXT NOT NULL, "
            "state BLOB NOT NULL, UNIQUE (originator_id, originator_version))"
        )
        _settle_heap()
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO plain (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
            ((str(oid), version, topic, state) for oid, version, topic, state in rows),
        )
        conn.execute("COMMIT")
        return len(rows) / (time.perf_counter() - started)


# --- Big sellers -------------------------------------------------------------------------

# The clock of the big members' ledger and of its server: their business
# times run over the years before it (``tools.big_sellers``).
BIG_CLOCK = START + timedelta(days=big_sellers.PERIOD_DAYS + big_sellers.QUIET_DAYS)
BIG_SAMPLES_MIN = 5
AS_OF_DAYS_BACK = 90
# What each figure should come to once it no longer reads a member's whole
# history: at TARGET_TRADES, a p99 within TARGET_P99_RATIO_MAX of the smallest
# size's, and credit within TARGET_CREDIT_P99_MS.
TARGET_TRADES = 1_000_000
TARGET_P99_RATIO_MAX = 1.5
TARGET_CREDIT_P99_MS = 5.0
# The buyer of the trades rated during the run, one per penalty answer.
PROBE_BUYER = "big-probe-buyer"
BIG_FIGURES = {
    "credit": "credit (seller)",
    "dsr": "DSR",
    "credit_as_of_90_days": f"credit as of {AS_OF_DAYS_BACK} days before",
    "penalty_after_rating": "penalty just after a new rating",
    "buyer_history": "buyer history",
}


def bench_big_sellers(store: Store, workload: Workload) -> dict[str, Any]:
    """Each figure of members with ever more trades, over HTTP: what a history costs.

    The members' logs (``tools.big_sellers``) go in through the checked bulk
    import, each timed on its own. A server on the log's clock then answers
    one client, each figure several times after one answer that warms it up
    (``_answers``). A penalty is served from a snapshot until a fact about the
    seller lands, so each timed penalty follows a newly rated trade of that
    seller, appended (and folded into the view) before the timer starts.
    """
    clock = FixedClock(BIG_CLOCK)
    with store.scratch() as url:
        app = LedgerApp(url, clock=clock)
        market = big_sellers.BigMarket(
            app.book, clock.now(), sellers=workload.big_sellers, buyers=workload.big_buyers
        )
        members = _timed_import(app, market.members(), url)
        sellers = [
            {
                "trades": trades,
                "member_id": big_sellers.seller_id(trades),
                **_timed_import(app, market.seller_log(trades), url),
            }
            for trades in workload.big_sellers
        ]
        buyers = [
            {
                "trades": trades,
                "member_id": big_sellers.buyer_id(trades),
                **_timed_import(app, market.buyer_log(trades), url),
            }
            for trades in workload.big_buyers
        ]
        folded = _timed_fold(app, url)
        figures = _big_figures(url, workload, _NewRatings(app))
        app.close()
        for seller in sellers:
            seller.update(_view_bytes(url, seller["member_id"]))
    return {
        "clock": BIG_CLOCK.isoformat(),
        "period_days": big_sellers.PERIOD_DAYS,
        "fold": folded,
        "members": members,
        "sellers": sellers,
        "buyers": buyers,
        "figures": figures,
        "scaling": _scaling(figures),
    }


def _timed_fold(app: LedgerApp, url: str) -> dict[str, Any]:
    """Fold the whole imported log into the view (rows and tallies) before any
    server starts: a server folds what it lacks before it listens, and a big
    log would outlast its start-up limit."""
    view = open_view(url)
    try:
        started = time.perf_counter()
        Runner(app, view).catch_up()
        seconds = time.perf_counter() - started
        events = view.position()
    finally:
        view.close()
    return {"events": events, "seconds": round(seconds, 1), "events_per_s": round(events / seconds)}


def _timed_import(app: LedgerApp, events: Iterable[Event], url: str) -> dict[str, Any]:
    """Write a log's lines to a scratch file, then time their checked import alone."""
    from ledger.transfer import import_log  # noqa: PLC0415 - as the other bulk sections

    with tempfile.TemporaryFile() as lines:
        started = time.perf_counter()
        big_sellers.write_log(events, lines)
        made = time.perf_counter() - started
        lines.seek(0)
        _checkpoint(url)
        _settle_heap()
        started = time.perf_counter()
        report = import_log(app, lines)
        seconds = time.perf_counter() - started
    return {
        "events": report.events,
        "made_seconds": round(made, 2),
        "import_seconds": round(seconds, 2),
        "import_events_per_s": round(report.events / seconds),
    }


class _NewRatings:
    """A new trade of a seller, rated by its buyer, whose rating the server's view holds."""

    def __init__(self, app: LedgerApp) -> None:
        self.app = app
        self.made = 0
        joined = app.clock.now() - timedelta(days=30)
        app.register_member(
            c.RegisterMember(member_id=PROBE_BUYER, occurred_at=joined),
            Origin("bench", f"register-{PROBE_BUYER}"),
        )

    def rate(self, api: TrustLedger, seller: str) -> None:
        self.made += 1
        trade_id = f"{PROBE_BUYER}-T{self.made:05d}"
        # A minute apart, the day before the clock: after every imported fact of the trade.
        at = self.app.clock.now() - timedelta(days=1) + timedelta(minutes=self.made)
        app, step = self.app, timedelta(seconds=1)

        def origin(name: str) -> Origin:
            return Origin("bench", f"{trade_id}-{name}")

        app.create_trade(
            c.CreateTrade(
                trade_id=trade_id,
                buyer_id=PROBE_BUYER,
                seller_id=seller,
                item_id=f"{seller}-item0000",
                amount_minor=5_000,
                currency=app.book.policy.currency,
                goods_kind="physical",
                shipping="express",
                occurred_at=at,
            ),
            origin("create"),
        )
        app.pay_into_escrow(
            c.PayIntoEscrow(trade_id=trade_id, occurred_at=at + step), origin("pay")
        )
        app.ship_trade(c.ShipTrade(trade_id=trade_id, occurred_at=at + 2 * step), origin("ship"))
        app.confirm_receipt(
            c.ConfirmReceipt(trade_id=trade_id, occurred_at=at + 3 * step), origin("confirm")
        )
        rated = app.give_rating(
            c.GiveRating(
                trade_id=trade_id, rater="buyer", score="positive", occurred_at=at + 4 * step
            ),
            origin("rate"),
        )
        # A small member's figure asked at the rating's position: the server
        # folds the log up to it first, so the seller's snapshot is outdated.
        api.get_credit(PROBE_BUYER, role="buyer", min_position=rated.positions[-1])


def _big_figures(url: str, workload: Workload, ratings: _NewRatings) -> list[dict[str, Any]]:
    """p50 and p99 of every figure at every size, from a server on the log's clock."""
    from api.auth import KeyRing, Role  # noqa: PLC0415 - the server of this benchmark only

    ring = KeyRing([])
    key = ring.add(Role.READER)
    keys_file = Path(f"/tmp/bench-keys-{uuid.uuid4().hex}.json")
    ring.save(keys_file)
    as_of = quote((BIG_CLOCK - timedelta(days=AS_OF_DAYS_BACK)).isoformat())
    rows: list[dict[str, Any]] = []
    try:
        with _Server(url, keys_file, BIG_CLOCK) as port, _api(port, key) as api:
            client = _Client(port, key)
            for trades in workload.big_sellers:
                seller = big_sellers.seller_id(trades)
                asked: dict[str, tuple[str, Callable[[], None] | None]] = {
                    "credit": (f"/v1/members/{seller}/credit", None),
                    "dsr": (f"/v1/sellers/{seller}/dsr", None),
                    "credit_as_of_90_days": (f"/v1/members/{seller}/credit?as_of={as_of}", None),
                    "penalty_after_rating": (
                        f"/v1/sellers/{seller}/penalty",
                        partial(ratings.rate, api, seller),
                    ),
                }
                for figure, (path, before) in asked.items():
                    answers = _answers(partial(client.get, path), workload, before)
                    rows.append({"figure": figure, "trades": trades, **answers})
            for trades in workload.big_buyers:
                path = f"/v1/buyers/{big_sellers.buyer_id(trades)}/history"
                answers = _answers(partial(client.get, path), workload)
                rows.append({"figure": "buyer_history", "trades": trades, **answers})
            client.close()
    finally:
        keys_file.unlink()
    return rows


def _answers(
    ask: Callable[[], None], workload: Workload, before: Callable[[], None] | None = None
) -> dict[str, Any]:
    """p50 and p99 of one figure's answers; ``before`` runs ahead of each, untimed.

    The first answer is not counted: it warms the server's code paths and
    PostgreSQL's cache. Then up to ``big_samples`` answers are timed, fewer
    (but at least BIG_SAMPLES_MIN) once they took ``big_figure_seconds``: a
    member whose answer takes seconds gets fewer samples.
    """
    if before is not None:
        before()
    ask()
    latencies: list[float] = []
    ends = time.perf_counter() + workload.big_figure_seconds
    while len(latencies) < workload.big_samples and (
        len(latencies) < BIG_SAMPLES_MIN or time.perf_counter() < ends
    ):
        if before is not None:
            before()
        started = time.perf_counter()
        ask()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {
        "samples": len(latencies),
        "p50_ms": round(_quantile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
    }


def _scaling(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure's p99 at its biggest size against its smallest, held to the targets."""
    rows = []
    for figure in BIG_FIGURES:
        sized = sorted((r for r in figures if r["figure"] == figure), key=lambda r: r["trades"])
        if len(sized) < 2:
            continue
        smallest, biggest = sized[0], sized[-1]
        ratio = biggest["p99_ms"] / max(smallest["p99_ms"], 0.01)
        row: dict[str, Any] = {
            "figure": figure,
            "smallest": smallest["trades"],
            "biggest": biggest["trades"],
            "p99_ratio": round(ratio, 2),
            "p99_ratio_max": TARGET_P99_RATIO_MAX,
            "p99_ratio_met": ratio <= TARGET_P99_RATIO_MAX,
        }
        if figure == "credit":
            row["p99_ms_max"] = TARGET_CREDIT_P99_MS
            row["p99_ms_met"] = biggest["p99_ms"] <= TARGET_CREDIT_P99_MS
        rows.append(row)
    return rows


def _view_bytes(url: str, member_id: str) -> dict[str, int]:
    """The rows the reputation view keeps about a seller, and their bodies' stored size.

    The seller's own row, its trades and the complaints against it, the mark
    of its last change and its penalty snapshots; then, apart, the month and
    day rows of its tallies (every figure, role and tallied rulebook). The
    size is what the store keeps: ``pg_column_size`` on PostgreSQL
    (compressed, if it compressed the body), the body's ``length`` on SQLite
    (which stores it as it is).
    """
    view = open_view(url)
    try:
        if not isinstance(view, SqlView):
            raise TypeError("the benchmark's view lives in SQLite or PostgreSQL")
        version = view.version
    finally:
        view.close()
    place = place_of(url)
    on_postgres = place.kind == "postgresql"
    size = "pg_column_size(body)" if on_postgres else "length(body)"
    # The seller of a snapshot key, "<rulebook>|<seller>".
    keyed = (
        "split_part(snapshot_key, '|', 2)"
        if on_postgres
        else "substr(snapshot_key, instr(snapshot_key, '|') + 1)"
    )
    m, k = ("%(m)s", "%(k)s") if on_postgres else (":m", ":k")
    prefix = f'"{place.schema}".rv{version}_' if on_postgres else f"rv{version}_"
    statement = (
        f"SELECT count(*), coalesce(sum({size}), 0) FROM ("
        f"SELECT body FROM {prefix}members WHERE member_id = {m} "
        f"UNION ALL SELECT body FROM {prefix}trades WHERE seller_id = {m} "
        f"UNION ALL SELECT body FROM {prefix}complaints WHERE seller_id = {m} "
        f"UNION ALL SELECT body FROM {prefix}touched WHERE seller_id = {m} "
        f"UNION ALL SELECT body FROM {prefix}snapshots WHERE {keyed} = {m}"
        ") AS seller_rows"
    )
    # The seller's tallies: every tally key ends in "|<member id>".
    tallies = (
        f"SELECT count(*), coalesce(sum({size}), 0) FROM ("
        f"SELECT body FROM {prefix}tally_months WHERE tally LIKE {k} "
        f"UNION ALL SELECT body FROM {prefix}tally_days WHERE tally LIKE {k}) AS tally_rows"
    )
    asked = {"m": member_id, "k": f"%|{member_id}"}
    if on_postgres:
        with psycopg.connect(place.conninfo) as conn:
            row = conn.execute(statement, asked).fetchone()
            kept = conn.execute(tallies, asked).fetchone()
    else:
        with _sqlite(place.path) as lite:
            row = lite.execute(statement, asked).fetchone()
            kept = lite.execute(tallies, asked).fetchone()
    if row is None or kept is None:
        raise RuntimeError("the view size query returned no row")
    return {
        "view_rows": int(row[0]),
        "view_bytes": int(row[1]),
        "tally_rows": int(kept[0]),
        "tally_bytes": int(kept[1]),
    }


SECTION_RUNS: dict[str, Callable[[Store, Workload], Any]] = {
    "appends": _appends,
    "import": _import,
    "rebuild": _rebuild,
    "http": _http,
    "workers": _workers,
    "memory": _memory,
    "big_sellers": bench_big_sellers,
}
