"""Audit (role auditor): page through the log, replay a member's figures, and
check the log itself: signed tree heads, inclusion and consistency proofs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from eventsourcing.persistence import Notification
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from api import answers as a
from api import schemas as s
from api.auth import AUDIT_ROLES, Principal
from api.deps import ServiceDep, require
from api.problems import ApiProblem
from api.routes.reputation import RULEBOOK_ID_MAX_CHARS, PageCursor, linked_page
from ledger.ids import ID_MAX_CHARS, ID_PATTERN
from ledger.policy import RULEBOOK_ID_PATTERN
from ledger.tree_head import TreeHead, to_json
from projections.log_tree import (
    HEADS_PAGE_MAX,
    ConsistencyProof,
    InclusionProof,
    TreeHeadPage,
    heads_page,
)
from projections.queries import Reputation, Where
from projections.views import MemoryView

router = APIRouter(prefix="/v1", tags=["audit"], responses=s.PROBLEMS)
Auditor = Annotated[Principal, Depends(require(AUDIT_ROLES))]
LOG_LIMIT_MAX = 100_000
LOG_PAGE_EVENTS = 1_000
REPLAY_BATCH_EVENTS = 1_000
NDJSON = "application/x-ndjson"

_encoder = msgspec.json.Encoder()


class _Times(msgspec.Struct):
    """The two times of a stored event body; the rest is passed on as is."""

    occurred_at: str | None = None
    recorded_at: str | None = None


_times_decoder = msgspec.json.Decoder(_Times)


@router.get(
    "/log",
    response_class=StreamingResponse,
    responses={
        200: {"content": {NDJSON: {}}, "description": "events in log order, one JSON object a line"}
    },
)
def read_log(
    request: Request,
    service: ServiceDep,
    who: Auditor,
    after: Annotated[int, Query(ge=0, le=s.POSITION_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=LOG_LIMIT_MAX)] = 1_000,
) -> StreamingResponse:
    """The log's events in order, one JSON object a line, with each event's
    stored bytes; the next request is ``after`` the last line's position. An
    answer of one page (``limit`` up to 1,000) that is full says so in a
    ``Link: rel="next"`` header."""
    ledger = service.ledger
    # The first page is read before answering, so a full one can name the next.
    first = ledger.read_log(after, min(limit, LOG_PAGE_EVENTS))

    def lines() -> Iterator[bytes]:
        page, position, left = first, after, limit
        while True:
            for notification in page:
                yield _line(notification)
            if len(page) < min(left, LOG_PAGE_EVENTS):
                return
            position, left = page[-1].id, left - len(page)
            if left <= 0:
                return
            page = ledger.read_log(position, min(left, LOG_PAGE_EVENTS))

    headers = {}
    if limit <= LOG_PAGE_EVENTS and len(first) == limit:
        following = request.url.include_query_params(after=first[-1].id, limit=limit)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return StreamingResponse(lines(), media_type=NDJSON, headers=headers)


def _line(notification: Notification) -> bytes:
    times = _times_decoder.decode(notification.state)
    line = {
        "position": notification.id,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "topic": notification.topic,
        "occurred_at": times.occurred_at,
        "recorded_at": times.recorded_at,
        "body": msgspec.Raw(notification.state),
    }
    return _encoder.encode(line) + b"\n"


@router.get("/replay")
def replay(
    service: ServiceDep,
    who: Auditor,
    member_id: Annotated[str, Query(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)],
    as_of: Annotated[s.BusinessTime | None, Query()] = None,
    at_position: Annotated[int | None, Query(ge=0, le=s.POSITION_MAX)] = None,
    rulebook: Annotated[
        str | None, Query(max_length=RULEBOOK_ID_MAX_CHARS, pattern=RULEBOOK_ID_PATTERN)
    ] = None,
) -> dict[str, Any]:
    """The member's figures recomputed by folding the log itself, not the stored view."""
    view, replayed = MemoryView(rulebooks=()), 0  # figures at a position come from the facts
    batch: list[tuple[int, Any]] = []
    for notification in service.ledger.iter_log():
        if at_position is not None and notification.id > at_position:
            break
        batch.append((notification.id, service.ledger.decode(notification)))
        if len(batch) == REPLAY_BATCH_EVENTS:
            view.process(batch)
            replayed, batch = replayed + len(batch), []
    view.process(batch)
    replayed += len(batch)
    reputation = Reputation(
        view,
        service.clock,
        default_rulebook=service.settings.rulebook,
        time_at=service.ledger.recorded_at,
    )
    scope = Where(as_of=as_of, at_position=at_position, rulebook=rulebook)
    # The replay answers with every rating and position behind each figure.
    credit_seller = reputation.credit_explained(member_id, "seller", scope)
    figures = {
        "credit_seller": credit_seller.figure,
        "credit_buyer": reputation.credit_explained(member_id, "buyer", scope).figure,
        "dsr": reputation.dsr_explained(member_id, scope).figure,
        "penalty": reputation.penalty(member_id, scope).figure,
        "violations": reputation.violations(member_id, scope).figure,
        "buyer_history": reputation.buyer_history(member_id, scope).figure,
    }
    return {
        "member_id": member_id,
        "rulebook": credit_seller.rulebook,
        "as_of": credit_seller.as_of,
        "position": credit_seller.position,
        "events_replayed": replayed,
        "figures": msgspec.to_builtins(figures),
    }


