"""What the Schemathesis command line needs to know that an OpenAPI document
cannot say: ``schemathesis.toml`` names this module as its hooks.

A schema states the form of every input; three refusals of well-formed input
depend on what the server holds at that moment, so no schema can state them:

- ``future_timestamp``: a fact's business time more than the clock-skew
  allowance after the server's clock (the clock moves; the schema is fixed);
- ``position_beyond_log``: a ``min_position`` past the end of the log (the log
  grows);
- ``invalid_cursor``: a page cursor of the right alphabet that no page handed
  out (cursors are opaque: only the server's own decode to a place).

A series' window compares two parameters, which no schema can state either:
``to`` must come after ``from``, and the steps between them must not be more
than a series' points (``projections.series``). Such a window is refused
``invalid_input`` naming ``to``.

``positive_data_acceptance`` (disabled in the configuration) is replaced by
the check below: it fails as that one does, except for a 422 whose ``code``
is one of these three, or a series' window refused. Any other refusal of
schema-valid input fails.

Drawn uniformly from the years the schema allows, almost every business time
lies in the future, and such facts are refused before their ids are used: a
body's times are moved into the past (same day and time, an earlier year), so
the stateful phase can follow a member's, a trade's and a complaint's links.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import schemathesis

STATE_DEPENDENT_REFUSALS = frozenset({"future_timestamp", "position_beyond_log", "invalid_cursor"})
SERIES_PATH_END = "/series"
SERIES_WINDOW = ("invalid_input", "to")
# What the built-in check accepts for schema-valid input, as Schemathesis ships it.
ACCEPTED_STATUSES = frozenset({401, 403, 404, 409, 429})


@schemathesis.check
def positive_data_accepted_unless_state_refuses(
    ctx: Any, response: Any, case: schemathesis.Case[Any]
) -> bool | None:
    """Schema-valid input is accepted, or refused for a reason of state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTED_STATUSES:
        return None
    code = _problem_code(response)
    if status == 422 and code in STATE_DEPENDENT_REFUSALS:
        return None
    if status == 422 and _series_window_refused(case, response):
        return None
    raise AssertionError(
        f"schema-valid input refused: {status} {code or '(no problem code)'}; only "
        f"{', '.join(sorted(STATE_DEPENDENT_REFUSALS))} may refuse it with 422"
    )


def _series_window_refused(case: schemathesis.Case[Any], response: Any) -> bool:
    """A series' window refused: ``invalid_input`` naming ``to``, on a series."""
    if not case.path.endswith(SERIES_PATH_END):
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and (body.get("code"), body.get("field")) == SERIES_WINDOW


def _problem_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


BODY_TIMES = ("occurred_at", "now")
EARLIEST_YEAR = 1970


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """The body with its business times moved out of the future."""
    if isinstance(body, dict):
        for name in BODY_TIMES:
            if isinstance(body.get(name), str):
                body[name] = _in_the_past(body[name])
    return body


def _in_the_past(text: str) -> str:
    try:
        written = datetime.fromisoformat(text)
    except ValueError:
        return text
    now = datetime.now(UTC)
    if written.tzinfo is None or written < now.replace(year=now.year - 1):
        return text
    year = EARLIEST_YEAR + written.year % (now.year - 1 - EARLIEST_YEAR)
    moved = written.replace(year=year, day=min(written.day, 28))
    return text.replace(text[:10], moved.strftime("%Y-%m-%d"), 1)
