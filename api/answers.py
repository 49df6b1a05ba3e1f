"""The answers' shapes: every answer of a query is a msgspec Struct defined
here once. The server encodes it, the OpenAPI document carries msgspec's JSON
Schema of it, and the client decodes into it; no web framework is imported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from ledger.commands import UtcTime
from ledger.deadlines import DeadlineRun
from ledger.events import Score
from ledger.policy import Policy, RulebookHeader
from ledger.trade_record import TradeRecord
from ledger.tree_head import TreeHead
from projections.buyers import BuyerHistory
from projections.credit import Counted, CreditResult
from projections.credit import Reason as CreditReason
from projections.dsr import DsrResult
from projections.explanations import ExplanationPage
from projections.log_tree import ConsistencyProof, InclusionProof, TreeHeadPage
from projections.marketplace import ViolationFacts
from projections.penalties import Penalty, PenaltyReason
from projections.queries import Answer, Series, UnknownSeller
from projections.rulebook import Fraction, Rulebook, Scoring
from projections.seller_cases import ComplaintPage, RefundPage
from projections.seller_level import SellerLevel
from projections.series import Step
from projections.trade_lists import TradePage
from projections.violations import Ban, ViolationStanding
from projections.whatif import LevelMove, WhatIf

JSON = "application/json"


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
    # Corrections as of the answer's time: ``score`` above is the revised one
    # once a revision is in force, ``given_score`` the one first given.
    given_score: Score | None = None
    revised_at: UtcTime | None = None
    withdrawn_at: UtcTime | None = None
    default: bool = False  # recorded for a silent rater when the window closed


class CreditExplainedAnswer(msgspec.Struct, frozen=True):
    """A credit and every rating behind it, with how each counted (the command
    line's ``credit --explain``; over HTTP the explanation comes in pages)."""

    credit: CreditAnswer
    explained: tuple[RatingExplained, ...]


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
        rating_explained(counted)
        for counted in page.ratings
        if hidden_shown or counted.reason != "hidden"
    )
    return CreditExplanationAnswer(
        *_stamps(answer), score=answer.figure.score, ratings=ratings, next_cursor=page.next_cursor
    )


def rating_explained(counted: Counted) -> RatingExplained:
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
        given_score=record.score,
        revised_at=record.revised_at,
        withdrawn_at=record.withdrawn_at,
        default=record.default,
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


class PenaltyAnswer(Penalty, frozen=True):
    """The search-ranking penalty a ranking engine receives, then ``Stamped``'s
    fields (a Struct has one base with fields: the figure; the stamps are
    repeated here, and follow the figure's fields)."""

    rulebook: str
    as_of: UtcTime
    position: int


def penalty_answer(penalty: Penalty, stamp: Answer[Any]) -> PenaltyAnswer:
    # By position, not by name: this runs for every seller of a batch.
    values: tuple[Any, ...] = (*msgspec.structs.astuple(penalty), *_stamps(stamp))
    return PenaltyAnswer(*values)


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


class SellerLevelAnswer(Stamped, frozen=True, kw_only=True):
    """A seller's level as buyers see it under rulebooks that grade sellers
    by defects (eBay-style: top rated, above standard, below standard), with
    the figures behind it; ``level`` is null under a rulebook without seller
    levels."""

    level: SellerLevel | None


def seller_level_answer(answer: Answer[SellerLevel | None]) -> SellerLevelAnswer:
    return SellerLevelAnswer(*_stamps(answer), level=answer.figure)


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


class BuyerHistoryAnswer(BuyerHistory, frozen=True):
    """A buyer's history and tier, after ``Stamped``'s fields (the figure's
    fields are keyword-only: msgspec writes these positional ones first)."""

    rulebook: str
    as_of: UtcTime
    position: int


def buyer_history_answer(answer: Answer[BuyerHistory]) -> BuyerHistoryAnswer:
    return BuyerHistoryAnswer(*_stamps(answer), **msgspec.structs.asdict(answer.figure))


