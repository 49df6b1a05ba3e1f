"""What a call to TrustLedger can fail with: the server's problem details as
typed exceptions carrying their stable ``code``, or a network failure."""

from __future__ import annotations

from typing import Any

import msgspec


class TrustLedgerError(Exception):
    """Every error the client raises."""


class Unreachable(TrustLedgerError):
    """The server could not be reached, or did not answer, after every retry."""


class Problem(msgspec.Struct, frozen=True):
    """An RFC 9457 problem details body, as the server writes it."""

    status: int
    code: str
    title: str = ""
    detail: str = ""
    type: str = "about:blank"
    field: str | None = None
    retryable: bool | None = None


class ProblemError(TrustLedgerError):
    """The server refused the call; ``code`` says why, in words that never change."""

    def __init__(self, problem: Problem, *, retry_after: float | None = None) -> None:
        super().__init__(f"{problem.status} {problem.code}: {problem.detail}")
        self.problem = problem
        self.status = problem.status
        self.code = problem.code
        self.detail = problem.detail
        self.field = problem.field
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether the same call, with the same idempotency key, may succeed later."""
        return self.status in {429, 503} or bool(self.problem.retryable)


class Unauthenticated(ProblemError):
    """401: no API key, or an unknown, revoked or expired one."""


class Forbidden(ProblemError):
    """403: the key's role may not make this call."""


class NotFound(ProblemError):
    """404: an unknown member, trade, refund, rating, complaint, position or size."""


class Conflict(ProblemError):
    """409: the fact contradicts the ledger's state, or the idempotency key was
    used for another command; ``concurrent_update`` is retryable."""


class TooLarge(ProblemError):
    """413: a body or batch over its limit."""


class InvalidInput(ProblemError):
    """422 (and 400): malformed or out-of-range input; ``field`` names it."""


class TooManyRequests(ProblemError):
    """429: over the key's rate; wait ``retry_after`` seconds."""


class Unavailable(ProblemError):
    """503: the database cannot be reached just now, or the view is behind."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    414: TooLarge,
    422: InvalidInput,
    429: TooManyRequests,
    431: TooLarge,
    503: Unavailable,
}
_problem = msgspec.json.Decoder(Problem)


def problem_error(status: int, content: bytes, headers: Any) -> ProblemError:
    """The typed error of a refused call (any body: a proxy's HTML page too)."""
    try:
        problem = _problem.decode(content)
    except msgspec.DecodeError:
        problem = Problem(status=status, code="http_error", detail=content[:200].decode("latin-1"))
    retry_after = _seconds(headers.get("retry-after"))
    return _BY_STATUS.get(status, ProblemError)(problem, retry_after=retry_after)


def _seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds (an HTTP date is read as unknown)."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
