"""The API's calls as data, built without I/O: both clients send them.

A ``Call`` is a method, a path, query parameters and perhaps a JSON body;
appends carry an idempotency key (one per call, kept across its retries), and
queries that read the view say so, so the client can add ``min_position``
for read-your-writes. ``backoff`` is the retry schedule both clients follow.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import msgspec

from ledger import commands as c

# Retries of a failed call (network errors, 429, 503, a retryable 409):
# exponential backoff with full jitter, never shorter than the server's
# Retry-After, each wait at most RETRY_WAIT_MAX_SECONDS.
RETRIES_DEFAULT = 4
RETRY_BASE_SECONDS = 0.1
RETRY_WAIT_MAX_SECONDS = 10.0

TRADE = "/v1/trades/{trade_id}"
REFUND = TRADE + "/refunds/{refund_id}"
RATING = TRADE + "/ratings/{rater}"
COMPLAINT = "/v1/complaints/{complaint_id}"
SELLER = "/v1/sellers/{seller_id}"

# Where each command is appended; the fields named in the path leave the body.
APPEND_PATHS: dict[type[c.Command], str] = {
    c.RegisterMember: "/v1/members",
    c.VerifyIdentity: "/v1/members/{member_id}/verification",
    c.CreateTrade: "/v1/trades",
    c.PayIntoEscrow: TRADE + "/payment",
    c.ShipTrade: TRADE + "/shipment",
    c.ConfirmReceipt: TRADE + "/receipt",
    c.ExtendConfirmTimer: TRADE + "/timer-extension",
    c.CloseTrade: TRADE + "/close",
    c.RequestRefund: TRADE + "/refunds",
    c.AgreeRefund: REFUND + "/agree",
    c.RejectRefund: REFUND + "/reject",
    c.ShipReturn: REFUND + "/return-shipment",
    c.ConfirmReturnReceipt: REFUND + "/return-receipt",
    c.CancelRefund: REFUND + "/cancel",
    c.EscalateDispute: TRADE + "/dispute",
    c.RuleDispute: TRADE + "/dispute/ruling",
    c.GiveRating: TRADE + "/ratings",
    c.ReviseRating: RATING + "/revision",
    c.WithdrawRating: RATING + "/withdrawal",
    c.ExplainRating: RATING + "/explanation",
    c.ReviewFollowUp: RATING + "/follow-up",
    c.ShieldRating: RATING + "/shielding",
    c.FileComplaint: "/v1/complaints",
    c.EscalateComplaint: COMPLAINT + "/escalation",
    c.RecordComplaintFollowUp: COMPLAINT + "/follow-up",
    c.PayCompensation: COMPLAINT + "/compensation",
    c.RuleComplaint: COMPLAINT + "/ruling",
    c.RecordViolation: SELLER + "/violations",
    c.ConfirmFakeTrades: SELLER + "/fake-trades",
    c.RecordSearchCheating: SELLER + "/search-cheating",
}
RefundStep = c.AgreeRefund | c.RejectRefund | c.ShipReturn | c.ConfirmReturnReceipt | c.CancelRefund

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_json = msgspec.json.Encoder()


class Call(msgspec.Struct, frozen=True):
    method: str
    path: str
    params: dict[str, str] = msgspec.field(default_factory=dict)
    body: bytes | None = None
    idempotency_key: str | None = None
    reads_view: bool = False  # takes min_position: the client may ask to read its writes


def append(command: c.Command, idempotency_key: str | None) -> Call:
    """The call that appends a command (a fresh idempotency key unless given)."""
    template = APPEND_PATHS.get(type(command))
    if template is None:
        raise TypeError(f"{type(command).__name__} is not appended over HTTP")
    fields: dict[str, Any] = msgspec.to_builtins(command)
    fields.pop("command")  # the command's tag: the path says which it is
    names = _PLACEHOLDER.findall(template)
    path = template.format(**{name: quote(str(fields.pop(name)), safe="") for name in names})
    key = idempotency_key or f"tl-client-{uuid.uuid4()}"
    body = {name: value for name, value in fields.items() if value is not None}
    return Call("POST", path, body=_json.encode(body), idempotency_key=key)


def query(path: str, *, reads_view: bool = False, **params: object) -> Call:
    """A GET, with its parameters (None left out; times as RFC 3339)."""
    return Call("GET", path, params=_params(params), reads_view=reads_view)


def post(path: str, body: Mapping[str, object]) -> Call:
    """A POST that appends nothing (the penalty batch, ping, the deadline run)."""
    fields = {name: value for name, value in body.items() if value is not None}
    return Call("POST", path, body=_json.encode(fields))


def segment(value: str) -> str:
    """An id as one path segment."""
    return quote(value, safe="")


def backoff(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """How long to wait before retry ``attempt`` (1, 2, ...)."""
    ceiling = min(RETRY_WAIT_MAX_SECONDS, RETRY_BASE_SECONDS * 2**attempt)
    wait = rng.uniform(0, ceiling)
    if retry_after is not None:
        wait = max(wait, min(retry_after, RETRY_WAIT_MAX_SECONDS))
    return wait


def _params(params: Mapping[str, object]) -> dict[str, str]:
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            out[name] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out
