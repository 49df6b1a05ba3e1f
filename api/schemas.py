"""HTTP request and response schemas, and the answers' shapes.

Requests are Pydantic models, at the edge only: FastAPI checks and documents
them, and inside they become msgspec command Structs. Answers are msgspec
Structs, each shape defined once: the body is that Struct encoded by msgspec,
and the OpenAPI document carries msgspec's JSON Schema of the same Struct.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from ledger.commands import (
    AMOUNT_MINOR_MAX,
    FAKE_TRADE_CASE_TRADES_MAX,
    REASON_MAX_CHARS,
    SEARCH_CHEATING_ITEMS_MAX,
    TEXT_MAX_CHARS,
    TIMER_EXTENSION_DAYS_MAX,
    VIOLATION_POINTS_MAX,
    UtcTime,
)
from ledger.deadlines import DeadlineRun
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
from ledger.limits import BUSINESS_TIME_RANGE, business_time_refusal
from ledger.policy import (
    RULEBOOK_ID_PATTERN,
    ComplaintType,
    GoodsKind,
    Severity,
    ShippingMethod,
    ViolationCategory,
)
from ledger.tree_head import TreeHead
from projections.buyers import BuyerHistory
from projections.credit import Counted, CreditResult
from projections.credit import Reason as CreditReason
from projections.dsr import DsrResult
from projections.explanations import ExplanationPage
from projections.log_tree import ConsistencyProof, InclusionProof
from projections.marketplace import ViolationFacts
from projections.penalties import Penalty
from projections.queries import Answer, UnknownSeller
from projections.rulebook import Fraction, Rulebook
from projections.violations import Ban, ViolationStanding

JSON = "application/json"

Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS, examples=["T-1001"])]
# A platform id in a path, checked as the same id in a body is.
PathId = Annotated[str, Path(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]
Amount = Annotated[int, Field(gt=0, le=AMOUNT_MINOR_MAX, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX_CHARS)]
DsrScore = Annotated[int, Field(ge=1, le=5, strict=True)]


def _rfc3339_text(value: object) -> object:
    """A time arrives as text: a bare number is not taken as seconds since 1970."""
    if not isinstance(value, str | datetime):
        raise ValueError("Expected an RFC 3339 time with an offset, as text")
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
    Field(description=f"RFC 3339 with an offset, {BUSINESS_TIME_RANGE}"),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class At(Body):
    occurred_at: BusinessTime


class NewMember(At):
    member_id: Id


class NewTrade(At):
    trade_id: Id
    buyer_id: Id
    seller_id: Id
    item_id: Id
    amount_minor: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    goods_kind: GoodsKind
    shipping: ShippingMethod


class Receipt(At):
    by: Literal["buyer"] = "buyer"


class TimerExtension(At):
    days: Annotated[int, Field(ge=1, le=TIMER_EXTENSION_DAYS_MAX, strict=True)]


class Closing(At):
    # Not "refunded_in_full": the ledger closes a trade for that reason itself.
    reason: Literal["unpaid", "buyer_cancelled", "seller_cancelled", "out_of_stock"]


class NewRefund(At):
    refund_id: Id
    amount_minor: Amount
    reason: RefundReason
    with_return: bool


class NewDispute(At):
    refund_id: Id


class DisputeRuling(At):
    outcome: DisputeOutcome


class ShopScores(Body):
    as_described: DsrScore
    service: DsrScore
    shipping_speed: DsrScore
    logistics: DsrScore


class NewRating(At):
    rater: Party
    rater_id: Id | None = None
    score: Score
    dsr: ShopScores | None = None
    comment: Annotated[str, Field(max_length=TEXT_MAX_CHARS)] = ""


class Revision(At):
    score: Literal["positive"] = "positive"
    rater_id: Id | None = None


class Withdrawal(At):
    rater_id: Id | None = None


class Explanation(At):
    text: Text
    author_id: Id | None = None


class FollowUp(At):
    text: Text
    author_id: Id | None = None


class Shielding(At):
    reason: Reason


class NewComplaint(At):
    complaint_id: Id
    trade_id: Id
    type: ComplaintType
    severity: Severity
    evidence: Annotated[str, Field(max_length=TEXT_MAX_CHARS)] = ""
    filed_by: Id | None = None


class ComplaintNote(At):
    text: Text


class Compensation(At):
    kind: CompensationKind
    amount_minor: Amount | None = None


class ComplaintRuling(At):
    outcome: ComplaintOutcome


class NewViolation(At):
    violation_id: Id
    category: ViolationCategory
    points: Annotated[int, Field(ge=1, le=VIOLATION_POINTS_MAX, strict=True)]
    reason: Reason
    reference: Annotated[str, Field(max_length=REASON_MAX_CHARS)] = ""


class FakeTradeCase(At):
    case_id: Id
    trade_ids: Annotated[list[Id], Field(min_length=1, max_length=FAKE_TRADE_CASE_TRADES_MAX)]


class SearchCheatingCase(At):
    case_id: Id
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=SEARCH_CHEATING_ITEMS_MAX)]
    kind: SearchCheatingKind


class DeadlineRunRequest(Body):
    now: BusinessTime


class PenaltyBatchRequest(Body):
    seller_ids: Annotated[list[Id], Field(min_length=1)]
    as_of: BusinessTime | None = None
    rulebook: Annotated[str, Field(pattern=RULEBOOK_ID_PATTERN)] | None = None


# --- Responses ----------------------------------------------------------------------


class Positions(BaseModel):
    positions: list[int]


# --- Answers -------------------------------------------------------------------------
# Every answer shape is defined once, as a msgspec Struct: msgspec encodes the
# body (as the ranking engine's hot path always has) and msgspec's JSON Schema
# of the same Struct documents it (``answered_by``, ``with_answer_schemas``).
# A figure served as it is (the penalty, the buyer history) is that Struct,
# stamped. Field order is part of the shape: the stamps lead every answer but
# the penalty, which ends with them.


class Stamped(msgspec.Struct, frozen=True):
    """What produced an answer: the scoring rulebook (id@version), the business
    time it is computed as of, and the last log position it reflects."""

    rulebook: str
    as_of: UtcTime
    position: int


def _stamps(answer: Answer[Any]) -> tuple[str, datetime, int]:
    """An answer's stamps, in ``Stamped``'s order."""
    return answer.rulebook, answer.as_of, answer.position


def _stamped(figure: type[msgspec.Struct], doc: str) -> type[msgspec.Struct]:
    """The answer that serves a figure as it is, with ``Stamped``'s fields added.

    A Struct has one base with fields, so the figure is the base and the
    stamps are added by name and type. They follow the figure's fields, or
    lead them when those are keyword-only, as the buyer history's are:
    msgspec writes a Struct's positional fields first.
    """
    stamp_fields = [(f.name, f.type) for f in msgspec.structs.fields(Stamped)]
    return msgspec.defstruct(
        f"{figure.__name__}Answer",
        stamp_fields,
        bases=(figure,),
        frozen=True,
        module=__name__,
        namespace={"__doc__": doc},
    )


class CreditLevel(msgspec.Struct, frozen=True):
    index: Annotated[int, msgspec.Meta(ge=0, le=20)]
    name: str
    icon: str


class RatingCounts(msgspec.Struct, frozen=True):
    positive: int
    neutral: int
    negative: int
    unscored: int


class CreditAnswer(Stamped, frozen=True, kw_only=True):
    """A member's credit in one role: counted points, level and positive rates."""

    score: int
    level: CreditLevel
    positive_rate_lifetime: Fraction | None
    positive_rate_180d: Fraction | None
    ratings: RatingCounts


