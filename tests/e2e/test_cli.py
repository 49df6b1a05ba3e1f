"""The trustledger command line: the demo story, the deadline worker, the log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from api.auth import KeyRing, Principal, Role
from api.service import Service
from api.settings import Settings
from ledger.app import LedgerApp
from projections.runner import Runner
from projections.views import open_view
from tests.e2e.support import running_api
from tools.cli import _parser, main


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh SQLite ledger."""
    return f"sqlite:///{tmp_path / 'demo.db'}"


@pytest.fixture
def demo_url(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A SQLite ledger holding the demo story, the demo's own output already read."""
    main(["--database-url", url, "demo"])
    capsys.readouterr()
    return url


def test_demo_writes_the_story_once_and_replays_it_on_a_second_run(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", url, "demo"]) == 0
    first = capsys.readouterr().out
    assert "0 replayed" in first
    assert "trustledger.trade.receipt_confirmed.v1" in first

    assert main(["--database-url", url, "demo"]) == 0
    second = capsys.readouterr().out
    assert "0 events written" in second
    assert "0 facts fired" in second


def test_deadlines_command_fires_due_facts(
    demo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", demo_url, "deadlines", "--now", "2026-01-01T00:00:00Z"]) == 0
    assert "0 facts fired" in capsys.readouterr().out


def test_deadlines_refuses_a_future_now(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", url, "deadlines", "--now", "2999-01-01T00:00:00Z"]) == 2
    assert "future_timestamp" in capsys.readouterr().err


def test_log_prints_events_as_json_lines(demo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", demo_url, "log", "--after", "5", "--limit", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["position"] for line in lines] == [6, 7, 8]
    assert lines[0]["topic"] == "trustledger.trade.created.v1"
    assert lines[0]["body"]["trade_id"] == "T-1001"


def test_project_once_catches_the_view_up(
    demo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", demo_url, "project", "--once"]) == 0
    assert "view at position 36" in capsys.readouterr().out


def test_credit_explains_every_rating(demo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--database-url",
        demo_url,
        "credit",
        "bob-shop",
        "--explain",
        "--as-of",
        "2026-02-14T00:00:00Z",
    ]
    assert main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["credit"]["score"] == 2
    assert answer["credit"]["rulebook"] == "taobao-classic@1"
    assert [(r["trade_id"], r["points"], r["reason"]) for r in answer["explained"]] == [
        ("T-1001", 1, None),
        ("T-1002", 1, None),
    ]
    assert main(["--database-url", demo_url, "credit", "nobody"]) == 2


def test_the_command_line_answers_as_http_does(
    demo_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = "2026-02-14T00:00:00Z"
    assert main(["--database-url", demo_url, "credit", "bob-shop", "--as-of", asked]) == 0
    credit = json.loads(capsys.readouterr().out)
    assert main(["--database-url", demo_url, "penalty", "dave-store", "--as-of", asked]) == 0
    penalty = json.loads(capsys.readouterr().out)
    with running_api(demo_url, tmp_path) as api:
        assert api.get("/v1/members/bob-shop/credit", as_of=asked).json() == credit
        over_http = api.get("/v1/sellers/dave-store/penalty", as_of=asked, role=Role.RANKING)
        assert over_http.json() == penalty


def test_penalty_and_whatif(demo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", demo_url, "penalty", "dave-store"]) == 0
    assert json.loads(capsys.readouterr().out)["searchable"] is True
    assert main(["--database-url", demo_url, "whatif", "--vs", "ebay-style"]) == 0
    assert "2 sellers" in capsys.readouterr().out


def test_rebuild_resumes_an_interrupted_version_and_switches_readers(
    demo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = LedgerApp(demo_url)
    interrupted = open_view(demo_url, version=2)  # a rebuild that died after two batches
    Runner(app, interrupted, batch_events=10).run_batch()
    Runner(app, interrupted, batch_events=10).run_batch()
    interrupted.close()
    app.close()
    capsys.readouterr()

    assert main(["--database-url", demo_url, "rebuild", "--drop-after", "0"]) == 0
    captured = capsys.readouterr()
    assert "resuming the rebuild of version 2 after position 20" in captured.err
    assert "readers switched to version 2 at position 36" in captured.out
    readers = open_view(demo_url)
    assert readers.version == 2  # type: ignore[attr-defined]
    assert readers.position() == 36
    readers.close()


def test_keys_add_prints_a_key_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file = tmp_path / "keys.json"
    assert main(["keys", "add", "--role", "auditor", "--keys-file", str(keys_file)]) == 0
    plain = capsys.readouterr().out.strip()
    assert plain.startswith("tl_")
    stored = keys_file.read_text()
    assert plain not in stored
    assert '"role": "auditor"' in stored
    principal = KeyRing.load(keys_file).authenticate(plain)
    assert principal is not None
    assert principal.role == Role.AUDITOR
    assert KeyRing.load(keys_file).authenticate(plain + "x") is None


def test_a_keys_file_is_its_owners_alone(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    assert main(["keys", "add", "--role", "reader", "--keys-file", str(keys_file)]) == 0
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no scratch file left


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_development_mode_serves_on_loopback_only(host: str) -> None:
    with pytest.raises(SystemExit, match="loopback"):
        main(["--database-url", "memory:", "serve", "--dev", "--host", host])


def test_development_keys_live_in_their_own_file_and_nothing_else_turns_them_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_file, dev_file = tmp_path / "keys.json", tmp_path / "dev-keys.json"
    ring = KeyRing([])
    real = ring.add(Role.ADMIN)
    ring.save(keys_file)
    monkeypatch.setenv("TRUSTLEDGER_DEV_KEYS", "1")
    assert not Settings.from_environment(database_url="memory:").dev_keys
    with pytest.raises(ValueError, match="file of their own"):
        Settings(
            database_url="memory:", dev_keys=True, keys_file=keys_file, dev_keys_file=keys_file
        )

    settings = Settings(
        database_url="memory:", dev_keys=True, keys_file=keys_file, dev_keys_file=dev_file
    )
    service = Service(settings)
    try:
        service.start(background=False)
        printed = [line.split()[-1] for line in capsys.readouterr().out.splitlines()]
    finally:
        service.stop()
    assert len(printed) == len(Role)
    assert service.keys.authenticate(real) is None  # the real callers' keys are not served
    assert all(service.keys.authenticate(key) is not None for key in printed)
    stored = KeyRing.load(dev_file)
    assert all(stored.authenticate(key) is not None for key in printed)
    assert KeyRing.load(keys_file).authenticate(real) is not None  # left as it was
    assert dev_file.stat().st_mode & 0o777 == 0o600


def test_keys_are_listed_revoked_and_rotated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file = tmp_path / "keys.json"

    def keys(*arguments: str) -> str:
        assert main(["keys", *arguments, "--keys-file", str(keys_file)]) == 0
        return capsys.readouterr().out.strip()

    reader = keys("add", "--role", "reader")
    ranking = keys("add", "--role", "ranking", "--expires-in-days", "30")
    reader_id, ranking_id = (key.split("_")[1] for key in (reader, ranking))
    listed = keys("list").splitlines()
    assert [line.split()[:5] for line in listed] == [
        [reader_id, "reader", "valid", "caller", reader_id],
        [ranking_id, "ranking", "valid", "caller", ranking_id],
    ]
    assert "sha256" not in keys("list") and reader not in keys("list")

    assert keys("revoke", reader_id).split()[:3] == [reader_id, "reader", "ended"]
    assert KeyRing.load(keys_file).authenticate(reader) is None

    successor = keys("rotate", ranking_id, "--grace-hours", "1")
    ring = KeyRing.load(keys_file)
    assert ring.authenticate(ranking) is not None  # still within its grace
    new = ring.authenticate(successor)
    assert new is not None and new.role == Role.RANKING
    assert new.caller == ranking_id  # the successor keeps its caller: retries stay safe
    named = keys("add", "--role", "service", "--caller", "order-service")
    assert KeyRing.load(keys_file).authenticate(named) == Principal(
        named.split("_")[1], Role.SERVICE, "order-service"
    )
    with pytest.raises(SystemExit, match="caller"):
        main(
            [
                "keys",
                "add",
                "--role",
                "service",
                "--caller",
                "no spaces",
                "--keys-file",
                str(keys_file),
            ]
        )
    keys("rotate", ranking_id, "--grace-hours", "0")
    assert KeyRing.load(keys_file).authenticate(ranking) is None

    with pytest.raises(SystemExit, match="no key 'nope'"):
        main(["keys", "revoke", "nope", "--keys-file", str(keys_file)])


def test_global_options_are_taken_after_the_subcommand_too(
    demo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["credit", "bob-shop", "--database-url", demo_url, "--rulebook", "ebay-style"]) == 0
    assert json.loads(capsys.readouterr().out)["rulebook"] == "ebay-style@1"
    before = ["--database-url", demo_url, "--rulebook", "ebay-style", "credit", "bob-shop"]
    assert main(before) == 0
    assert json.loads(capsys.readouterr().out)["rulebook"] == "ebay-style@1"
    assert main(["--database-url", demo_url, "credit", "bob-shop"]) == 0  # the default stands
    assert json.loads(capsys.readouterr().out)["rulebook"] == "taobao-classic@1"


def test_every_option_and_argument_of_every_command_says_what_it_is() -> None:
    def unexplained(parser: argparse.ArgumentParser, path: str) -> list[str]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += unexplained(sub, f"{path} {name}")
            elif not action.help and not isinstance(action, argparse._HelpAction):
                found.append(f"{path} {action.option_strings or action.dest}")
        return found

    assert unexplained(_parser(), "trustledger") == []
