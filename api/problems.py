"""Every refusal as RFC 9457 problem details, mapped in one place.

Statuses follow docs/rules.md §8: malformed input 422, unknown entities 404,
state and idempotency conflicts 409, oversize batches 413; a database that
cannot be reached or did not answer in time 503 with Retry-After. The body carries
the stable ``code``, a human ``detail`` and, when known, the offending
``field``. Nothing is written on any of them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.service import ViewBehindError
from ledger.database import STORE_UNAVAILABLE
from ledger.errors import (
    ConcurrentUpdateError,
    ErrorCode,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    StateConflictError,
)
from ledger.policy import RulebookError
from projections.queries import UnknownMemberError

log = logging.getLogger("trustledger")

PROBLEM_JSON = "application/problem+json"
# What a 503 asks a caller to wait before it tries again.
RETRY_AFTER_UNAVAILABLE_SECONDS = 2
RETRY_AFTER_VIEW_BEHIND_SECONDS = 1
STATUS_BY_KIND = {InvalidInputError: 422, NotFoundError: 404, StateConflictError: 409}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    414: "URI Too Long",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiProblem(Exception):
    """A refusal raised by the HTTP layer itself (auth, sizes, headers)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field
        self.retry_after = retry_after


# The codes the HTTP layer answers with besides the ledger's (``ErrorCode``);
# with them, every value ``code`` takes (the Problem schema's enum).
HTTP_CODES = (
    "unauthenticated",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "http_error",
    "malformed_request",
    "uri_too_long",
    "headers_too_large",
    "body_too_large",
    "batch_too_large",
    "invalid_input",
    "invalid_cursor",
    "unknown_member",
    "unknown_rulebook",
    "too_many_requests",
    "store_unavailable",
    "view_behind",
    "not_ready",
    "signing_key_missing",
)
CODES = tuple(sorted({*HTTP_CODES, *(str(code) for code in ErrorCode)}))


def problem_body(
    status: int, code: str, detail: str, *, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    """RFC 9457 problem details with TrustLedger's stable ``code``."""
    body: dict[str, Any] = {
        "type": f"https://trustledger.dev/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    retry_after: int | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, code, detail, field=field, **extra)
    if extra.get("retryable") and retry_after is None:
        retry_after = 1
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _store_unavailable(_: Request, error: Exception) -> JSONResponse:
    log.warning("store unavailable: %s: %s", type(error).__name__, error)
    return problem(
        503,
        "store_unavailable",
        "the database cannot be reached just now; try again (an append with the same "
        "Idempotency-Key)",
        retry_after=RETRY_AFTER_UNAVAILABLE_SECONDS,
    )


def status_of(error: LedgerError) -> int:
    for kind, status in STATUS_BY_KIND.items():
        if isinstance(error, kind):
            return status
    return 409


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        extra = {"retryable": True} if isinstance(error, ConcurrentUpdateError) else {}
        return problem(status_of(error), str(error.code), error.detail, field=error.field, **extra)

    for unavailable in STORE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _store_unavailable)

    @app.exception_handler(ApiProblem)
    async def api_problem(_: Request, error: ApiProblem) -> JSONResponse:
        return problem(
            error.status, error.code, error.detail, field=error.field, retry_after=error.retry_after
        )

    @app.exception_handler(ViewBehindError)
    async def view_behind(_: Request, error: ViewBehindError) -> JSONResponse:
        return problem(
            503,
            "view_behind",
            f"the figures reflect the log up to position {error.reached}, not yet "
            f"{error.wanted}; ask again shortly",
            field="min_position",
            retry_after=RETRY_AFTER_VIEW_BEHIND_SECONDS,
        )

    @app.exception_handler(RulebookError)
    async def unknown_rulebook(_: Request, error: RulebookError) -> JSONResponse:
        return problem(422, "unknown_rulebook", str(error), field="rulebook")

    @app.exception_handler(UnknownMemberError)
    async def unknown_member(_: Request, error: UnknownMemberError) -> JSONResponse:
        return problem(404, "unknown_member", f"no member {error}")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [
            str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")
        ]
        field = ".".join(location) or None
        return problem(422, "invalid_input", str(first.get("msg", "invalid request")), field=field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "malformed_request",  # a body FastAPI could not parse
            404: "not_found",
            405: "method_not_allowed",
        }.get(error.status_code, "http_error")
        answer = problem(error.status_code, code, str(error.detail))
        for name, value in (error.headers or {}).items():
            answer.headers[name] = value
        if error.status_code == 405:  # RFC 9110: Allow lists every method the path takes
            answer.headers["Allow"] = ", ".join(allowed_methods(app, request))
        return answer


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods of every operation at the request's path; Starlette names
    only those of the first route it matched, and a path may have one per method."""
    methods: set[str] = set()
    for route in getattr(app, "operations", ()):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= route.methods
    return sorted(methods)
