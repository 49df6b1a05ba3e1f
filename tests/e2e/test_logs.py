"""The server's logs: an access line per request with its request id, key,
route, status, duration and the position an append wrote; JSON lines on demand."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import KeyRing, Role
from api.logs import JsonLines, log_config
from tests.e2e.support import Api, at, running_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api("memory:", tmp_path) as client:
        yield client


def test_every_request_gets_an_access_line_and_its_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trustledger.access")
    appended = api.post("/v1/members", {"member_id": "m-1", "occurred_at": at(0)})
    assert appended.status_code == 201
    mine = api.client.get(
        "/v1/rulebooks",
        headers={**api.headers(Role.READER), "X-Request-Id": "order-svc-42"},
    )
    refused = api.client.get("/v1/rulebooks", headers={"X-Request-Id": "bad id with spaces"})
    lines = [r for r in caplog.records if r.name == "trustledger.access"]
    first, second, third = lines
    service = KeyRing.load(api.client.app.state.service.settings.keys_file)  # type: ignore[attr-defined]
    assert first.route == "/v1/members" and first.status == 201  # type: ignore[attr-defined]
    assert first.position == appended.json()["positions"][-1]  # type: ignore[attr-defined]
    principal = service.authenticate(api.keys[Role.SERVICE])
    assert principal is not None and first.key_id == principal.key_id  # type: ignore[attr-defined]
    assert first.request_id == appended.headers["x-request-id"]  # type: ignore[attr-defined]
    assert (second.request_id, mine.headers["x-request-id"]) == ("order-svc-42", "order-svc-42")  # type: ignore[attr-defined]
    assert second.position is None and second.duration_ms >= 0  # type: ignore[attr-defined]
    assert third.status == 401 and third.key_id is None  # type: ignore[attr-defined]
    assert refused.headers["x-request-id"] != "bad id with spaces"


def test_json_lines_carry_the_access_fields() -> None:
    record = logging.LogRecord("trustledger.access", logging.INFO, "", 0, "GET /x 200", (), None)
    record.route, record.status, record.request_id = "/x", 200, "r-1"
    line = json.loads(JsonLines().format(record))
    assert line["level"] == "info" and line["logger"] == "trustledger.access"
    assert (line["route"], line["status"], line["request_id"]) == ("/x", 200, "r-1")
    assert "position" not in line and line["message"] == "GET /x 200"


def test_the_server_is_configured_for_the_format_it_is_told() -> None:
    json_config, text_config = log_config("json", "info"), log_config("text", "warning")
    assert json_config["formatters"]["lines"] == {"()": JsonLines}
    assert "format" in text_config["formatters"]["lines"]
    for config, level in ((json_config, "INFO"), (text_config, "WARNING")):
        for name in ("trustledger", "uvicorn", "uvicorn.error"):
            assert config["loggers"][name]["level"] == level
            assert config["loggers"][name]["handlers"] == ["lines"]
