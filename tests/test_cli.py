"""The trustledger command line: the demo story, the deadline worker, the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.cli import main


def test_demo_writes_the_story_once_and_replays_it_on_a_second_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["--database-url", url, "demo"]) == 0
    first = capsys.readouterr().out
    assert "0 replayed" in first
    assert "trustledger.trade.receipt_confirmed.v1" in first

    assert main(["--database-url", url, "demo"]) == 0
    second = capsys.readouterr().out
    assert "0 events written" in second
    assert "0 facts fired" in second


def test_deadlines_command_fires_due_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    main(["--database-url", url, "demo"])
    capsys.readouterr()
    assert main(["--database-url", url, "deadlines", "--now", "2026-01-01T00:00:00Z"]) == 0
    assert "0 facts fired" in capsys.readouterr().out


def test_deadlines_refuses_a_future_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["--database-url", url, "deadlines", "--now", "2999-01-01T00:00:00Z"]) == 2
    assert "future_timestamp" in capsys.readouterr().err


def test_log_prints_events_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    main(["--database-url", url, "demo"])
    capsys.readouterr()
    assert main(["--database-url", url, "log", "--after", "5", "--limit", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["position"] for line in lines] == [6, 7, 8]
    assert lines[0]["topic"] == "trustledger.trade.created.v1"
    assert lines[0]["body"]["trade_id"] == "T-1001"
