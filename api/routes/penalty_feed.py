"""The penalty change feed (roles ranking, reader, auditor, admin).

``GET /v1/penalties/changes?after=<feed position>`` streams, one JSON object
a line, each seller's penalty every time it changed, by a new fact or by
time alone, in feed order. A ranking engine keeps its own copy from it: read
from ``after=0`` (every seller's first penalty, then every change), keep the
``feed_position`` of the last line applied, and reconnect with it after a
disconnect or when the stream ends; nothing is missed or repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api.auth import PENALTY_ROLES, Principal
from api.deps import ServiceDep, require
from projections.penalty_feed import FEED_PAGE_MAX, PenaltyChange

# How often a following stream looks for new changes (it stays open for
# ``Settings.feed_follow_seconds``).
FEED_POLL_SECONDS = 0.5
NDJSON = "application/x-ndjson"
FEED_POSITION_MAX = 2**62

router = APIRouter(prefix="/v1", tags=["ranking"], responses=s.PROBLEMS)
Ranker = Annotated[Principal, Depends(require(PENALTY_ROLES))]
_encoder = msgspec.json.Encoder()


@router.get(
    "/penalties/changes",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {NDJSON: {}},
            "description": "penalty changes in feed order, one JSON object a line: "
            "feed_position, seller_id, rulebook, cause (fact or time), as_of, position "
            "(the log position the penalty reflects) and penalty",
        }
    },
)
async def penalty_changes(
    service: ServiceDep,
    who: Ranker,
    after: Annotated[
        int, Query(ge=0, le=FEED_POSITION_MAX, description="the last feed position applied")
    ] = 0,
    follow: Annotated[
        bool,
        Query(
            description="keep the stream open and send changes as they come, for up to "
            "five minutes (then reconnect); false: the changes there are now, then the end"
        ),
    ] = True,
    limit: Annotated[
        int, Query(ge=1, le=FEED_PAGE_MAX, description="without follow: at most this many")
    ] = FEED_PAGE_MAX,
) -> StreamingResponse:
    """Every seller's penalty each time it changes: resume after the last
    ``feed_position`` applied."""
    feed = service.feed

    async def lines() -> AsyncIterator[bytes]:
        position, left = after, limit
        ends = time.monotonic() + service.settings.feed_follow_seconds
        while True:
            page: list[PenaltyChange] = await run_in_threadpool(
                feed.changes, position, FEED_PAGE_MAX if follow else left
            )
            if page:
                yield b"".join(_encoder.encode(change) + b"\n" for change in page)
                position = page[-1].feed_position
                left -= len(page)
            if not follow and (left <= 0 or len(page) < FEED_PAGE_MAX):
                return
            if follow and time.monotonic() >= ends:
                return
            if follow and not page:
                await asyncio.sleep(FEED_POLL_SECONDS)

    return StreamingResponse(lines(), media_type=NDJSON)
