"""Queries (roles ranking, reader, auditor, admin): figures as of a time, at a position.

Every GET takes ``as_of`` (business time), ``at_position`` (auditors only) and
``rulebook``; every answer carries ``rulebook``, ``as_of`` and ``position``.
As of a time, credit, shop scores, buyer history and the penalty of a member
with a long history are read from its tallies (a few rows); at a position
they are replayed from its facts (see ``AtPosition``).
``min_position`` lets a caller read its own writes: the view is brought up to
that position first. A series (``.../series``) takes a window (``from``,
``to``, ``step``) in place of ``as_of`` and answers the figure at the end of
each step, each point as the single query answers as of it.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api import answers as a
from api import schemas as s
from api.auth import APPEND_ROLES, AUDIT_ROLES, PENALTY_ROLES, QUERY_ROLES, Principal
from api.auth import Role as AuthRole
from api.deps import ServiceDep, require
from api.problems import ApiProblem
from api.service import Service
from ledger.events import Party
from ledger.policy import RULEBOOK_ID_PATTERN
from ledger.trade_record import TradeRecord
from projections.explanations import (
    CURSOR_PATTERN,
    EXPLANATION_PAGE_DEFAULT,
    EXPLANATION_PAGE_MAX,
    BadCursorError,
)
from projections.log_tree import TreeHeadPage
from projections.queries import PENALTY_BATCH_MAX, UnknownMemberError, UnknownSeller, Where
from projections.seller_cases import CASE_PAGE_DEFAULT, CASE_PAGE_MAX, ComplaintPage, RefundPage
from projections.series import SERIES_POINTS_MAX, SeriesWindowError, Step, series_times
from projections.trade_lists import TRADE_PAGE_DEFAULT, TRADE_PAGE_MAX, TradePage

# The longest rulebook id a query may name, and the longest page cursor.
RULEBOOK_ID_MAX_CHARS = 64
CURSOR_MAX_CHARS = 512
router = APIRouter(prefix="/v1", tags=["reputation"], responses=s.PROBLEMS)
Ranker = Annotated[Principal, Depends(require(PENALTY_ROLES))]
Reader = Annotated[Principal, Depends(require(QUERY_ROLES))]
# Members per credit or shop-score batch, as many as a penalty batch.
FIGURE_BATCH_MAX = PENALTY_BATCH_MAX
AsOf = Annotated[s.BusinessTime | None, Query(description="business time (RFC 3339); default now")]
AtPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=s.POSITION_MAX,
        description=(
            "log position (auditors): the figure as the log stood there, replayed from the "
            "member's facts up to it. For a member with a long history (one the view keeps "
            "tallies for) credit and shop scores are streamed from its trades a page at a "
            "time, in bounded memory; the answer takes time in proportion to that history. "
            "Other figures at a position read the member's whole file."
        ),
    ),
]
PageCursor = Annotated[
    str | None,
    Query(
        max_length=CURSOR_MAX_CHARS,
        pattern=CURSOR_PATTERN,
        description="next_cursor of the page before",
    ),
]
RulebookId = Annotated[
    str | None,
    Query(
        max_length=RULEBOOK_ID_MAX_CHARS,
        pattern=RULEBOOK_ID_PATTERN,
        description="scoring rulebook id (GET /v1/rulebooks lists them)",
    ),
]
MinPosition = Annotated[
    int | None,
    Query(ge=0, le=s.POSITION_MAX, description="wait until the view reflects this position"),
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
        _auditors_only(principal, at_position)
        await _caught_up(service, min_position)
        service.reputation.rulebook(rulebook)  # an unknown rulebook is refused before anything runs
        return Scope(Where(as_of=as_of, at_position=at_position, rulebook=rulebook), principal)

    return scope


def _auditors_only(principal: Principal, at_position: int | None) -> None:
    if at_position is not None and principal.role not in AUDIT_ROLES:
        raise ApiProblem(403, "forbidden", "at_position is for auditors", field="at_position")


async def _caught_up(service: Service, min_position: int | None) -> None:
    if min_position is not None:  # the one part that waits on the database
        await run_in_threadpool(service.catch_up_to, min_position)


ReaderScope = Annotated[Scope, Depends(scoped(QUERY_ROLES))]
RankerScope = Annotated[Scope, Depends(scoped(PENALTY_ROLES))]

# --- Series ---------------------------------------------------------------------
SeriesFrom = Annotated[
    s.BusinessTime,
    Query(alias="from", description="the window's start (RFC 3339): the first step starts here"),
]
SeriesTo = Annotated[
    s.BusinessTime,
    Query(
        alias="to",
        description="the window's end (RFC 3339), after from: the last point is as of it",
    ),
]
SeriesStep = Annotated[
    Step,
    Query(
        description=(
            "a point at the end of each step: day (24 h), week (7 days) or month (a calendar "
            f"month in the rulebook's timezone); at most {SERIES_POINTS_MAX} points"
        )
    ),
]


class SeriesScope(msgspec.Struct, frozen=True):
    """A series' scope: as ``Scope`` (``where`` without ``as_of``), with the
    step and the business time of each point."""

    where: Where
    principal: Principal
    step: Step
    times: tuple[datetime, ...]


def series_scoped(roles: frozenset[AuthRole]) -> Callable[..., Awaitable[SeriesScope]]:
    """A dependency: ``scoped``'s checks, with the window in place of ``as_of``."""

    async def scope(
        service: ServiceDep,
        principal: Annotated[Principal, Depends(require(roles))],
        start: SeriesFrom,
        end: SeriesTo,
        step: SeriesStep = "day",
        at_position: AtPosition = None,
        rulebook: RulebookId = None,
        min_position: MinPosition = None,
    ) -> SeriesScope:
        _auditors_only(principal, at_position)
        zone = service.reputation.rulebook(rulebook).scoring.zone
        try:  # a window refused is refused before anything waits or runs
            times = series_times(start, end, step, zone)
        except SeriesWindowError as error:
            raise ApiProblem(422, "invalid_input", str(error), field=error.field) from error
        await _caught_up(service, min_position)
        where = Where(at_position=at_position, rulebook=rulebook)
        return SeriesScope(where, principal, step, times)

    return scope


