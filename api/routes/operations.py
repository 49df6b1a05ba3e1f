"""Operations: liveness, readiness with projection lag, Prometheus metrics, deadlines."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api import answers as a
from api import schemas as s
from api.auth import ADMIN_ROLES, APPEND_ROLES, Principal, StoredKey
from api.deps import ServiceDep, require
from api.metrics import CONTENT_TYPE
from api.problems import RETRY_AFTER_UNAVAILABLE_SECONDS, problem
from api.service import Service
from ledger.database import STORE_UNAVAILABLE
from ledger.deadlines import DeadlineRun

router = APIRouter(tags=["operations"])
Admin = Annotated[Principal, Depends(require(ADMIN_ROLES))]
Appender = Annotated[Principal, Depends(require(APPEND_ROLES))]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answered on the event loop, touching neither threads nor the
    database, so a process whose database is down is not restarted for it."""
    return {"status": "ok"}


@router.post("/v1/ping", status_code=204, responses={**s.PROBLEMS, 204: {"description": "pong"}})
async def ping(who: Appender, body: dict[str, Any] | None = None) -> Response:
    """A platform service's check that its key may append and its requests
    arrive: the key is checked and the JSON body read, nothing else is done.
    What it costs is the HTTP stack's share of an append (the benchmarks'
    ceiling for appends through the API)."""
    return Response(status_code=204)


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    """Readiness: the log and the view reachable, and the view close enough
    behind the log, all within ``readiness_timeout_seconds``; else 503."""
    settings = service.settings
    try:
        readiness = await asyncio.wait_for(
            run_in_threadpool(service.readiness), timeout=settings.readiness_timeout_seconds
        )
    except TimeoutError:
        return _not_ready(f"the store did not answer within {settings.readiness_timeout_seconds} s")
    except STORE_UNAVAILABLE as error:
        return _not_ready(f"the store cannot be reached: {type(error).__name__}")
    body = msgspec.to_builtins(readiness)
    if readiness.lag_seconds > settings.readiness_lag_seconds_max:
        return _not_ready(
            f"the view is {readiness.lag_seconds:.0f} s behind the log "
            f"(at most {settings.readiness_lag_seconds_max:g} s)",
            **body,
        )
    return JSONResponse({"status": "ready", **body})


def _not_ready(detail: str, **extra: Any) -> JSONResponse:
    return problem(503, "not_ready", detail, retry_after=RETRY_AFTER_UNAVAILABLE_SECONDS, **extra)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep) -> Response:
    """Counters, latencies by route and status, and process figures, in the
    Prometheus text format (all workers' together when there are several)."""
    lag_events, lag_seconds = service.lag()
    text = service.metrics.render(lag_events=lag_events, lag_seconds=lag_seconds)
    return Response(text, media_type=CONTENT_TYPE)


@router.get(
    "/v1/operations/status",
    responses={**s.PROBLEMS, **a.answered_by(a.OperationsStatusAnswer)},
)
def operations_status(service: ServiceDep, who: Admin) -> Response:
    """What an operator watches: every read model's lag behind the log, the
    deadlines due, the API keys (revoked with ``trustledger keys revoke``),
    and the problems answered by code."""
    return Response(msgspec.json.encode(_status(service)), media_type=a.JSON)


def _status(service: Service) -> a.OperationsStatusAnswer:
    readiness = service.readiness()
    head = readiness.log_position
    due = service.ledger.deadlines_due()
    now = service.clock.now()
    models: tuple[tuple[a.ReadModel, int], ...] = (
        ("view", readiness.view_position),
        ("penalty_feed", service.feed.covered()),
        ("log_tree", service.tree.tracked()[0]),
    )
    counts = sorted(
        service.metrics.refusals_by_code().items(), key=lambda item: (-item[1], item[0])
    )
    return a.OperationsStatusAnswer(
        at=now,
        log_position=head,
        view_lag_seconds=readiness.lag_seconds,
        view_version=readiness.view_version,
        projections=tuple(
            a.ProjectionStanding(name, position, max(head - position, 0))
            for name, position in models
        ),
        deadlines=a.DeadlinesStanding(due.due, due.more, due.oldest_due_at, due.next_due_at),
        keys=tuple(_key_standing(key, now) for key in service.keys.listed()),
        refusals_since=service.started_at,
        refusals=tuple(a.RefusalCount(code, count) for code, count in counts),
        recent_refusals=tuple(
            a.RefusalSeen(r.at, r.status, r.code, r.route, r.key_id)
            for r in reversed(service.metrics.recent_refusals)
        ),
        worker=os.getpid(),
    )


def _key_standing(key: StoredKey, now: datetime) -> a.KeyStanding:
    return a.KeyStanding(
        key.id,
        key.role.value,
        key.scope,
        key.state_at(now),
        key.created_at,
        key.expires_at,
        key.revoked_at,
    )


@router.post(
    "/v1/deadlines/run",
    tags=["deadlines"],
    responses={**s.PROBLEMS, **a.answered_by(DeadlineRun)},
)
def run_deadlines(body: s.DeadlineRunRequest, service: ServiceDep, who: Admin) -> Response:
    """Fire every deadline due by a time, once (the deadline worker does this on its own)."""
    run = service.ledger.run_deadlines(body.now)
    return Response(msgspec.json.encode(run), media_type=a.JSON)
