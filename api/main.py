"""create_app(): the FastAPI service over LedgerApp and the reputation views."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import answers, catalog, problems, schemas
from api.admission import Admission
from api.etags import ETags
from api.metrics import ROUTE_LABEL
from api.ranking_path import RankingPath
from api.routes import appends, audit, operations, penalty_feed, reputation
from api.service import Service
from api.settings import Settings
from ledger.clock import Clock


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, background: bool = True
) -> FastAPI:
    """The service; ``background=False`` runs no threads (tests drive the view)."""
    settings = settings or Settings.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, clock=clock)
        app.state.service = service
        service.start(background=background)
        try:
            yield
        finally:
            service.stop()

    app = TrustLedgerApi(
        title="TrustLedger",
        version="1",
        summary="An event-sourced reputation and trust ledger for a marketplace",
        lifespan=lifespan,
    )
    problems.install(app)

    app.add_middleware(ETags)  # the innermost: around the routes' answers only
    if settings.ranking_path:
        app.add_middleware(RankingPath)
    # Outside the ranking path: a request is authenticated and its body
    # bounded before anything reads the body.
    app.add_middleware(Admission, settings=settings)
    app.add_middleware(Timed)  # added last: the outermost, so it times both paths
    routers = (appends, reputation, penalty_feed, audit, operations)
    for router in (module.router for module in routers):
        app.include_router(router)
    return app


class TrustLedgerApi(FastAPI):
    """FastAPI, with the answers' msgspec schemas in its OpenAPI document."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:  # built once, as FastAPI does
            document = answers.with_answer_schemas(catalog.describe(super().openapi()))
            document["components"]["schemas"]["Problem"] = schemas.problem_schema()
            self.openapi_schema = document
        return self.openapi_schema


class Timed:
    """Request latency by route for /metrics, as plain ASGI middleware.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``) runs every request
    through an extra task and stream; on the ranking engine's hot path that
    cost more than the penalty lookup itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer begins: the app failed before it could send one

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route = scope.get(ROUTE_LABEL) or getattr(scope.get("route"), "path", None)
            state = getattr(scope.get("app"), "state", None)
            service: Service | None = getattr(state, "service", None)
            if service is not None and route is not None:
                service.metrics.observe(route, status, time.perf_counter() - started)