ReaderSeries = Annotated[SeriesScope, Depends(series_scoped(QUERY_ROLES))]
RankerSeries = Annotated[SeriesScope, Depends(series_scoped(PENALTY_ROLES))]


_json = msgspec.json.Encoder()
# The ranking engine's two calls, also served by ``api.ranking_path``.
PENALTY_ROUTE = "/v1/sellers/{seller_id}/penalty"
BATCH_ROUTE = "/v1/penalties/batch"


def _served(answer: msgspec.Struct) -> Response:
    return Response(_json.encode(answer), media_type=a.JSON)


@router.get("/rulebooks", responses=a.answered_by(a.RulebooksAnswer))
def rulebooks(
    service: ServiceDep, who: Annotated[Principal, Depends(require(frozenset(AuthRole)))]
) -> Response:
    """The rulebooks a query may name in ``rulebook``, by id, and which one is the default."""
    reputation = service.reputation
    return _served(a.rulebooks_answer(reputation.rulebooks, reputation.default_rulebook))


@router.get("/rulebooks/{rulebook}", responses=a.answered_by(a.RulebookAnswer))
def rulebook(
    service: ServiceDep,
    who: Annotated[Principal, Depends(require(frozenset(AuthRole)))],
    rulebook: Annotated[str, Path(max_length=RULEBOOK_ID_MAX_CHARS, pattern=RULEBOOK_ID_PATTERN)],
) -> Response:
    """A rulebook whole, as figures are computed under it: every level and its
    threshold, the buyer tiers, every window, cap, factor and deadline."""
    reputation = service.reputation
    found = reputation.rulebook(rulebook)
    return _served(a.rulebook_answer(found, default=found.id == reputation.default_rulebook))


@router.get("/members/{member_id}/credit", responses=a.answered_by(a.CreditAnswer))
def credit(
    member_id: s.MemberPath,
    service: ServiceDep,
    scope: ReaderScope,
    role: PartyRole = "seller",
) -> Response:
    """A member's credit: score, level and positive rate, as of now or a past date."""
    answer = service.reputation.credit(member_id, role, scope.where)
    return _served(a.credit_answer(answer))


@router.get("/members/{member_id}/credit/series", responses=a.answered_by(a.CreditSeriesAnswer))
def credit_series(
    member_id: s.MemberPath,
    service: ServiceDep,
    scope: ReaderSeries,
    role: PartyRole = "seller",
) -> Response:
    """A member's credit at the end of each step from ``from`` to ``to``, in
    time order: each point is what ``GET /v1/members/{member_id}/credit``
    answers as of its time. Points before the member registered are left out.
    The rows a point needs are read once for the whole series, so a point's
    cost does not grow with the member's history (at a log position, as for
    the single query, a long history is streamed at each point)."""
    series = service.reputation.credit_series(member_id, role, scope.where, scope.times)
    return _served(a.credit_series_answer(member_id, scope.step, series))