# --- The verifiable log ---------------------------------------------------------------

TREE = "/audit"


def _no_signing_key() -> ApiProblem:
    return ApiProblem(
        503, "signing_key_missing", "no tree head key is configured (TRUSTLEDGER_TREE_HEAD_KEY)"
    )


@router.get(
    f"{TREE}/tree-head",
    responses={
        **a.answered_by(
            TreeHead,
            "A signed tree head; bytes are base64. One line of it is what a witness keeps.",
        ),
        503: s.PROBLEMS_503,
    },
)
def tree_head(service: ServiceDep, who: Auditor) -> Response:
    """A signed head of the whole log now; append it to a witness file as it is."""
    head = service.tree_head()
    if head is None:
        raise _no_signing_key()
    return Response(to_json(head), media_type=a.JSON)


TREE_HEADS_PAGE_DEFAULT = 50


@router.get(
    f"{TREE}/tree-heads",
    responses=a.answered_by(
        TreeHeadPage,
        "Signed heads kept, newest first; bytes are base64, each as a witness keeps it.",
    ),
)
def tree_heads(
    request: Request,
    service: ServiceDep,
    who: Auditor,
    limit: Annotated[int, Query(ge=1, le=HEADS_PAGE_MAX)] = TREE_HEADS_PAGE_DEFAULT,
    cursor: PageCursor = None,
) -> Response:
    """The signed heads the server kept, newest first, a page at a time: any
    two of them can be checked for consistency (``/consistency``)."""
    return linked_page(request, lambda: heads_page(service.tree, limit, cursor), limit=limit)


@router.get(
    f"{TREE}/inclusion",
    responses=a.answered_by(
        InclusionProof, "RFC 9162 inclusion proof of the event at `position` (leaf `leaf_index`)."
    ),
)
def inclusion(
    service: ServiceDep,
    who: Auditor,
    position: Annotated[int, Query(ge=1, le=s.POSITION_MAX)],
    tree_size: Annotated[int, Query(ge=1, le=s.POSITION_MAX)],
) -> Response:
    """The proof that the event at a log position is in the tree of a given size."""
    return _json(service.tree.inclusion(position, tree_size))


@router.get(
    f"{TREE}/consistency",
    responses=a.answered_by(
        ConsistencyProof,
        "RFC 9162 consistency proof: the tree of size `second` extends that of `first`.",
    ),
)
def consistency(
    service: ServiceDep,
    who: Auditor,
    first: Annotated[int, Query(ge=0, le=s.POSITION_MAX)],
    second: Annotated[int, Query(ge=0, le=s.POSITION_MAX)],
) -> Response:
    """The proof that the tree of size ``second`` extends the tree of size ``first`` unchanged."""
    return _json(service.tree.consistency(first, second))


@router.get(f"{TREE}/public-key", response_model=s.PublicKeyOut, responses={503: s.PROBLEMS_503})
def public_key(service: ServiceDep, who: Auditor) -> dict[str, str]:
    """The key tree heads are signed with; auditors keep their own copy."""
    if service.signer is None:
        raise _no_signing_key()
    return {
        "algorithm": "Ed25519",
        "key_id": service.signer.key_id,
        "public_key_pem": service.signer.public_key_pem().decode(),
    }


def _json(value: object) -> Response:
    # msgspec writes bytes as base64, as in tree heads.
    return Response(_encoder.encode(value), media_type=a.JSON)