def credit_answer(answer: Answer[CreditResult]) -> CreditAnswer:
    credit = answer.figure
    return CreditAnswer(
        *_stamps(answer),
        score=credit.score,
        level=CreditLevel(credit.level.index, credit.level.name, credit.level.icon),
        positive_rate_lifetime=credit.positive_rate_lifetime,
        positive_rate_180d=credit.positive_rate_window,
        ratings=RatingCounts(credit.positive, credit.neutral, credit.negative, credit.unscored),
    )


class RatingExplained(msgspec.Struct, frozen=True):
    """One rating and how it counts: its points, or the rule that excluded it."""

    trade_id: str
    rater_id: str
    position: int
    score: Score
    points: int
    reason: CreditReason | None
    order_created_at: UtcTime
    visible_at: UtcTime


class CreditExplanationAnswer(Stamped, frozen=True, kw_only=True):
    """Why a member's credit is what it is: a page of the ratings received, in
    order of order creation; ``next_cursor`` asks for the next page (null: none)."""

    score: int
    ratings: tuple[RatingExplained, ...]
    next_cursor: str | None = None


def credit_explanation_answer(
    answer: Answer[CreditResult], page: ExplanationPage, *, hidden_shown: bool
) -> CreditExplanationAnswer:
    ratings = tuple(
        _rating_explained(counted)
        for counted in page.ratings
        if hidden_shown or counted.reason != "hidden"
    )
    return CreditExplanationAnswer(
        *_stamps(answer), score=answer.figure.score, ratings=ratings, next_cursor=page.next_cursor
    )