@router.get(
    "/members/{member_id}/credit/explanation",
    responses=a.answered_by(a.CreditExplanationAnswer),
)
def credit_explanation(
    member_id: s.MemberPath,
    service: ServiceDep,
    scope: ReaderScope,
    role: PartyRole = "seller",
    cursor: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=EXPLANATION_PAGE_MAX)] = EXPLANATION_PAGE_DEFAULT,
) -> Response:
    """One page of the ratings behind a member's credit, in order of order
    creation; follow ``next_cursor`` until it is null. A page reads only its own
    ratings and the ratings they are judged with, however long the history."""
    try:
        credit, page = service.reputation.credit_explanation(
            member_id, role, scope.where, cursor=cursor, limit=limit
        )
    except BadCursorError as error:
        raise ApiProblem(422, "invalid_cursor", str(error), field="cursor") from error
    # Hidden ratings are shown to auditors only.
    hidden_shown = scope.principal.role in AUDIT_ROLES
    return _served(a.credit_explanation_answer(credit, page, hidden_shown=hidden_shown))


@router.get("/sellers/{seller_id}/dsr", responses=a.answered_by(a.DsrAnswer))
def dsr(
    seller_id: s.SellerPath,
    service: ServiceDep,
    scope: ReaderScope,
) -> Response:
    """A seller's detailed shop ratings (DSR), four dimensions over the trailing window."""
    answer = service.reputation.dsr(seller_id, scope.where)
    decimals = service.reputation.rulebook(scope.where.rulebook).scoring.dsr.display_decimals
    return _served(a.dsr_answer(answer, decimals=decimals))


@router.get("/sellers/{seller_id}/dsr/series", responses=a.answered_by(a.DsrSeriesAnswer))
def dsr_series(seller_id: s.SellerPath, service: ServiceDep, scope: ReaderSeries) -> Response:
    """A seller's shop scores at the end of each step from ``from`` to ``to``,
    in time order: each point is what ``GET /v1/sellers/{seller_id}/dsr``
    answers as of its time, read as ``getCreditSeries`` reads credit."""
    series = service.reputation.dsr_series(seller_id, scope.where, scope.times)
    decimals = service.reputation.rulebook(scope.where.rulebook).scoring.dsr.display_decimals
    return _served(a.dsr_series_answer(seller_id, scope.step, series, decimals=decimals))


@router.get(
    "/sellers/{seller_id}/violations/series", responses=a.answered_by(a.ViolationsSeriesAnswer)
)
def violations_series(
    seller_id: s.SellerPath, service: ServiceDep, scope: ReaderSeries
) -> Response:
    """A seller's violation points, seal and bans in force at the end of each
    step from ``from`` to ``to``, in time order: each point is what ``GET
    /v1/sellers/{seller_id}/violations`` answers as of its time; the seller's
    own facts are read once for the whole series."""
    series = service.reputation.violations_series(seller_id, scope.where, scope.times)
    return _served(a.violations_series_answer(seller_id, scope.step, series))


@router.get("/sellers/{seller_id}/penalty/series", responses=a.answered_by(a.PenaltySeriesAnswer))
def penalty_series(seller_id: s.SellerPath, service: ServiceDep, scope: RankerSeries) -> Response:
    """A seller's search-ranking penalty at the end of each step from ``from``
    to ``to``, in time order: each point is what ``GET
    /v1/sellers/{seller_id}/penalty`` answers as of its time, computed as that
    query computes it, point by point."""
    series = service.reputation.penalty_series(seller_id, scope.where, scope.times)
    return _served(a.penalty_series_answer(seller_id, scope.step, series))


def penalty_json(service: Service, seller_id: str, where: Where) -> bytes:
    """One seller's penalty as the JSON body (shared with ``api.ranking_path``)."""
    answer = service.reputation.penalty(seller_id, where)
    return _json.encode(a.penalty_answer(answer.figure, answer))


def batch_json(
    service: Service, seller_ids: list[str], as_of: datetime | None, rulebook: str | None
) -> bytes:
    """Many sellers' penalties, in the order asked, as the JSON body (shared too)."""
    batch = service.reputation.penalties(seller_ids, as_of=as_of, rulebook=rulebook)
    entries = [
        entry if isinstance(entry, UnknownSeller) else a.penalty_answer(entry, batch)
        for entry in batch.figure
    ]
    return _json.encode({"penalties": entries})


@router.get(PENALTY_ROUTE.removeprefix(router.prefix), responses=a.answered_by(a.PenaltyAnswer))
def penalty(seller_id: s.SellerPath, service: ServiceDep, scope: RankerScope) -> Response:
    """A seller's search-ranking penalty now, with each reason and the facts behind it."""
    return Response(penalty_json(service, seller_id, scope.where), media_type=a.JSON)


