"""HTTP request schemas and problem details, at the edge only.

Requests are Pydantic models: FastAPI checks and documents them, and inside
they become msgspec command Structs. Answers are msgspec Structs defined in
``api.answers``, without a web framework, so the client decodes into them too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from api.problems import CODES
from ledger.commands import (
    AMOUNT_MINOR_MAX,
    FAKE_TRADE_CASE_TRADES_MAX,
    REASON_MAX_CHARS,
    SEARCH_CHEATING_ITEMS_MAX,
    TEXT_MAX_CHARS,
    TIMER_EXTENSION_DAYS_MAX,
    VIOLATION_POINTS_MAX,
)
from ledger.events import (
    CompensationKind,
    ComplaintOutcome,
    DisputeOutcome,
    Party,
    RefundReason,
    Score,
    SearchCheatingKind,
)
from ledger.ids import ID_MAX_CHARS, ID_PATTERN
from ledger.limits import BUSINESS_TIME_PATTERN, BUSINESS_TIME_RANGE, business_time_refusal
from ledger.policy import (
    RULEBOOK_ID_PATTERN,
    ComplaintType,
    GoodsKind,
    Policy,
    Severity,
    ShippingMethod,
    ViolationCategory,
)

Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]


def _id(example: str) -> Any:
    """A platform id with an example of its own kind (a buyer is not a seller)."""
    return Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS, examples=[example])


# The ids of one story: the examples of a buyer, a seller, their trade...
EXAMPLE_IDS = {
    "member_id": "s-30001",
    "buyer_id": "b-20001",
    "seller_id": "s-30001",
    "trade_id": "t-40001",
    "item_id": "i-50001",
    "refund_id": "r-60001",
    "complaint_id": "c-70001",
    "rater_id": "b-20001",
    "author_id": "b-20001",
    "filed_by": "b-20001",
    "violation_id": "v-80001",
    "case_id": "k-90001",
}


# A platform id in a path, checked as the same id in a body is.
def _path_id(example: str) -> Any:
    return Path(pattern=ID_PATTERN, max_length=ID_MAX_CHARS, examples=[example])


TradePath = Annotated[str, _path_id("t-40001")]
MemberPath = Annotated[str, _path_id("s-30001")]
SellerPath = Annotated[str, _path_id("s-30001")]
BuyerPath = Annotated[str, _path_id("b-20001")]
ComplaintPath = Annotated[str, _path_id("c-70001")]
RefundPath = Annotated[str, _path_id("r-60001")]


def _whole_number(value: object) -> object:
    """An integer as JSON Schema counts one: 12500 and 12500.0 alike; neither
    true, false nor text ("12500") is a number."""
    if isinstance(value, bool):
        raise ValueError("Expected an integer, not true or false")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# After a strict int's limits: text is refused, 12500.0 taken as 12500.
WHOLE = BeforeValidator(_whole_number)
Amount = Annotated[int, Field(gt=0, le=AMOUNT_MINOR_MAX, strict=True, examples=[12_500]), WHOLE]
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX_CHARS)]
DsrScore = Annotated[int, Field(ge=1, le=5, strict=True), WHOLE]


# The largest log position a request may name: the largest integer every JSON
# reader holds exactly (2**53 - 1), beyond any log's length.
POSITION_MAX = 2**53 - 1

_BUSINESS_TIME_TEXT = re.compile(BUSINESS_TIME_PATTERN)


def _rfc3339_text(value: object) -> object:
    """A time arrives as text of the pattern the schema states: a bare number is
    not taken as seconds since 1970, nor a date without its time or offset."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _BUSINESS_TIME_TEXT.fullmatch(value) is None:
        raise ValueError(
            "Expected an RFC 3339 time with an offset, written 1970-2999, e.g. 2026-11-02T09:30:00Z"
        )
    return value


def _in_business_range(value: datetime) -> datetime:
    refused = business_time_refusal(value)
    if refused is not None:
        raise ValueError(refused)
    return value


# An RFC 3339 time with an offset, within the ledger's range of business times.
BusinessTime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_in_business_range),
    Field(
        description=f"RFC 3339 with an offset, {BUSINESS_TIME_RANGE}",
        json_schema_extra={"pattern": BUSINESS_TIME_PATTERN},
    ),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class At(Body):
    occurred_at: Annotated[BusinessTime, Field(examples=["2026-11-02T09:30:00Z"])]


