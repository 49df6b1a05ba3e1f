"""The server's logs: plain lines, or one JSON object a line
(``TRUSTLEDGER_LOG_FORMAT=json``) for a log collector.

Besides what the service and uvicorn log, every request gets one access
line on ``trustledger.access`` (INFO) with its request id (the caller's
``X-Request-Id``, or one made here and sent back), the API key id that made
it, the route, the status, the duration and, for an append, the last log
position it wrote. Standard logging with a formatter of our own: the fields
are few and msgspec writes the JSON.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = b"x-request-id"
# A caller's request id is kept when it is a short token; otherwise one is made.
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# The ASGI scope key under which Admission leaves the caller's key id.
KEY_ID_SCOPE = "trustledger.key_id"
# What an access line carries besides its message.
ACCESS_FIELDS = ("request_id", "key_id", "method", "route", "status", "duration_ms", "position")

access = logging.getLogger("trustledger.access")
_appended: ContextVar[int | None] = ContextVar("trustledger_appended", default=None)


def note_appended(position: int) -> None:
    """The last position an append of this request wrote, for its access line."""
    _appended.set(position)


def appended() -> int | None:
    return _appended.get()


def note_appended_reset() -> Token[int | None]:
    """A request starts with no position written."""
    return _appended.set(None)


def note_appended_done(token: Token[int | None]) -> None:
    _appended.reset(token)


class JsonLines(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, and the
    access fields it carries."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                body[field] = value
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        return msgspec.json.encode(body).decode()


def log_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's loggers too)."""
    formatter: dict[str, Any] = (
        {"()": JsonLines} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "lines", "stream": "ext://sys.stderr"}
    named = {"handlers": ["lines"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": formatter},
        "handlers": {"lines": handler},
        "loggers": dict.fromkeys(("trustledger", "uvicorn", "uvicorn.error"), named),
    }