@router.post(
    BATCH_ROUTE.removeprefix(router.prefix), responses=a.answered_by(a.PENALTY_BATCH_ANSWER)
)
def penalties(body: s.PenaltyBatchRequest, service: ServiceDep, who: Ranker) -> Response:
    """Many sellers' search-ranking penalties in one call, in the order asked."""
    _too_many(body.seller_ids, "seller_ids", "sellers")
    _read_scope(service, body.min_position, body.rulebook)
    answer = batch_json(service, body.seller_ids, body.as_of, body.rulebook)
    return Response(answer, media_type=a.JSON)


def _too_many(ids: list[str], field: str, what: str = "members") -> None:
    if len(ids) > FIGURE_BATCH_MAX:
        raise ApiProblem(
            413, "batch_too_large", f"at most {FIGURE_BATCH_MAX} {what} per batch", field=field
        )


def _read_scope(service: Service, min_position: int | None, rulebook: str | None = None) -> None:
    """Read-your-writes and the rulebook checked, as ``scoped`` does for the
    single queries (a route that is not async waits here, in its thread)."""
    if min_position is not None:
        service.catch_up_to(min_position)
    service.reputation.rulebook(rulebook)


@router.post("/credit/batch", responses=a.answered_by(a.CREDIT_BATCH_ANSWER))
def credits(body: s.CreditBatchRequest, service: ServiceDep, who: Reader) -> Response:
    """Many members' credit in one role at once, in the order asked; a member
    unknown at that time is an entry marked ``unknown``."""
    _too_many(body.member_ids, "member_ids")
    _read_scope(service, body.min_position, body.rulebook)
    where = Where(as_of=body.as_of or service.clock.now(), rulebook=body.rulebook)
    reputation = service.reputation
    entries = [
        _known(member, lambda m: a.credit_answer(reputation.credit(m, body.role, where)))
        for member in body.member_ids
    ]
    return Response(_json.encode({"credits": entries}), media_type=a.JSON)


@router.post("/dsr/batch", responses=a.answered_by(a.DSR_BATCH_ANSWER))
def shop_scores(body: s.DsrBatchRequest, service: ServiceDep, who: Reader) -> Response:
    """Many sellers' shop scores at once, in the order asked; a seller unknown
    at that time is an entry marked ``unknown``."""
    _too_many(body.seller_ids, "seller_ids")
    _read_scope(service, body.min_position, body.rulebook)
    where = Where(as_of=body.as_of or service.clock.now(), rulebook=body.rulebook)
    decimals = service.reputation.rulebook(body.rulebook).scoring.dsr.display_decimals
    reputation = service.reputation
    entries = [
        _known(seller, lambda m: a.dsr_answer(reputation.dsr(m, where), decimals=decimals))
        for seller in body.seller_ids
    ]
    return Response(_json.encode({"shop_scores": entries}), media_type=a.JSON)


def _known(member_id: str, answer: Callable[[str], msgspec.Struct]) -> msgspec.Struct:
    """A member's answer, or the entry that says it is unknown at that time."""
    try:
        return answer(member_id)
    except UnknownMemberError:
        return a.UnknownMember(member_id)


TradeReader = Annotated[Principal, Depends(require(APPEND_ROLES | QUERY_ROLES))]


@router.get("/trades/{trade_id}", responses=a.answered_by(TradeRecord))
def trade(trade_id: s.TradePath, service: ServiceDep, who: TradeReader) -> Response:
    """A trade's state now (amounts, escrow, refunds, ratings, its next
    deadline) and every fact recorded about it, each with its log position."""
    return _served(service.ledger.trade_record(trade_id))


TradesLimit = Annotated[int, Query(ge=1, le=TRADE_PAGE_MAX)]


@router.get("/sellers/{seller_id}/trades", responses=a.answered_by(TradePage))
def seller_trades(
    seller_id: s.SellerPath,
    request: Request,
    service: ServiceDep,
    who: TradeReader,
    cursor: PageCursor = None,
    limit: TradesLimit = TRADE_PAGE_DEFAULT,
    min_position: MinPosition = None,
) -> Response:
    """A page of a seller's trades (its orders) in creation order, with their
    refunds and complaints; follow ``next_cursor`` (or the ``Link`` header)."""
    return _trades(
        request, service, seller_id, "seller", cursor=cursor, limit=limit, min_position=min_position
    )