# --- Series ---------------------------------------------------------------------
# A series answer names the member, its stamps and the step once; each point is
# the single query's answer as of the point's time without them (``_point``).


class CreditPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A member's credit as of one time of a series (``CreditAnswer`` without its stamps)."""

    as_of: UtcTime
    score: int
    level: CreditLevel
    positive_rate_lifetime: Fraction | None
    positive_rate_180d: Fraction | None
    ratings: RatingCounts


class CreditSeriesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A member's credit in one role at the end of each step, in time order."""

    member_id: str
    rulebook: str
    step: Step
    points: tuple[CreditPoint, ...]
    position: int


class DsrPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's shop scores as of one time of a series (``DsrAnswer`` without its stamps)."""

    as_of: UtcTime
    as_described: float | None
    service: float | None
    shipping_speed: float | None
    logistics: float | None
    count: int


class DsrSeriesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's shop scores at the end of each step, in time order."""

    seller_id: str
    rulebook: str
    step: Step
    points: tuple[DsrPoint, ...]
    position: int


class PenaltyPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's penalty as of one time of a series (``PenaltyAnswer`` without
    its stamps and the seller's id)."""

    as_of: UtcTime
    searchable: bool
    multiplier: Fraction
    sort_hidden: bool
    demoted_items: dict[str, UtcTime]
    demoted_items_unlisted: int
    verified: bool
    reasons: tuple[PenaltyReason, ...]


class PenaltySeriesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's search-ranking penalty at the end of each step, in time order."""

    seller_id: str
    rulebook: str
    step: Step
    points: tuple[PenaltyPoint, ...]
    position: int


class ViolationsPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's violation standing as of one time of a series: its points
    this year, whether it is sealed, and the bans in force then (the records
    are in ``GET /v1/sellers/{seller_id}/violations``)."""

    as_of: UtcTime
    points: ViolationPoints
    sealed: bool
    bans_in_force: tuple[Ban, ...]


class ViolationsSeriesAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's violation standing at the end of each step, in time order."""

    seller_id: str
    rulebook: str
    step: Step
    points: tuple[ViolationsPoint, ...]
    position: int


P = TypeVar("P", bound=msgspec.Struct)


def _point(answer: msgspec.Struct, point: type[P]) -> P:
    """The single query's answer as a series point: its fields the point has, as they are."""
    return point(**{name: getattr(answer, name) for name in point.__struct_fields__})


def credit_series_answer(
    member_id: str, step: Step, series: Series[CreditResult]
) -> CreditSeriesAnswer:
    points = tuple(_point(credit_answer(p), CreditPoint) for p in series.points)
    return CreditSeriesAnswer(
        member_id=member_id,
        rulebook=series.rulebook,
        step=step,
        points=points,
        position=series.position,
    )


def dsr_series_answer(
    seller_id: str, step: Step, series: Series[DsrResult], *, decimals: int
) -> DsrSeriesAnswer:
    points = tuple(_point(dsr_answer(p, decimals=decimals), DsrPoint) for p in series.points)
    return DsrSeriesAnswer(
        seller_id=seller_id,
        rulebook=series.rulebook,
        step=step,
        points=points,
        position=series.position,
    )


def violations_series_answer(
    seller_id: str, step: Step, series: Series[ViolationStanding]
) -> ViolationsSeriesAnswer:
    points = tuple(
        ViolationsPoint(
            as_of=p.as_of,
            points=ViolationPoints(p.figure.general, p.figure.serious),
            sealed=p.figure.sealed,
            bans_in_force=tuple(p.figure.active_bans(p.as_of)),
        )
        for p in series.points
    )
    return ViolationsSeriesAnswer(
        seller_id=seller_id,
        rulebook=series.rulebook,
        step=step,
        points=points,
        position=series.position,
    )


def penalty_series_answer(
    seller_id: str, step: Step, series: Series[Penalty]
) -> PenaltySeriesAnswer:
    points = tuple(_point(penalty_answer(p.figure, p), PenaltyPoint) for p in series.points)
    return PenaltySeriesAnswer(
        seller_id=seller_id,
        rulebook=series.rulebook,
        step=step,
        points=points,
        position=series.position,
    )


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


class RulebookAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A rulebook whole: its header, the write side's policy (deadlines,
    limits) and the scoring every figure follows (levels, tiers, windows,
    exclusions, factors), as the server loaded it."""

    id: str
    scoring_stamp: str
    default: bool
    header: RulebookHeader
    policy: Policy
    scoring: Scoring


def rulebook_answer(rulebook: Rulebook, *, default: bool) -> RulebookAnswer:
    return RulebookAnswer(
        id=rulebook.id,
        scoring_stamp=rulebook.scoring_stamp,
        default=default,
        header=rulebook.rulebook,
        policy=rulebook.policy,
        scoring=rulebook.scoring,
    )


# --- What-if ----------------------------------------------------------------------


class LevelShift(msgspec.Struct, frozen=True):
    """How many sellers move ``levels`` steps (up when positive) from one
    rulebook to the other, on a level scale the two share."""

    levels: int
    sellers: int


class MultiplierChange(msgspec.Struct, frozen=True):
    """A seller whose ranking multiplier differs between the two rulebooks."""

    seller_id: str
    base: float
    rulebook: float
    change: float  # rulebook's less base's


class WhatIfAnswer(Stamped, frozen=True, kw_only=True):
    """Every seller's level and penalty under a rulebook (``rulebook``) against
    another (``base``), as of one time: how many change, where their levels
    land, and the sellers whose ranking multiplier changes most.

    ``level_shifts`` counts the sellers by how many levels they move (zero
    included); it is null when the two rulebooks grade on different level
    scales, whose numbers do not compare: ``level_moves`` then says where
    sellers land, by pair of level names (it is given in both cases).
    ``complete`` is false when there were more sellers than the server folds
    in one answer: only the first ``sellers``, by id, are counted."""

    base: str
    sellers: int
    complete: bool
    same_level_scale: bool
    level_changed: int | None
    searchable_changed: int
    sort_hidden_changed: int
    multiplier_changed: int
    level_shifts: tuple[LevelShift, ...] | None
    level_moves: tuple[LevelMove, ...]
    multiplier_changes: tuple[MultiplierChange, ...]


def whatif_answer(
    report: WhatIf, *, position: int, complete: bool, listed_max: int
) -> WhatIfAnswer:
    """The report of ``projections.whatif.what_if`` (its ``rulebook`` the base),
    with the ``listed_max`` sellers whose multiplier changes most, the largest
    change first (then by seller id)."""
    same_scale = report.level_changed is not None
    shifts: tuple[LevelShift, ...] | None = None
    if same_scale:
        moved = Counter(c.after.level - c.before.level for c in report.changes)
        moved[0] += report.sellers - sum(moved.values())  # those the report does not list
        shifts = tuple(LevelShift(levels, n) for levels, n in sorted(moved.items()) if n)
    changed = [
        MultiplierChange(
            c.seller_id,
            c.before.multiplier,
            c.after.multiplier,
            c.after.multiplier - c.before.multiplier,
        )
        for c in report.changes
        if c.before.multiplier != c.after.multiplier
    ]
    changed.sort(key=lambda m: (-abs(m.change), m.seller_id))
    return WhatIfAnswer(
        report.versus,
        report.as_of,
        position,
        base=report.rulebook,
        sellers=report.sellers,
        complete=complete,
        same_level_scale=same_scale,
        level_changed=report.level_changed,
        searchable_changed=report.searchable_changed,
        sort_hidden_changed=report.sort_hidden_changed,
        multiplier_changed=report.multiplier_changed,
        level_shifts=shifts,
        level_moves=report.level_moves,
        multiplier_changes=tuple(changed[:listed_max]),
    )


# The roles of ``api.auth.Role``, spelled out: the client reads this module
# and nothing else of the server's (``api.routes.caller`` checks the two agree).
KeyRole = Literal["service", "ranking", "reader", "auditor", "admin"]


class CallerAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The calling key: its id, its role and the caller whose idempotency keys it shares."""

    key_id: str
    role: KeyRole
    caller: str


