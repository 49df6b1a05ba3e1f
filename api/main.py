"""create_app(): the FastAPI service over LedgerApp and the reputation views."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api import problems
from api.routes import appends, audit, operations, reputation
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

    app = FastAPI(
        title="TrustLedger",
        version="1",
        summary="An event-sourced reputation and trust ledger for a marketplace",
        lifespan=lifespan,
    )
    problems.install(app)

    @app.middleware("http")
    async def timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        service: Service | None = getattr(request.app.state, "service", None)
        if service is not None and route is not None:
            service.metrics.observe(getattr(route, "path", "?"), time.perf_counter() - started)
        return response

    for router in (appends.router, reputation.router, audit.router, operations.router):
        app.include_router(router)
    return app