@router.get("/buyers/{buyer_id}/trades", responses=a.answered_by(TradePage))
def buyer_trades(
    buyer_id: s.BuyerPath,
    request: Request,
    service: ServiceDep,
    who: TradeReader,
    cursor: PageCursor = None,
    limit: TradesLimit = TRADE_PAGE_DEFAULT,
    min_position: MinPosition = None,
) -> Response:
    """A page of a buyer's purchases in creation order, with their refunds and
    complaints; follow ``next_cursor`` (or the ``Link`` header)."""
    return _trades(
        request, service, buyer_id, "buyer", cursor=cursor, limit=limit, min_position=min_position
    )


def _trades(
    request: Request,
    service: Service,
    member_id: str,
    role: Party,
    *,
    cursor: str | None,
    limit: int,
    min_position: int | None,
) -> Response:
    return _paged(
        request,
        service,
        lambda: service.reputation.trades(member_id, role, cursor, limit),
        limit=limit,
        min_position=min_position,
    )


CasesLimit = Annotated[int, Query(ge=1, le=CASE_PAGE_MAX)]


@router.get("/sellers/{seller_id}/complaints", responses=a.answered_by(ComplaintPage))
def seller_complaints(
    seller_id: s.SellerPath,
    request: Request,
    service: ServiceDep,
    who: TradeReader,
    cursor: PageCursor = None,
    limit: CasesLimit = CASE_PAGE_DEFAULT,
    min_position: MinPosition = None,
) -> Response:
    """A page of the complaints against a seller in the order they were filed,
    each with its escalation and ruling; follow ``next_cursor`` (or the ``Link``
    header)."""
    return _paged(
        request,
        service,
        lambda: service.reputation.complaints(seller_id, cursor, limit),
        limit=limit,
        min_position=min_position,
    )


@router.get("/sellers/{seller_id}/refunds", responses=a.answered_by(RefundPage))
def seller_refunds(
    seller_id: s.SellerPath,
    request: Request,
    service: ServiceDep,
    who: TradeReader,
    cursor: PageCursor = None,
    limit: CasesLimit = CASE_PAGE_DEFAULT,
    min_position: MinPosition = None,
) -> Response:
    """A page of the refunds requested of a seller in the order they were
    requested, each with its status and when it was settled; follow
    ``next_cursor`` (or the ``Link`` header)."""
    return _paged(
        request,
        service,
        lambda: service.reputation.refunds(seller_id, cursor, limit),
        limit=limit,
        min_position=min_position,
    )


Page = TradePage | ComplaintPage | RefundPage | TreeHeadPage


def _paged(
    request: Request,
    service: Service,
    page_of: Callable[[], Page],
    *,
    limit: int,
    min_position: int | None,
) -> Response:
    """A list's page, read once the view reflects ``min_position``, with the
    next page's address in a ``Link`` header."""
    _read_scope(service, min_position)
    return linked_page(request, page_of, limit=limit)


def linked_page(request: Request, page_of: Callable[[], Page], *, limit: int) -> Response:
    """A page as JSON, with the next page's address in a ``Link`` header; a
    cursor no page handed out is refused 422 ``invalid_cursor``."""
    try:
        page = page_of()
    except BadCursorError as error:
        raise ApiProblem(422, "invalid_cursor", str(error), field="cursor") from error
    response = _served(page)
    if page.next_cursor is not None:
        following = request.url.include_query_params(cursor=page.next_cursor, limit=limit)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return response


@router.get("/sellers/{seller_id}/violations", responses=a.answered_by(a.ViolationsAnswer))
def violations(
    seller_id: s.SellerPath,
    service: ServiceDep,
    scope: ReaderScope,
) -> Response:
    """A seller's violation points, their nodes and the penalties they bring."""
    answer = service.reputation.violations(seller_id, scope.where)
    return _served(a.violations_answer(answer))


@router.get("/sellers/{seller_id}/level", responses=a.answered_by(a.SellerLevelAnswer))
def seller_level(
    seller_id: s.SellerPath,
    service: ServiceDep,
    scope: ReaderScope,
) -> Response:
    """A seller's level from its defects, as buyers see it (null under a
    rulebook without seller levels); computed from the seller's file."""
    answer = service.reputation.seller_level(seller_id, scope.where)
    return _served(a.seller_level_answer(answer))


@router.get("/buyers/{buyer_id}/history", responses=a.answered_by(a.BuyerHistoryAnswer))
def buyer_history(
    buyer_id: s.BuyerPath,
    service: ServiceDep,
    scope: ReaderScope,
) -> Response:
    """A buyer's history and tier."""
    answer = service.reputation.buyer_history(buyer_id, scope.where)
    return _served(a.buyer_history_answer(answer))
