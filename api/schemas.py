"""HTTP request and response schemas (Pydantic only here, at the edge: they give
the OpenAPI schema). Inside, requests become msgspec command Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ledger.commands import (
    AMOUNT_MINOR_MAX,
    FAKE_TRADE_CASE_TRADES_MAX,
    REASON_MAX_CHARS,
    SEARCH_CHEATING_ITEMS_MAX,
    TEXT_MAX_CHARS,
    TIMER_EXTENSION_DAYS_MAX,
)
from ledger.ids import ID_MAX_CHARS, ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS, examples=["T-1001"])]
Amount = Annotated[int, Field(gt=0, le=AMOUNT_MINOR_MAX, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX_CHARS)]
DsrScore = Annotated[int, Field(ge=1, le=5, strict=True)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class At(Body):
    occurred_at: AwareDatetime


class NewMember(At):
    member_id: Id


class NewTrade(At):
    trade_id: Id
    buyer_id: Id
    seller_id: Id
    item_id: Id
    amount_minor: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    goods_kind: Literal["physical", "virtual", "auto_delivery", "top_up"]
    shipping: Literal["express", "surface_mail", "overseas", "none"]


class Receipt(At):
    by: Literal["buyer"] = "buyer"


class TimerExtension(At):
    days: Annotated[int, Field(ge=1, le=TIMER_EXTENSION_DAYS_MAX, strict=True)]


class Closing(At):
    reason: Literal["unpaid", "buyer_cancelled", "seller_cancelled", "out_of_stock"]


class NewRefund(At):
    refund_id: Id
    amount_minor: Amount
    reason: Literal["not_received", "not_as_described", "damaged", "changed_mind", "other"]
    with_return: bool


class NewDispute(At):
    refund_id: Id


class DisputeRuling(At):
    outcome: Literal["seller_at_fault", "not_seller_fault"]


class ShopScores(Body):
    as_described: DsrScore
    service: DsrScore
    shipping_speed: DsrScore
    logistics: DsrScore


class NewRating(At):
    rater: Literal["buyer", "seller"]
    rater_id: Id | None = None
    score: Literal["positive", "neutral", "negative"]
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
    type: Literal["late_shipment", "not_as_described", "counterfeit", "service_attitude", "other"]
    severity: Literal["minor", "moderate", "severe"]
    evidence: Annotated[str, Field(max_length=TEXT_MAX_CHARS)] = ""
    filed_by: Id | None = None


class ComplaintNote(At):
    text: Text


class Compensation(At):
    kind: Literal["apology", "refund", "replacement", "voucher", "cash"]
    amount_minor: Amount | None = None


class ComplaintRuling(At):
    outcome: Literal["upheld", "dismissed"]


class NewViolation(At):
    violation_id: Id
    category: Literal["general", "serious"]
    points: Annotated[int, Field(ge=1, le=48, strict=True)]
    reason: Reason
    reference: Annotated[str, Field(max_length=REASON_MAX_CHARS)] = ""


class FakeTradeCase(At):
    case_id: Id
    trade_ids: Annotated[list[Id], Field(min_length=1, max_length=FAKE_TRADE_CASE_TRADES_MAX)]


class SearchCheatingCase(At):
    case_id: Id
    item_ids: Annotated[list[Id], Field(min_length=1, max_length=SEARCH_CHEATING_ITEMS_MAX)]
    kind: Literal[
        "keyword_stuffing",
        "wrong_category",
        "duplicate_listing",
        "price_cheating",
        "postage_cheating",
        "fake_sales",
    ]


class DeadlineRunRequest(Body):
    now: AwareDatetime


class PenaltyBatchRequest(Body):
    seller_ids: Annotated[list[Id], Field(min_length=1)]
    as_of: AwareDatetime | None = None
    rulebook: str | None = None


# --- Responses ----------------------------------------------------------------------


class Positions(BaseModel):
    positions: list[int]


class DeadlineRunAnswer(BaseModel):
    now: datetime
    trades_settled: int
    positions: list[int]


class Stamped(BaseModel):
    rulebook: str
    as_of: datetime
    position: int


class LevelOut(BaseModel):
    index: Annotated[int, Field(ge=0, le=20)]
    name: str
    icon: str


class RatingCounts(BaseModel):
    positive: int
    neutral: int
    negative: int
    unscored: int


class CreditOut(Stamped):
    score: int
    level: LevelOut
    positive_rate_lifetime: Annotated[float, Field(ge=0, le=1)] | None
    positive_rate_180d: Annotated[float, Field(ge=0, le=1)] | None
    ratings: RatingCounts


class RatingExplained(BaseModel):
    trade_id: str
    rater_id: str
    position: int
    score: Literal["positive", "neutral", "negative"]
    points: int
    reason: str | None
    order_created_at: datetime
    visible_at: datetime


class CreditExplanationOut(Stamped):
    score: int
    ratings: list[RatingExplained]


class DsrOut(Stamped):
    as_described: float | None
    service: float | None
    shipping_speed: float | None
    logistics: float | None
    count: int


class ReasonOut(BaseModel):
    code: str
    figure: float | None
    threshold: float | None
    until: datetime | None
    positions: list[int]


class PenaltyOut(Stamped):
    seller_id: str
    searchable: bool
    multiplier: Annotated[float, Field(ge=0, le=1)]
    sort_hidden: bool
    demoted_items: dict[str, datetime]
    demoted_items_unlisted: int
    verified: bool
    reasons: list[ReasonOut]


class UnknownSeller(BaseModel):
    seller_id: str
    unknown: Literal[True] = True


class PenaltyBatchOut(BaseModel):
    penalties: list[PenaltyOut | UnknownSeller]


class ViolationPoints(BaseModel):
    general: int
    serious: int


class ViolationRecordOut(BaseModel):
    source: str
    source_id: str
    category: str
    points: int
    reason: str
    occurred_at: datetime
    position: int


class BanOut(BaseModel):
    node: int
    category: str
    action: str
    start: datetime
    until: datetime | None
    position: int


class ViolationsOut(Stamped):
    points: ViolationPoints
    sealed: bool
    records: list[ViolationRecordOut]
    bans: list[BanOut]


class BuyerHistoryOut(Stamped):
    trades: int
    purchases: int
    net_spend_minor: int
    refunds: int
    refunded_minor: int
    refund_reasons: dict[str, int]
    disputes: int
    disputes_won: int
    disputes_lost: int
    complaints_filed: int
    complaints_upheld: int
    complaints_dismissed: int
    ratings_given: int
    ratings_given_negative_share: float | None
    ratings_received: int
    fake_trades: int
    tier: str
    tier_label: str
    window_purchases: int
    window_net_spend_minor: int


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
}
PROBLEMS_503 = _problem("no tree head key is configured")


class TreeHeadOut(BaseModel):
    """A signed tree head; bytes are base64. One line of it is what a witness keeps."""

    tree_size: int
    root_hash: str
    timestamp: datetime
    signature: str
    key_id: str


class InclusionProofOut(BaseModel):
    """RFC 9162 inclusion proof of the event at ``position`` (leaf ``leaf_index``)."""

    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProofOut(BaseModel):
    """RFC 9162 consistency proof: the tree of size ``second`` extends that of ``first``."""

    first: int
    second: int
    proof: list[str]


class PublicKeyOut(BaseModel):
    algorithm: Literal["Ed25519"]
    key_id: str
    public_key_pem: str
