"""The trustledger command line: the demo story, the deadline worker, the log."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
import pytest

from api.auth import KeyRing, Principal, Role
from api.service import Service
from api.settings import Settings
from ledger.app import LedgerApp
from projections.runner import Runner
from projections.views import open_view
from tests.e2e.support import running_api
from tools.arguments import GlobalOptions
from tools.cli import cli, main, parse


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
    def unexplained(command: click.Command, path: str) -> list[str]:
        found = [] if command.help else [f"{path} (the command)"]
        for param in command.params:
            if not (param.help if isinstance(param, click.Option | click.Argument) else None):
                found.append(f"{path} {param.opts}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += unexplained(sub, f"{path} {name}")
        return found

    assert unexplained(cli, "trustledger") == []


def test_every_command_takes_the_global_options_and_the_one_after_it_wins() -> None:
    def leaves(command: click.Command, path: list[str]) -> list[list[str]]:
        if not isinstance(command, click.Group):
            return [path]
        return [p for name, sub in command.commands.items() for p in leaves(sub, [*path, name])]

    required = {  # what a command needs besides the global options
        "credit": ["m"],
        "penalty": ["m"],
        "import": ["log.ndjson"],
        "keygen": ["key.pem"],
        "add": ["--role", "reader"],
        "revoke": ["k"],
        "rotate": ["k"],
        "pull-tree-head": ["--url", "http://127.0.0.1:8000"],
        "whatif": ["--vs", "ebay-style"],
    }
    commands = leaves(cli, [])
    assert ["keys", "list"] in commands and ["audit", "pull-tree-head"] in commands
    for command in commands:
        arguments = required.get(command[-1], [])
        before = ["--database-url", "memory:", "--rulebook", "ebay-style"]
        given = parse([*before, *command, *arguments, "--rulebook", "file.toml"])
        assert given.find_object(GlobalOptions) == GlobalOptions("memory:", "file.toml"), command
        only_before = parse([*before, *command, *arguments]).find_object(GlobalOptions)
        assert only_before == GlobalOptions("memory:", "ebay-style"), command
        only_after = parse([*command, *arguments, "--database-url", "memory:"])
        assert only_after.find_object(GlobalOptions) == GlobalOptions("memory:"), command


def test_a_bad_value_is_a_usage_error_with_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = {
        ("deadlines", "--now", "2026-01-01T00:00:00"): "'2026-01-01T00:00:00' needs a timezone",
        ("deadlines", "--now", "soon"): "not an RFC 3339 time: 'soon'",
        ("follow", "--deadline-interval", "0"): "'0': a duration is more than 0 seconds",
        ("follow", "--standby-poll", "often"): "not a number of seconds: 'often'",
        ("bench", "--big-sellers", "1000", "0"): "'0': a big member has 1-",
        ("bench", "--only", "import", "nothing"): "'nothing' is not one of",
        ("keys", "add", "--role", "root"): "'root' is not one of",
        ("credit",): "Missing argument 'MEMBER_ID'",
        ("nonsense",): "No such command 'nonsense'",
    }
    for argv, message in refused.items():
        assert main(["--database-url", "memory:", *argv]) == 2, argv
        captured = capsys.readouterr()
        assert message in captured.err, argv
        assert "Usage: trustledger" in captured.err
        assert captured.out == ""
        with pytest.raises(click.UsageError):
            parse(argv)  # what the deployment files' commands are checked with


def test_several_values_follow_one_option_name_as_before() -> None:
    spread = parse(["bench", "--only", "import", "big_sellers", "--big-sellers", "10", "20"])
    assert spread.params["only"] == ("import", "big_sellers")
    assert spread.params["big_sellers"] == (10, 20)
    repeated = parse(["bench", "--only", "import", "--quick", "--only", "http"])
    assert repeated.params["only"] == ("import", "http")
    assert repeated.params["quick"] is True


def test_help_is_printed_for_the_program_and_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    assert "whatif" in capsys.readouterr().out
    assert main(["keys", "rotate", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "KEY_ID" in shown and "--grace-hours" in shown and "--rulebook" in shown


def unstyled(text: str) -> str:
    """A terminal's output without its colours and bold."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def listed_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """A keys file with a reader's key and a revoked ranking key; their ids."""
    keys_file = tmp_path / "keys.json"
    ids = []
    for role in ("reader", "ranking"):
        assert main(["keys", "add", "--role", role, "--keys-file", str(keys_file)]) == 0
        ids.append(capsys.readouterr().out.split("_")[1])
    assert main(["keys", "revoke", ids[1], "--keys-file", str(keys_file)]) == 0
    capsys.readouterr()
    return keys_file, ids


def test_keys_are_listed_as_json_with_json(
    listed_keys: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file, ids = listed_keys
    assert main(["keys", "list", "--json", "--keys-file", str(keys_file)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["id"], k["role"], k["state"], k["caller"]) for k in listed] == [
        (ids[0], "reader", "valid", ids[0]),
        (ids[1], "ranking", "ended", ids[1]),
    ]
    assert listed[0]["expires_at"] is None and listed[0]["revoked_at"] is None
    assert listed[1]["revoked_at"].endswith("Z")
    assert all("sha256" not in key for key in listed)


def test_listings_are_plain_lines_off_a_terminal_and_a_table_on_one(
    listed_keys: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys_file, ids = listed_keys
    assert main(["keys", "list", "--keys-file", str(keys_file)]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert [line.split()[:5] for line in plain] == [
        [ids[0], "reader", "valid", "caller", ids[0]],
        [ids[1], "ranking", "ended", "caller", ids[1]],
    ]
    assert main(["settings"]) == 0
    assert "rulebook = taobao-classic    (TRUSTLEDGER_RULEBOOK; " in capsys.readouterr().out

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["keys", "list", "--keys-file", str(keys_file)]) == 0
    table = unstyled(capsys.readouterr().out)
    assert "┃ id " in table and f"│ {ids[1]} │ ranking │ ended │" in table
    assert "created 20" not in table  # not the plain line
    assert main(["settings"]) == 0
    table = unstyled(capsys.readouterr().out)
    assert "│ rulebook" in table and "TRUSTLEDGER_RULEBOOK" in table and " = " not in table


def test_settings_are_listed_as_json_with_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRUSTLEDGER_RULEBOOK", "ebay-style")
    assert main(["settings", "--json"]) == 0
    listed = {s["setting"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["rulebook"] == {
        "setting": "rulebook",
        "variable": "TRUSTLEDGER_RULEBOOK",
        "value": "ebay-style",
        "source": "environment",
    }
    assert listed["dev_keys"]["value"] is False
    assert main(["settings", "--json", "--markdown"]) == 2
    assert "give one" in capsys.readouterr().err


def test_whatif_is_a_table_on_a_terminal_and_json_with_json(
    demo_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [
        "--database-url",
        demo_url,
        "whatif",
        "--vs",
        "ebay-style",
        "--as-of",
        "2026-02-14T00:00:00Z",
    ]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sellers"] == 2 and report["versus"].startswith("ebay-style")
    assert main(argv) == 0
    plain = capsys.readouterr().out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(argv) == 0
    table = unstyled(capsys.readouterr().out)
    assert plain.splitlines()[0] == table.splitlines()[0]  # the summary, then the moves
    assert "level moves" in table and "┃ level before" in table
