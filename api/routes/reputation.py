"""Queries (roles ranking, reader, auditor, admin): figures as of a time, at a position.

Every GET takes ``as_of`` (business time), ``at_position`` (auditors only) and
``rulebook``; every answer carries ``rulebook``, ``as_of`` and ``position``.
``min_position`` lets a caller read its own writes: the view is brought up to
that position first.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

import msgspec
from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api.auth import AUDIT_ROLES, PENALTY_ROLES, QUERY_ROLES, Principal
from api.auth import Role as AuthRole
from api.deps import ServiceDep, require
from api.problems import ApiProblem
from api.service import Service
from projections.credit import CreditResult
from projections.penalties import Penalty, PenaltyReason
from projections.queries import PENALTY_BATCH_MAX, Answer, Where
from projections.violations import ViolationStanding

# The longest rulebook id a query may name.
RULEBOOK_ID_MAX_CHARS = 64
router = APIRouter(prefix="/v1", tags=["reputation"], responses=s.PROBLEMS)
Ranker = Annotated[Principal, Depends(require(PENALTY_ROLES))]
AsOf = Annotated[AwareDatetime | None, Query(description="business time (RFC 3339); default now")]
AtPosition = Annotated[int | None, Query(ge=0, description="log position (auditors)")]
RulebookId = Annotated[
    str | None, Query(max_length=RULEBOOK_ID_MAX_CHARS, description="scoring rulebook id")
]
MinPosition = Annotated[
    int | None, Query(ge=0, description="wait until the view reflects this position")
]
PartyRole = Annotated[Literal["seller", "buyer"], Query()]


class Scope(msgspec.Struct, frozen=True):
    where: Where
    principal: Principal


def scoped(roles: frozenset[AuthRole]) -> Callable[..., Awaitable[Scope]]:
    """A dependency: the caller's key checked, then the answer's scope from the query.

    This module keeps its annotations evaluated (no ``from __future__ import
    annotations``): FastAPI reads the closure's ``Depends(require(roles))``.
    """

    async def scope(
        service: ServiceDep,
        principal: Annotated[Principal, Depends(require(roles))],
        as_of: AsOf = None,
        at_position: AtPosition = None,
        rulebook: RulebookId = None,
        min_position: MinPosition = None,
    ) -> Scope:
        if at_position is not None and principal.role not in AUDIT_ROLES:
            raise ApiProblem(403, "forbidden", "at_position is for auditors", field="at_position")
        if min_position is not None:  # the one part that waits on the database
            await run_in_threadpool(service.catch_up_to, min_position)
        service.reputation.rulebook(rulebook)  # an unknown rulebook is refused before anything runs
        return Scope(Where(as_of=as_of, at_position=at_position, rulebook=rulebook), principal)

    return scope


ReaderScope = Annotated[Scope, Depends(scoped(QUERY_ROLES))]
RankerScope = Annotated[Scope, Depends(scoped(PENALTY_ROLES))]


class StampFields(TypedDict):
    rulebook: str
    as_of: datetime
    position: int


def _stamp(answer: Answer[Any]) -> StampFields:
    return {"rulebook": answer.rulebook, "as_of": answer.as_of, "position": answer.position}


@router.get("/members/{member_id}/credit", response_model=s.CreditOut)
def credit(
    member_id: str,
    service: ServiceDep,
    scope: ReaderScope,
    role: PartyRole = "seller",
) -> s.CreditOut:
    answer = service.reputation.credit(member_id, role, scope.where)
    figure: CreditResult = answer.figure
    return s.CreditOut(
        score=figure.score,
        level=s.LevelOut(index=figure.level.index, name=figure.level.name, icon=figure.level.icon),
        positive_rate_lifetime=figure.positive_rate_lifetime,
        positive_rate_180d=figure.positive_rate_window,
        ratings=s.RatingCounts(
            positive=figure.positive,
            neutral=figure.neutral,
            negative=figure.negative,
            unscored=figure.unscored,
        ),
        **_stamp(answer),
    )


@router.get("/members/{member_id}/credit/explanation", response_model=s.CreditExplanationOut)
def credit_explanation(
    member_id: str,
    service: ServiceDep,
    scope: ReaderScope,
    role: PartyRole = "seller",
) -> s.CreditExplanationOut:
    answer = service.reputation.credit(member_id, role, scope.where)
    auditor = scope.principal.role in AUDIT_ROLES
    ratings = [
        s.RatingExplained(
            trade_id=r.record.trade_id,
            rater_id=r.record.rater_id,
            position=r.record.position,
            score=r.score,
            points=r.points,
            reason=r.reason,
            order_created_at=r.record.order_created_at,
            visible_at=r.record.visible_at,
        )
        for r in answer.figure.ratings
        if auditor or r.reason != "hidden"  # hidden ratings are shown to auditors only
    ]
    return s.CreditExplanationOut(score=answer.figure.score, ratings=ratings, **_stamp(answer))


@router.get("/sellers/{seller_id}/dsr", response_model=s.DsrOut)
def dsr(
    seller_id: str,
    service: ServiceDep,
    scope: ReaderScope,
) -> s.DsrOut:
    answer = service.reputation.dsr(seller_id, scope.where)
    decimals = service.reputation.rulebook(scope.where.rulebook).scoring.dsr.display_decimals
    means = {
        k: (round(v, decimals) if v is not None else None) for k, v in answer.figure.means().items()
    }
    return s.DsrOut(count=answer.figure.count, **means, **_stamp(answer))


class PenaltyBody(msgspec.Struct, frozen=True):
    """The penalty answer, encoded by msgspec: the ranking engine's hot path skips Pydantic.

    Its fields are exactly ``schemas.PenaltyOut``'s, which documents it.
    """

    seller_id: str
    searchable: bool
    multiplier: float
    sort_hidden: bool
    demoted_items: dict[str, datetime]
    demoted_items_unlisted: int
    verified: bool
    reasons: tuple[PenaltyReason, ...]
    rulebook: str
    as_of: datetime
    position: int


class UnknownSellerBody(msgspec.Struct, frozen=True):
    seller_id: str
    unknown: bool = True


_json = msgspec.json.Encoder()
JSON = "application/json"
# The ranking engine's two calls, also served by ``api.ranking_path``.
PENALTY_ROUTE = "/v1/sellers/{seller_id}/penalty"
BATCH_ROUTE = "/v1/penalties/batch"


def penalty_body(penalty: Penalty, rulebook: str, as_of: datetime, position: int) -> PenaltyBody:
    return PenaltyBody(
        penalty.seller_id,
        penalty.searchable,
        penalty.multiplier,
        penalty.sort_hidden,
        penalty.demoted_items,
        penalty.demoted_items_unlisted,
        penalty.verified,
        penalty.reasons,
        rulebook,
        as_of,
        position,
    )


def penalty_answer(service: Service, seller_id: str, where: Where) -> bytes:
    """One seller's penalty as the JSON body (shared with ``api.ranking_path``)."""
    answer = service.reputation.penalty(seller_id, where)
    return _json.encode(penalty_body(answer.figure, answer.rulebook, answer.as_of, answer.position))


