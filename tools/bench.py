"""`trustledger bench`: TrustLedger side by side with its baselines, in the same run.

Every figure is measured on PostgreSQL against a baseline doing the same work
with the same number of clients: appends vs the eventsourcing library's plain
``repository.get`` + ``save``; the projection rebuild vs a raw ``SELECT`` of the
same log with msgspec decoding and no folding; ranking queries over HTTP. The
results go to ``bench/results.json`` and ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger import commands as c
from ledger.app import LedgerApp, Origin
from ledger.clock import FixedClock
from ledger.codec import decode_event
from projections.connections import place_of
from projections.runner import Runner
from projections.views import open_view

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
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


QUICK = Workload(
    "quick",
    memory_trades=2_000,
    commands=2_000,
    clients=(1, 32),
    rebuild_trades=4_000,
    http_sellers=1_000,
    http_requests=300,
    http_clients=(1, 8),
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
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="benchmarks beside their baselines (PostgreSQL)")
    bench.add_argument("--quick", action="store_true", help="CI-sized: under two minutes")
    bench.add_argument(
        "--postgres", default=os.environ.get("TRUSTLEDGER_BENCH_POSTGRES", DEFAULT_POSTGRES)
    )
    bench.add_argument("--out", type=Path, default=Path("bench"))


def run(args: argparse.Namespace) -> int:
    workload = QUICK if args.quick else FULL
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "workload": msgspec.to_builtins(workload),
        "postgres": args.postgres,
    }
    results["appends"] = []
    for clients in workload.clients:
        with _schema(args.postgres) as url:
            results["appends"].append(bench_appends(url, workload, clients))
    results["import"] = bench_import(args.postgres, workload.rebuild_trades)
    with _schema(args.postgres) as url:
        results["rebuild"] = bench_rebuild(url, workload)
    with _schema(args.postgres) as url:
        results["http"] = bench_http(url, workload)
    results["memory"] = bench_memory(
        args.postgres, workload.memory_trades, 4 * workload.memory_trades
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(results)) + b"\n"
    )
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


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

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                call = queue.pop()
            started = time.perf_counter()
            call()
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
    place = place_of(url)
    conninfo, schema = place.conninfo, place.schema
    started = time.perf_counter()
    decoded = 0
    with psycopg.connect(conninfo) as conn, conn.cursor(name="raw") as cursor:
        cursor.itersize = 10_000
        cursor.execute(f'SELECT state FROM "{schema}".trustledger_events ORDER BY notification_id')
        for (state,) in cursor:
            decode_event(state)
            decoded += 1
    theirs = decoded / (time.perf_counter() - started)
    return {
        "events": events,
        "trustledger_events_per_s": round(ours),
        "raw_read_decode_events_per_s": round(theirs),
        "ratio": round(ours / theirs, 3),
    }


def _settle_database(url: str) -> None:
    """Let PostgreSQL finish with the fill (statistics, dirty pages) before either side is timed."""
    place = place_of(url)
    conninfo, schema = place.conninfo, place.schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".trustledger_events')
        conn.execute("CHECKPOINT")


def _checkpoint(conninfo: str) -> None:
    """Write out dirty pages, so a timed write does not pay for the one before it."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
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
    lines = [
        f"Measured {results['date']} on {results['machine']} ({results['workload']['name']} workload).",
        "",
        "| figure | TrustLedger | baseline | ratio |",
        "|---|---|---|---|",
    ]
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
            f"{imported['copy_rows_per_s']:,} (COPY into a plain table) | {imported['ratio']}x |"
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
    return "\n".join(lines) + "\n"


def _machine() -> str:
    cores = os.cpu_count()
    return (
        f"{platform.machine()} {cores} cores, Python {sys.version.split()[0]}, {platform.system()}"
    )


class _schema:
    """A fresh PostgreSQL schema for one benchmark, dropped afterwards."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.name = f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        return f"{self.conninfo}?schema={self.name}&pool_size=8&max_overflow=32"

    def __exit__(self, *_: object) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")


# --- Ranking queries over HTTP -----------------------------------------------------------


def bench_http(url: str, workload: Workload) -> dict[str, Any]:
    """Single penalties and 1,000-seller batches over loopback HTTP, at each concurrency.

    The server is ``trustledger serve`` in its own process, as in production;
    the clients are threads of this one, each with a keep-alive connection, so
    they do not take the server's interpreter lock. All share the machine's
    cores with PostgreSQL.
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
        client = _Client(port, key)
        # The ranking engine asks over and over: the first ask computes each
        # seller's snapshot, later ones are served from it until a fact or time
        # changes it. Warm once, then time the steady state.
        for i in range(0, len(sellers), 1000):
            client.batch(sellers[i : i + 1000])
        runs = [_http_run(client, sellers, workload, clients) for clients in workload.http_clients]
        client.close()
    keys_file.unlink()
    return {"sellers": len(sellers), "runs": runs}


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
    """``trustledger serve`` in a child process, until the block ends."""

    def __init__(self, url: str, keys_file: Path) -> None:
        self.url, self.keys_file = url, keys_file
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        command = [sys.executable, "-m", "tools.cli", "--database-url", self.url, "serve"]
        command += ["--port", str(port), "--keys-file", str(self.keys_file)]
        command += ["--no-deadline-worker", "--log-level", "warning"]
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

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


class _Client:
    """One keep-alive connection per client thread, as an HTTP client pool holds."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.local = threading.local()
        self.connections: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def single(self, seller: str) -> None:
        self._request("GET", f"/v1/sellers/{seller}/penalty")

    def batch(self, sellers: list[str]) -> None:
        self._request("POST", "/v1/penalties/batch", msgspec.json.encode({"seller_ids": sellers}))

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def _request(self, method: str, path: str, body: bytes | None = None) -> None:
        if not hasattr(self.local, "conn"):
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.connections.append(self.local.conn)
        self.local.conn.request(method, path, body=body, headers=self.headers)
        response = self.local.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status}")


def _members(app: LedgerApp) -> list[str]:
    from ledger.events import MemberRegistered  # noqa: PLC0415

    return [
        event.member_id
        for event in (app.decode(n) for n in app.iter_log())
        if isinstance(event, MemberRegistered)
    ]


# --- Memory ------------------------------------------------------------------------------


def bench_memory(postgres: str, small_trades: int, large_trades: int) -> dict[str, Any]:
    """Peak RSS of a rebuild of a small and a 4x larger log, each in a fresh process."""
    figures = {}
    for label, trades in (("small", small_trades), ("large", large_trades)):
        with _schema(postgres) as url:
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


def bench_import(postgres: str, trades: int) -> dict[str, Any]:
    """``trustledger import`` of an export vs a raw COPY of the same rows into a plain table."""
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
    with _schema(postgres) as url:
        target = LedgerApp(url, clock=clock)
        export.seek(0)
        _checkpoint(postgres)
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
    with _schema(postgres) as url:
        schema = place_of(url).schema
        with psycopg.connect(postgres) as conn:
            conn.execute(
                f"CREATE TABLE {schema}.plain (originator_id uuid, originator_version bigint, topic text, "
                "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
            )
            conn.execute(f"CREATE UNIQUE INDEX ON {schema}.plain (notification_id)")
            conn.commit()
            _checkpoint(postgres)
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
            theirs = len(rows) / (time.perf_counter() - started)
    return {
        "events": events,
        "trustledger_events_per_s": round(ours),
        "copy_rows_per_s": round(theirs),
        "ratio": round(ours / theirs, 3),
    }