def _rating_explained(counted: Counted) -> RatingExplained:
    record = counted.record
    return RatingExplained(
        record.trade_id,
        record.rater_id,
        record.position,
        counted.score,
        counted.points,
        counted.reason,
        record.order_created_at,
        record.visible_at,
    )


class DsrAnswer(Stamped, frozen=True, kw_only=True):
    """A seller's shop scores, each the mean over the window, rounded for display."""

    as_described: float | None
    service: float | None
    shipping_speed: float | None
    logistics: float | None
    count: int


def dsr_answer(answer: Answer[DsrResult], *, decimals: int) -> DsrAnswer:
    dsr = answer.figure

    def shown(mean: float | None) -> float | None:
        return round(mean, decimals) if mean is not None else None

    return DsrAnswer(
        *_stamps(answer),
        as_described=shown(dsr.as_described),
        service=shown(dsr.service),
        shipping_speed=shown(dsr.shipping_speed),
        logistics=shown(dsr.logistics),
        count=dsr.count,
    )


PenaltyAnswer = _stamped(Penalty, "The search-ranking penalty a ranking engine receives.")


def penalty_answer(penalty: Penalty, stamp: Answer[Any]) -> msgspec.Struct:
    # By position, not by name: this runs for every seller of a batch.
    return PenaltyAnswer(*msgspec.structs.astuple(penalty), *_stamps(stamp))


class ViolationPoints(msgspec.Struct, frozen=True):
    general: int
    serious: int


class ViolationRecord(msgspec.Struct, frozen=True):
    """Points against the seller: a violation, an upheld complaint or a fake-trade case."""

    source: str
    source_id: str
    category: str
    points: int
    reason: str
    occurred_at: UtcTime
    position: int


class ViolationsAnswer(Stamped, frozen=True, kw_only=True):
    """A seller's violation points this year, every record, and the bans they set off."""

    points: ViolationPoints
    sealed: bool
    records: tuple[ViolationRecord, ...]
    bans: tuple[Ban, ...]


def violations_answer(answer: Answer[ViolationStanding]) -> ViolationsAnswer:
    standing = answer.figure
    return ViolationsAnswer(
        *_stamps(answer),
        points=ViolationPoints(standing.general, standing.serious),
        sealed=standing.sealed,
        records=tuple(_violation_record(v) for v in standing.records),
        bans=standing.bans,
    )


def _violation_record(facts: ViolationFacts) -> ViolationRecord:
    return ViolationRecord(
        facts.source,
        facts.source_id,
        facts.category,
        facts.points,
        facts.reason,
        facts.stamp.at,
        facts.stamp.position,
    )


