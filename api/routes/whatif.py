"""What-if (roles auditor, admin): every seller under two scoring rulebooks,
as the command line's ``trustledger whatif`` reports it, over the view."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query, Response

from api import answers as a
from api import schemas as s
from api.auth import AUDIT_ROLES, Principal
from api.deps import ServiceDep, require
from api.problems import ApiProblem
from api.routes.reputation import RULEBOOK_ID_MAX_CHARS, MinPosition
from ledger.policy import RULEBOOK_ID_PATTERN, RulebookError
from projections.queries import known_at
from projections.whatif import what_if

router = APIRouter(prefix="/v1", tags=["audit"], responses=s.PROBLEMS)
Auditor = Annotated[Principal, Depends(require(AUDIT_ROLES))]
# The sellers one answer folds: each is read from the view and scored twice,
# so the answer's time grows with them. Beyond it the first ones by id are
# answered, marked incomplete (``trustledger whatif`` replays them all).
WHATIF_SELLERS_MAX = 5_000
# The sellers listed by how much their multiplier changes.
WHATIF_LISTED_MAX = 50


@router.get("/whatif", responses=a.answered_by(a.WhatIfAnswer))
def whatif(
    service: ServiceDep,
    who: Auditor,
    rulebook: Annotated[
        str,
        Query(
            max_length=RULEBOOK_ID_MAX_CHARS,
            pattern=RULEBOOK_ID_PATTERN,
            description="the rulebook to try (GET /v1/rulebooks lists them)",
        ),
    ],
    base: Annotated[
        str | None,
        Query(
            max_length=RULEBOOK_ID_MAX_CHARS,
            pattern=RULEBOOK_ID_PATTERN,
            description="the rulebook it is compared with; default the server's",
        ),
    ] = None,
    as_of: Annotated[
        s.BusinessTime | None, Query(description="business time (RFC 3339); default now")
    ] = None,
    min_position: MinPosition = None,
) -> Response:
    """Every seller's level and penalty under a rulebook against a base one:
    how many change, how far levels move, and who gains or loses most weight.

    Levels are compared by number only when both rulebooks grade on the same
    named levels (``level_shifts``); across scales the answer counts where
    sellers land instead (``level_moves``). At most ``WHATIF_SELLERS_MAX``
    (5,000) sellers are folded, the first by id, and ``complete`` says
    whether that was all of them; the sellers whose ranking multiplier
    changes most are listed, at most ``WHATIF_LISTED_MAX`` (50)."""
    if min_position is not None:
        service.catch_up_to(min_position)
    reputation = service.reputation
    tried = reputation.rulebook(rulebook)
    try:
        compared = reputation.rulebook(base)
    except RulebookError as error:
        raise ApiProblem(422, "unknown_rulebook", str(error), field="base") from error
    # The position first: the files read after it reflect at least that much.
    cut, position = reputation.cut(as_of)
    view = reputation.view
    ids = view.seller_ids(WHATIF_SELLERS_MAX + 1)
    files = view.files(ids[:WHATIF_SELLERS_MAX]).values()
    # A seller registered after the time asked is unknown then, as to the single queries.
    report = what_if((f for f in files if known_at(f, cut)), compared, tried, cut.as_of)
    answer = a.whatif_answer(
        report,
        position=position,
        complete=len(ids) <= WHATIF_SELLERS_MAX,
        listed_max=WHATIF_LISTED_MAX,
    )
    return Response(msgspec.json.encode(answer), media_type=a.JSON)
