"""Operations: liveness, readiness with projection lag, Prometheus metrics, deadlines."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api import schemas as s
from api.auth import ADMIN_ROLES, Principal
from api.deps import ServiceDep, require
from ledger.deadlines import DeadlineRun

router = APIRouter(tags=["operations"])
Admin = Annotated[Principal, Depends(require(ADMIN_ROLES))]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: ServiceDep) -> JSONResponse:
    try:
        head = service.ledger.recorder.max_notification_id() or 0
    except Exception as error:  # any store failure means not ready
        return JSONResponse({"status": "store unreachable", "detail": str(error)}, status_code=503)
    lag_events, lag_seconds = service.lag()
    body: dict[str, Any] = {
        "status": "ready",
        "log_position": head,
        "view_position": service.view.position(),
        "lag_events": lag_events,
        "lag_seconds": lag_seconds,
    }
    return JSONResponse(body)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep) -> PlainTextResponse:
    lag_events, lag_seconds = service.lag()
    text = service.metrics.render(lag_events=lag_events, lag_seconds=lag_seconds)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.post(
    "/v1/deadlines/run",
    tags=["deadlines"],
    responses={**s.PROBLEMS, **s.answered_by(DeadlineRun)},
)
def run_deadlines(body: s.DeadlineRunRequest, service: ServiceDep, who: Admin) -> Response:
    run = service.ledger.run_deadlines(body.now)
    return Response(msgspec.json.encode(run), media_type=s.JSON)
