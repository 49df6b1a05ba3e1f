"""Every setting comes from its TRUSTLEDGER_ variable or from code, code first;
development mode only from code; an unsafe value is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.auth import Role
from api.rate_limits import RateLimit
from api.settings import ENV_PREFIX, Settings
from tools.cli import main
from tools.settings_list import markdown_table


def test_every_setting_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    given = {
        "DATABASE_URL": "sqlite:///elsewhere.db",
        "RULEBOOK": "ebay-style",
        "KEYS_FILE": "/etc/trustledger/keys.json",
        "FOLLOWER": "apart",
        "READ_YOUR_WRITES_SECONDS": "2.5",
        "RANKING_PATH": "false",
        "BODY_BYTES_MAX": "2048",
        "FAILED_AUTH_LIMIT": '{"per_second": 2, "burst": 10}',
        "PROJECTION_GATHER_SECONDS": "0.25",
    }
    for name, value in given.items():
        monkeypatch.setenv(ENV_PREFIX + name, value)
    settings = Settings.from_environment()
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.rulebook == "ebay-style"
    assert settings.keys_file == Path("/etc/trustledger/keys.json")
    assert settings.follower == "apart"
    assert settings.read_your_writes_seconds == 2.5
    assert settings.ranking_path is False
    assert settings.body_bytes_max == 2048
    assert settings.failed_auth_limit == RateLimit(per_second=2, burst=10)
    assert settings.follower_settings().gather_seconds == 0.25  # the follower's own setting


def test_code_comes_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PREFIX + "RULEBOOK", "ebay-style")
    assert Settings.from_environment(rulebook="taobao-classic").rulebook == "taobao-classic"
    assert Settings().database_url == "sqlite:///trustledger.db"  # the embedded default


def test_development_mode_never_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "DEV_KEYS", "true")
    assert Settings.from_environment().dev_keys is False
    assert Settings(dev_keys=True).dev_keys is True


def test_rate_limits_are_json_by_role(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = ",".join(f'"{role}": {{"per_second": 5, "burst": 9}}' for role in Role)
    monkeypatch.setenv(ENV_PREFIX + "RATE_LIMITS", "{" + limits + "}")
    assert Settings().rate_limits == {role: RateLimit(5, 9) for role in Role}
    monkeypatch.setenv(ENV_PREFIX + "RATE_LIMITS", '{"service": {"per_second": 5, "burst": 9}}')
    with pytest.raises(ValidationError, match="every role"):
        Settings()


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("FOLLOWER", "beside", "inside"),
        ("PROJECTION_POLL_SECONDS", "0", "positive"),
        ("PROJECTION_GATHER_SECONDS", "-0.1", "greater than or equal to 0"),
        ("PROJECTION_GATHER_SECONDS", "6", "less than or equal to 5"),
        ("BODY_BYTES_MAX", "0", "positive"),
        ("READ_DATABASE_URL", "sqlite:///x.db", "standbys"),
        ("UNKNOWN_SETTING", "1", None),
    ],
)
def test_unsafe_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, refusal: str | None
) -> None:
    monkeypatch.setenv(ENV_PREFIX + name, value)
    if refusal is None:  # an unknown variable is not a setting: it is ignored
        Settings()
        return
    with pytest.raises(ValidationError, match=refusal):
        Settings()


def test_the_operations_guide_tables_every_setting_as_the_code_has_it() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    start = doc.index("<!-- settings table")
    table = doc[doc.index("\n", start) + 1 : doc.index("<!-- end of settings table -->")]
    assert table.strip() == markdown_table()
    assert all(f"`{name}`" in table for name in Settings.model_fields)


def test_settings_are_listed_with_where_each_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "RULEBOOK", "ebay-style")
    assert main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "rulebook = ebay-style    (TRUSTLEDGER_RULEBOOK; environment)" in lines
    assert "dev_keys = false    ((code only); default or code)" in lines
    assert len(lines) == len(Settings.model_fields)