BuyerHistoryAnswer = _stamped(BuyerHistory, "A buyer's history and tier.")


def buyer_history_answer(answer: Answer[BuyerHistory]) -> msgspec.Struct:
    return BuyerHistoryAnswer(*_stamps(answer), **msgspec.structs.asdict(answer.figure))


# Every Struct an answer serves, for the OpenAPI document.
class RulebookEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A rulebook a query may name by its id."""

    id: str
    title: str
    policy_version: int
    scoring_version: int
    scoring_stamp: str
    default: bool


class RulebooksAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The rulebooks this server answers under, by id."""

    rulebooks: tuple[RulebookEntry, ...]


def rulebooks_answer(rulebooks: Iterable[Rulebook], default: str) -> RulebooksAnswer:
    return RulebooksAnswer(
        rulebooks=tuple(
            RulebookEntry(
                id=rulebook.id,
                title=rulebook.rulebook.title,
                policy_version=rulebook.policy.version,
                scoring_version=rulebook.scoring.version,
                scoring_stamp=rulebook.scoring_stamp,
                default=rulebook.id == default,
            )
            for rulebook in rulebooks
        )
    )


ANSWERS: tuple[type[msgspec.Struct], ...] = (
    RulebooksAnswer,
    CreditAnswer,
    CreditExplanationAnswer,
    DsrAnswer,
    PenaltyAnswer,
    UnknownSeller,
    ViolationsAnswer,
    BuyerHistoryAnswer,
    TreeHead,
    InclusionProof,
    ConsistencyProof,
    DeadlineRun,
)
_SCHEMA_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMA_REF.format(name=name)}


_, ANSWER_SCHEMAS = msgspec.json.schema_components(ANSWERS, ref_template=_SCHEMA_REF)
# The batch's envelope: msgspec describes no union of untagged Structs.
PENALTY_BATCH_ANSWER = "PenaltyBatchAnswer"
ANSWER_SCHEMAS[PENALTY_BATCH_ANSWER] = {
    "title": PENALTY_BATCH_ANSWER,
    "description": "Penalties for many sellers under one stamp, an entry per seller asked, in order.",
    "type": "object",
    "properties": {
        "penalties": {
            "type": "array",
            "items": {"anyOf": [_ref(PenaltyAnswer.__name__), _ref(UnknownSeller.__name__)]},
        }
    },
    "required": ["penalties"],
}


def answered_by(
    answer: type[msgspec.Struct] | str, description: str = "Successful Response"
) -> dict[int | str, dict[str, Any]]:
    """The 200 response of a route that serves an answer encoded by msgspec."""
    name = answer if isinstance(answer, str) else answer.__name__
    return {200: {"description": description, "content": {JSON: {"schema": _ref(name)}}}}


def with_answer_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the answers' schemas among its components."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    clash = sorted(components.keys() & ANSWER_SCHEMAS.keys())
    if clash:  # one name for two shapes would describe one of them wrongly
        raise ValueError(f"schema names used by both a request and an answer: {clash}")
    components.update(ANSWER_SCHEMAS)
    return document


class Problem(BaseModel):
    """RFC 9457 problem details, with TrustLedger's stable code and the offending field."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None
    retryable: bool | None = None


def _problem(description: str) -> dict[str, object]:
    schema = Problem.model_json_schema()
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


PROBLEMS: dict[int | str, dict[str, object]] = {
    401: _problem("no or an unknown API key"),
    403: _problem("the key's role may not do this"),
    404: _problem("an unknown member, trade, refund, rating, complaint or case"),
    409: _problem(
        "the fact contradicts the current state, or the idempotency key was used for another command"
    ),
    413: _problem("a batch over its limit"),
    422: _problem("malformed or out-of-range input"),
    503: _problem("the database cannot be reached just now: try again after Retry-After"),
}
PROBLEMS_503 = _problem("no tree head key is configured")


class PublicKeyOut(BaseModel):
    algorithm: Literal["Ed25519"]
    key_id: str
    public_key_pem: str