class NewMember(At):
    member_id: Annotated[str, _id(EXAMPLE_IDS["member_id"])]


class NewTrade(At):
    trade_id: Annotated[str, _id(EXAMPLE_IDS["trade_id"])]
    buyer_id: Annotated[str, _id(EXAMPLE_IDS["buyer_id"])]
    seller_id: Annotated[str, _id(EXAMPLE_IDS["seller_id"])]
    item_id: Annotated[str, _id(EXAMPLE_IDS["item_id"])]
    amount_minor: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])]
    goods_kind: GoodsKind
    shipping: ShippingMethod


class Receipt(At):
    by: Literal["buyer"] = "buyer"


class TimerExtension(At):
    days: Annotated[int, Field(ge=1, le=TIMER_EXTENSION_DAYS_MAX, strict=True), WHOLE]


class Closing(At):
    # Not "refunded_in_full": the ledger closes a trade for that reason itself.
    reason: Literal["unpaid", "buyer_cancelled", "seller_cancelled", "out_of_stock"]


class NewRefund(At):
    refund_id: Annotated[str, _id(EXAMPLE_IDS["refund_id"])]
    amount_minor: Amount
    reason: RefundReason
    with_return: bool


class NewDispute(At):
    refund_id: Annotated[str, _id(EXAMPLE_IDS["refund_id"])]


class DisputeRuling(At):
    outcome: DisputeOutcome


class ShopScores(Body):
    as_described: DsrScore
    service: DsrScore
    shipping_speed: DsrScore
    logistics: DsrScore


class NewRating(At):
    rater: Party
    rater_id: Annotated[str, _id(EXAMPLE_IDS["rater_id"])] | None = None
    score: Score
    dsr: ShopScores | None = None
    comment: Annotated[str, Field(max_length=TEXT_MAX_CHARS)] = ""


class Revision(At):
    score: Literal["positive"] = "positive"
    rater_id: Annotated[str, _id(EXAMPLE_IDS["rater_id"])] | None = None


class Withdrawal(At):
    rater_id: Annotated[str, _id(EXAMPLE_IDS["rater_id"])] | None = None


class Explanation(At):
    text: Text
    author_id: Annotated[str, _id(EXAMPLE_IDS["author_id"])] | None = None


class FollowUp(At):
    text: Text
    author_id: Annotated[str, _id(EXAMPLE_IDS["author_id"])] | None = None


class Shielding(At):
    reason: Reason


class NewComplaint(At):
    complaint_id: Annotated[str, _id(EXAMPLE_IDS["complaint_id"])]
    trade_id: Annotated[str, _id(EXAMPLE_IDS["trade_id"])]
    type: ComplaintType
    severity: Severity
    evidence: Annotated[str, Field(max_length=TEXT_MAX_CHARS)] = ""
    filed_by: Annotated[str, _id(EXAMPLE_IDS["filed_by"])] | None = None


class ComplaintNote(At):
    text: Text


class Compensation(At):
    kind: CompensationKind
    amount_minor: Amount | None = None


class ComplaintRuling(At):
    outcome: ComplaintOutcome


class NewViolation(At):
    violation_id: Annotated[str, _id(EXAMPLE_IDS["violation_id"])]
    category: ViolationCategory
    points: Annotated[int, Field(ge=1, le=VIOLATION_POINTS_MAX, strict=True), WHOLE]
    reason: Reason
    reference: Annotated[str, Field(max_length=REASON_MAX_CHARS)] = ""


class FakeTradeCase(At):
    case_id: Annotated[str, _id(EXAMPLE_IDS["case_id"])]
    trade_ids: Annotated[list[Id], Field(min_length=1, max_length=FAKE_TRADE_CASE_TRADES_MAX)]


class SearchCheatingCase(At):
    case_id: Annotated[str, _id(EXAMPLE_IDS["case_id"])]
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=SEARCH_CHEATING_ITEMS_MAX)]
    kind: SearchCheatingKind


class DeadlineRunRequest(Body):
    now: BusinessTime


MinPosition = Annotated[
    int,
    Field(
        ge=0, le=POSITION_MAX, strict=True, description="wait until the view reflects this position"
    ),
    WHOLE,
]