def batch_answer(
    service: Service, seller_ids: list[str], as_of: datetime | None, rulebook: str | None
) -> bytes:
    """Many sellers' penalties, in the order asked, as the JSON body (shared too)."""
    found, stamp, answer_as_of, position = service.reputation.penalties(
        seller_ids, as_of=as_of, rulebook=rulebook
    )
    answers = [
        penalty_body(p, stamp, answer_as_of, position) if p is not None else UnknownSellerBody(i)
        for i, p in zip(seller_ids, found, strict=True)
    ]
    return _json.encode({"penalties": answers})


@router.get(PENALTY_ROUTE.removeprefix(router.prefix), response_model=s.PenaltyOut)
def penalty(seller_id: str, service: ServiceDep, scope: RankerScope) -> Response:
    return Response(penalty_answer(service, seller_id, scope.where), media_type=JSON)


@router.post(BATCH_ROUTE.removeprefix(router.prefix), response_model=s.PenaltyBatchOut)
def penalties(body: s.PenaltyBatchRequest, service: ServiceDep, who: Ranker) -> Response:
    if len(body.seller_ids) > PENALTY_BATCH_MAX:
        raise ApiProblem(
            413,
            "batch_too_large",
            f"at most {PENALTY_BATCH_MAX} sellers per batch",
            field="seller_ids",
        )
    service.reputation.rulebook(body.rulebook)
    answer = batch_answer(service, body.seller_ids, body.as_of, body.rulebook)
    return Response(answer, media_type=JSON)


@router.get("/sellers/{seller_id}/violations", response_model=s.ViolationsOut)
def violations(
    seller_id: str,
    service: ServiceDep,
    scope: ReaderScope,
) -> s.ViolationsOut:
    answer = service.reputation.violations(seller_id, scope.where)
    standing: ViolationStanding = answer.figure
    return s.ViolationsOut(
        points=s.ViolationPoints(general=standing.general, serious=standing.serious),
        sealed=standing.sealed,
        records=[
            s.ViolationRecordOut(
                source=v.source,
                source_id=v.source_id,
                category=v.category,
                points=v.points,
                reason=v.reason,
                occurred_at=v.stamp.at,
                position=v.stamp.position,
            )
            for v in standing.records
        ],
        bans=[
            s.BanOut(
                node=b.node,
                category=b.category,
                action=b.action,
                start=b.start,
                until=b.until,
                position=b.position,
            )
            for b in standing.bans
        ],
        **_stamp(answer),
    )


@router.get("/buyers/{buyer_id}/history", response_model=s.BuyerHistoryOut)
def buyer_history(
    buyer_id: str,
    service: ServiceDep,
    scope: ReaderScope,
) -> s.BuyerHistoryOut:
    answer = service.reputation.buyer_history(buyer_id, scope.where)
    history = {f: getattr(answer.figure, f) for f in answer.figure.__struct_fields__}
    return s.BuyerHistoryOut(**history, **_stamp(answer))