# --- Operations ----------------------------------------------------------------------


ReadModel = Literal["view", "penalty_feed", "log_tree"]


class ProjectionStanding(msgspec.Struct, frozen=True):
    """How far one read model trails the log: the last position it reflects."""

    name: ReadModel
    position: int
    lag_events: int


class DeadlinesStanding(msgspec.Struct, frozen=True):
    """The deadline index by the ledger's clock: trades due now (counted up to
    a limit; ``more``: others beyond it), the oldest due time among them (how
    far behind the deadline worker is) and the next time one falls due."""

    due: int
    more: bool
    oldest_due_at: UtcTime | None
    next_due_at: UtcTime | None


class KeyStanding(msgspec.Struct, frozen=True):
    """An API key as the key ring holds it (never its secret or hash)."""

    id: str
    role: KeyRole
    caller: str
    state: Literal["valid", "ended"]
    created_at: UtcTime
    expires_at: UtcTime | None
    revoked_at: UtcTime | None


class RefusalCount(msgspec.Struct, frozen=True):
    code: str
    count: int


class RefusalSeen(msgspec.Struct, frozen=True):
    """One problem answered: when (recording clock), its status and code, the
    route and the calling key's id (null: no valid key)."""

    at: UtcTime
    status: int
    code: str
    route: str | None
    key_id: str | None


class OperationsStatusAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator watches: the log's head and how far each read model
    trails it, the deadlines due, the API keys, and the problems answered by
    code since the server started (all workers') with the latest ones seen by
    the worker that answers (``worker``: its process id)."""

    at: UtcTime
    log_position: int
    view_lag_seconds: float
    view_version: int | None
    projections: tuple[ProjectionStanding, ...]
    deadlines: DeadlinesStanding
    keys: tuple[KeyStanding, ...]
    refusals_since: UtcTime
    refusals: tuple[RefusalCount, ...]
    recent_refusals: tuple[RefusalSeen, ...]
    worker: int


class UnknownMember(msgspec.Struct, frozen=True):
    """A member unknown as of the batch's time: never registered, or registered later."""

    member_id: str
    unknown: Annotated[bool, msgspec.Meta(extra_json_schema={"const": True})] = True


ANSWERS: tuple[type[msgspec.Struct], ...] = (
    RulebooksAnswer,
    RulebookAnswer,
    CreditAnswer,
    CreditExplanationAnswer,
    DsrAnswer,
    PenaltyAnswer,
    CreditSeriesAnswer,
    DsrSeriesAnswer,
    PenaltySeriesAnswer,
    ViolationsSeriesAnswer,
    UnknownSeller,
    UnknownMember,
    ViolationsAnswer,
    SellerLevelAnswer,
    BuyerHistoryAnswer,
    TreeHead,
    InclusionProof,
    TreeHeadPage,
    ConsistencyProof,
    DeadlineRun,
    TradeRecord,
    TradePage,
    ComplaintPage,
    RefundPage,
    CallerAnswer,
    WhatIfAnswer,
    OperationsStatusAnswer,
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
CREDIT_BATCH_ANSWER = "CreditBatchAnswer"
DSR_BATCH_ANSWER = "DsrBatchAnswer"
for _name, _member, _answer, _what in (
    (CREDIT_BATCH_ANSWER, "credits", "CreditAnswer", "credit"),
    (DSR_BATCH_ANSWER, "shop_scores", "DsrAnswer", "shop scores"),
):
    ANSWER_SCHEMAS[_name] = {
        "title": _name,
        "description": f"The {_what} of many members, an entry per member asked, in order.",
        "type": "object",
        "properties": {
            _member: {
                "type": "array",
                "items": {"anyOf": [_ref(_answer), _ref("UnknownMember")]},
            }
        },
        "required": [_member],
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
