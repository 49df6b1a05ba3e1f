"""Operations: liveness, readiness with projection lag, Prometheus metrics, deadlines."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api import answers as a
from api import schemas as s
from api.auth import ADMIN_ROLES, APPEND_ROLES, Principal
from api.deps import ServiceDep, require
from api.metrics import CONTENT_TYPE
from api.problems import RETRY_AFTER_UNAVAILABLE_SECONDS, problem
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


@router.post(
    "/v1/deadlines/run",
    tags=["deadlines"],
    responses={**s.PROBLEMS, **a.answered_by(DeadlineRun)},
)
def run_deadlines(body: s.DeadlineRunRequest, service: ServiceDep, who: Admin) -> Response:
    """Fire every deadline due by a time, once (the deadline worker does this on its own)."""
    run = service.ledger.run_deadlines(body.now)
    return Response(msgspec.json.encode(run), media_type=a.JSON)