class BatchScope(Body):
    """What every batch query may say besides its ids: as of when, under which
    rulebook, and the position the view must reflect first."""

    as_of: BusinessTime | None = None
    rulebook: Annotated[str, Field(pattern=RULEBOOK_ID_PATTERN)] | None = None
    min_position: MinPosition | None = None


class CreditBatchRequest(BatchScope):
    member_ids: Annotated[list[Id], Field(min_length=1)]
    role: Literal["seller", "buyer"] = "seller"


class DsrBatchRequest(BatchScope):
    seller_ids: Annotated[list[Id], Field(min_length=1)]


class PenaltyBatchRequest(BatchScope):
    seller_ids: Annotated[list[Id], Field(min_length=1)]


# --- Responses ----------------------------------------------------------------------


class Positions(BaseModel):
    positions: list[int]


class Problem(BaseModel):
    """RFC 9457 problem details, with TrustLedger's stable code and the offending field."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None
    retryable: bool | None = None


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_schema() -> dict[str, Any]:
    """The one Problem component: ``code`` lists every value it takes."""
    schema = Problem.model_json_schema()
    schema["properties"]["code"]["enum"] = list(CODES)
    schema["properties"]["code"]["description"] = (
        "the stable machine code: branch on this (docs/api.md lists what each means)"
    )
    return schema


def _problem(description: str) -> dict[str, object]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }


PROBLEMS: dict[int | str, dict[str, object]] = {
    400: _problem(
        "a request the server could not read (malformed HTTP, or a body that is not JSON)"
    ),
    401: _problem("no or an unknown API key"),
    403: _problem("the key's role may not do this"),
    404: _problem("an unknown member, trade, refund, rating, complaint or case"),
    409: _problem(
        "the fact contradicts the current state, or the idempotency key was used for another command"
    ),
    413: _problem("a body or a batch over its limit"),
    422: _problem("malformed or out-of-range input"),
    429: _problem("over the key's rate, or too many requests without a valid key"),
    503: _problem(
        "the database cannot be reached just now, or the view is behind: retry after Retry-After"
    ),
}
PROBLEMS_503 = _problem("no tree head key is configured")


class PublicKeyOut(BaseModel):
    algorithm: Literal["Ed25519"]
    key_id: str
    public_key_pem: str


def with_rulebook_limits(document: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The limits the rulebook sets on input, where the schema states them: the
    static models say what any rulebook could allow, the server refuses what
    its own rulebook does not, and callers should read the latter."""
    models = document["components"]["schemas"]
    models["NewRating"]["properties"]["comment"]["maxLength"] = policy.rating.comment_max_chars
    models["NewTrade"]["properties"]["currency"]["enum"] = [policy.currency]
    days = models["TimerExtension"]["properties"]["days"]
    days["minimum"] = policy.confirm_timer.extension_min_days
    days["maximum"] = policy.confirm_timer.extension_max_days
    return document


# The query parameters that name a rulebook (what-if compares one with a ``base``).
RULEBOOK_PARAMETERS = frozenset({"rulebook", "base"})


def with_rulebook_ids(document: dict[str, Any], rulebook_ids: list[str]) -> dict[str, Any]:
    """Every rulebook a request may name, as the list of the rulebooks this
    server holds: the pattern says what an id looks like, the list which exist."""
    models = document["components"]["schemas"]
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in RULEBOOK_PARAMETERS:
                    _enumerate(parameter["schema"], rulebook_ids)
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                reference = media["schema"].get("$ref", "")
                model = models.get(reference.rsplit("/", 1)[-1], {})
                if "rulebook" in model.get("properties", {}):
                    _enumerate(model["properties"]["rulebook"], rulebook_ids)
    return document


def _enumerate(schema: dict[str, Any], values: list[str]) -> None:
    """Set the enum on the schema's string branch (a nullable one has two)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch["enum"] = values


_LIMITS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def with_whole_limits(node: Any) -> Any:
    """Numeric limits as the integers they are: the document's models hold them
    as floats (1000000000000000.0), which a reader takes for a number type."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _LIMITS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                with_whole_limits(value)
    elif isinstance(node, list):
        for item in node:
            with_whole_limits(item)
    return node
