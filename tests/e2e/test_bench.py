"""CI runs `trustledger bench --quick` only to prove it works; its figures are not asserted."""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger.app import LedgerApp
from ledger.clock import FixedClock
from ledger.log_line import LogLine
from ledger.transfer import import_log
from tests.conftest import POSTGRES_URL
from tools import bench
from tools.big_sellers import BigMarket, seller_id, write_log
from tools.cli import main

SELLER_FIGURES = ("credit", "dsr", "credit_as_of_90_days", "penalty_after_rating")


@pytest.mark.postgres
def test_the_quick_benchmark_runs_and_writes_its_results(
    postgres_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--quick", "--postgres", POSTGRES_URL, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["workload"]["name"] == "quick"
    assert results["store"]["kind"] == "postgresql"
    assert results["skipped"] == {}
    for figure in ("appends", "import", "rebuild", "http", "workers", "memory", "big_sellers"):
        assert figure in results
    assert results["import"]["baseline"] == "COPY into a plain table"
    assert [row["clients"] for row in results["appends"]] == [1, 32]
    table = (tmp_path / "results.md").read_text()
    assert f"on PostgreSQL {results['store']['version']} (a fresh schema per figure)" in table
    assert "Skipped" not in table
    assert "| appends, 32 client(s)" in table
    assert "rebuild of" in table
    assert [run["clients"] for run in results["http"]["runs"]] == [1, 8]
    assert "| HTTP batch_1000 penalty, 8 client(s)" in table
    workers = results["workers"]
    assert [run["workers"] for run in workers["runs"]] == [1, 2]
    for run in workers["runs"]:
        assert [query["clients"] for query in run["queries"]] == [1, 4]
        for appends in (run["appends"], run["appends_follower_stopped"]):
            assert appends["clients"] == 32
            assert appends["trades"]["events_per_s"] > 0 and appends["noop"]["events_per_s"] > 0
            assert appends["load_generator_cores"] >= 0
            assert set(appends["cores_used"]) == {
                "server",
                "follower",
                "postgres",
                "load_generator",
            }
            assert appends["cores_used"]["server"] > 0  # read from /proc, where it ran
        assert run["appends"]["cores_used"]["follower"] > 0
        assert run["appends_follower_stopped"]["cores_used"]["follower"] == 0
    assert "| HTTP appends, 2 worker(s), follower beside, 32 clients" in table
    assert "| HTTP appends, 2 worker(s), follower stopped, 32 clients" in table
    _assert_big_members(results["big_sellers"], table)
    capsys.readouterr()


def _assert_big_members(big: dict[str, Any], table: str) -> None:
    """Every figure at every quick size, with the set-up figures; no timing is asserted."""
    assert [seller["trades"] for seller in big["sellers"]] == [1_000, 10_000]
    assert [buyer["trades"] for buyer in big["buyers"]] == [100, 1_000]
    for member in [*big["sellers"], *big["buyers"]]:
        assert member["events"] > 5 * member["trades"]
        assert member["import_seconds"] > 0
    for seller in big["sellers"]:
        # Its trades (and the few rated during the run), its own row and more.
        assert seller["view_rows"] > seller["trades"]
        assert seller["view_bytes"] > 100 * seller["trades"]
        # Tallies: month rows over three years and day rows, for every figure
        # and rulebook; more trades a day make bigger day rows, not more rows.
        assert 0 < seller["tally_rows"] < 5 * 2 * (37 + 3 * 365)
    small, big_one = big["sellers"]
    assert big_one["tally_rows"] < 2 * small["tally_rows"]
    asked = Counter((row["figure"], row["trades"]) for row in big["figures"])
    expected = [(f, n) for f in SELLER_FIGURES for n in (1_000, 10_000)]
    assert asked == Counter([*expected, ("buyer_history", 100), ("buyer_history", 1_000)])
    for row in big["figures"]:
        assert row["samples"] == bench.QUICK.big_samples
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    scaling = {row["figure"]: row for row in big["scaling"]}
    assert list(scaling) == [*SELLER_FIGURES, "buyer_history"]
    assert {(row["smallest"], row["biggest"]) for row in big["scaling"]} == {
        (1_000, 10_000),
        (100, 1_000),
    }
    assert all(isinstance(row["p99_ratio_met"], bool) for row in big["scaling"])
    assert isinstance(scaling["credit"]["p99_ms_met"], bool)
    assert "| credit (seller) | 10,000 |" in table
    assert "| penalty just after a new rating | 1,000 |" in table
    assert "| buyer history | 1,000 |" in table
    assert "| big-seller-10000 | 10,000 |" in table


def test_without_postgres_the_benchmark_measures_on_scratch_sqlite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import section, scaled down, on the embedded default; workers are skipped, saying why."""
    monkeypatch.delenv("TRUSTLEDGER_BENCH_POSTGRES", raising=False)
    monkeypatch.setattr(bench, "QUICK", msgspec.structs.replace(bench.QUICK, rebuild_trades=300))
    scratch = tmp_path / "temp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the scratch files go
    out = tmp_path / "out"
    argv = ["bench", "--quick", "--only", "import", "workers", "--out", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["store"]["kind"] == "sqlite"
    assert results["sections"] == ["import"]
    assert "workers" not in results and "postgres" not in results
    assert "PostgreSQL" in results["skipped"]["workers"]
    imported = results["import"]
    assert imported["events"] > 5 * 300
    assert imported["baseline"] == "INSERT into a plain table"
    assert imported["trustledger_events_per_s"] > 0 and imported["baseline_rows_per_s"] > 0
    table = (out / "results.md").read_text()
    assert f"on SQLite {results['store']['version']} (scratch files)" in table
    assert f"Skipped on SQLite: workers, as {results['skipped']['workers']}." in table
    assert "(INSERT into a plain table)" in table
    assert f"workers: skipped on SQLite: {results['skipped']['workers']}" in capsys.readouterr().err
    assert list(scratch.iterdir()) == []  # every scratch file removed


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["--database-url", "memory:", "bench"], "not on --database-url"),
        (["bench", "--database-url", "postgresql://u@h/db"], "not on --database-url"),
        (["bench", "--postgres", "sqlite:///x.db"], "expected postgresql://"),
    ],
)
def test_the_benchmark_measures_only_on_stores_of_its_own(
    argv: list[str], refusal: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert refusal in capsys.readouterr().err


def test_a_big_sellers_log_passes_the_checked_import_and_is_the_same_each_time() -> None:
    clock = datetime(2028, 1, 6, tzinfo=UTC)
    app = LedgerApp("memory:", clock=FixedClock(clock))
    market = BigMarket(app.book, clock, sellers=[300], buyers=[50])
    logs = []
    for events in (market.members(), market.seller_log(300), market.buyer_log(50)):
        lines = io.BytesIO()
        written = write_log(events, lines)
        logs.append(lines.getvalue())
        lines.seek(0)
        assert import_log(app, lines).events == written
    again = BigMarket(app.book, clock, sellers=[300], buyers=[50])
    lines = io.BytesIO()
    write_log(again.seller_log(300), lines)
    assert lines.getvalue() == logs[1]
    decode = msgspec.json.Decoder(LogLine).decode
    topics = Counter(decode(line).topic.split(".")[1] for line in logs[1].splitlines())
    assert topics["trade"] > 4 * 300  # created, paid, shipped, confirmed, released
    assert topics["rating"] > 300
    trade = app.trade(f"{seller_id(300)}-T0000001")
    assert trade is not None
    assert trade.seller_id == seller_id(300)
    app.close()


ON_POSTGRES = ["--postgres", "postgresql://bench@127.0.0.1:5432/bench"]


@pytest.mark.parametrize(
    ("argv", "written_to"),
    [
        (["bench", *ON_POSTGRES, "--quick"], "scratch"),
        (["bench", *ON_POSTGRES, "--only", "import", "big_sellers"], "scratch"),
        (["bench", *ON_POSTGRES, "--big-sellers", "1000", "100000"], "scratch"),
        (["bench", *ON_POSTGRES, "--big-buyers", "1000"], "scratch"),
        (["bench", *ON_POSTGRES, "--quick", "--out", "chosen"], "chosen"),
        (["bench", "--quick"], "scratch"),
        (["bench"], "scratch"),
        (["bench", "--out", "chosen"], "chosen"),
        (["bench", *ON_POSTGRES], "bench"),
    ],
)
def test_only_a_full_run_of_every_section_on_postgres_writes_the_committed_results(
    argv: list[str],
    written_to: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[str] = []

    def section(name: str) -> Any:
        def measure(store: bench.Store, workload: bench.Workload) -> Any:
            ran.append(name)
            return [] if name == "appends" else {}

        return measure

    def described(store: bench.Store) -> dict[str, str]:  # no server to ask
        name = "SQLite" if store.kind == "sqlite" else "PostgreSQL"
        return {"kind": store.kind, "name": name, "version": "0"}

    monkeypatch.delenv("TRUSTLEDGER_BENCH_POSTGRES", raising=False)
    monkeypatch.setattr(bench, "SECTION_RUNS", {name: section(name) for name in bench.SECTIONS})
    monkeypatch.setattr(bench.Store, "describe", described)
    monkeypatch.setattr(bench, "SCRATCH_OUT", tmp_path / "scratch")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    written = {path.relative_to(tmp_path).parent for path in tmp_path.rglob("results.json")}
    partial = Path("chosen" if "--out" in argv else "scratch") / "partial"
    assert written == {Path(written_to), partial}
    only = argv[argv.index("--only") + 1 :] if "--only" in argv else list(bench.SECTIONS)
    on_sqlite = "--postgres" not in argv
    skipped = [name for name in only if on_sqlite and name in bench.SQLITE_SKIPS]
    measured = [name for name in only if name not in skipped]
    assert ran == measured
    kept = json.loads((tmp_path / partial / "results.json").read_text())
    assert [name for name in measured if name in kept] == measured  # each section as it finished
    results = json.loads((tmp_path / written_to / "results.json").read_text())
    assert results["sections"] == measured
    assert list(results["skipped"]) == skipped
    assert results["store"]["kind"] == ("sqlite" if on_sqlite else "postgresql")
    if "--big-sellers" in argv:
        assert results["workload"]["big_sellers"] == [1_000, 100_000]
    if "--big-buyers" in argv:
        assert results["workload"]["big_buyers"] == [1_000]
    capsys.readouterr()
