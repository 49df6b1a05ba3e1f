"""create_app(): the FastAPI service over LedgerApp and the reputation views."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import answers, catalog, examples, logs, problems, refusals, schemas
from api.admission import Admission
from api.etags import ETags
from api.metrics import ROUTE_LABEL, Refusal
from api.problems import PROBLEM_JSON
from api.ranking_path import RankingPath
from api.routes import appends, audit, caller, operations, penalty_feed, reputation, whatif
from api.service import Service
from api.settings import Settings
from ledger.clock import Clock
from ledger.policy import Policy, load_policy
from projections.rulebook import Rulebooks, load_rulebook

# Swagger UI and ReDoc, vendored (api/static/vendor/README.md names the
# versions): /docs and /redoc load nothing from another host, so they work
# offline and behind a firewall.
STATIC_DIR = Path(__file__).with_name("static")
STATIC_URL = "/static"
SWAGGER_UI = f"{STATIC_URL}/vendor/swagger-ui"
REDOC_JS = f"{STATIC_URL}/vendor/redoc/redoc.standalone.js"
# The files' URLs do not carry their version: a day, then a cheap revalidation
# (ETag, Last-Modified), lets a refreshed copy reach every browser by the next day.
STATIC_CACHE_CONTROL = "public, max-age=86400"
# The console: static pages that call the JSON API with the key typed into
# them (api/console/). Its files change with the server, so a browser asks
# again each time (a 304 when they have not changed), and its policy lets the
# pages load and call nothing but this origin.
CONSOLE_DIR = Path(__file__).with_name("console")
CONSOLE_URL = "/console"
CONSOLE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


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
        docs_url=None,  # served from the vendored files by _add_docs
        redoc_url=None,
    )
    app.policy = load_policy(settings.rulebook).policy
    app.rulebook_ids = [
        rulebook.id for rulebook in Rulebooks.serving(load_rulebook(settings.rulebook))
    ]
    problems.install(app)

    app.add_middleware(ETags)  # the innermost: around the routes' answers only
    if settings.ranking_path:
        app.add_middleware(RankingPath)
    # Outside the ranking path: a request is authenticated and its body
    # bounded before anything reads the body.
    app.add_middleware(Admission, settings=settings)
    app.add_middleware(Timed)  # added last: the outermost, so it times both paths
    routers = (appends, reputation, penalty_feed, audit, whatif, operations, caller)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.operations = [
        route for module in routers for route in module.router.routes if isinstance(route, APIRoute)
    ]
    _add_docs(app)
    _add_console(app)
    return app


def _add_console(app: FastAPI) -> None:
    """/console, its pages, scripts and style sheet, needing no key (the pages
    ask for one), and / leading there."""
    app.mount(
        CONSOLE_URL,
        HeaderedFiles(directory=CONSOLE_DIR, html=True, headers=CONSOLE_HEADERS),
        name="console",
    )

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{_root_path(request)}{CONSOLE_URL}/", status_code=307)


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc over /openapi.json, their scripts, styles
    and icon served under /static; like /openapi.json, they need no key."""
    app.mount(
        STATIC_URL,
        HeaderedFiles(directory=STATIC_DIR, headers={"Cache-Control": STATIC_CACHE_CONTROL}),
        name="static",
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            # No badge or check by swagger.io's online validator: nothing leaves the page.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=root + "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS,
            redoc_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            with_google_fonts=False,  # ReDoc falls back to the browser's own fonts
        )


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under, as FastAPI's own docs pages use it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


class HeaderedFiles(StaticFiles):
    """StaticFiles whose answers (304s included) carry the given headers: how
    long a browser may keep them, and for the console its security policy."""

    def __init__(self, *, headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers = dict(headers)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self.headers)
        return response


class TrustLedgerApi(FastAPI):
    """FastAPI, with the answers' msgspec schemas in its OpenAPI document and
    the limits the server's rulebook sets on input."""

    policy: Policy | None = None  # the rulebook the server decides commands under
    rulebook_ids: list[str] | None = None  # the rulebooks a query may name
    operations: list[APIRoute] = []  # every route of the API, one per operation

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:  # built once, as FastAPI does
            document = answers.with_answer_schemas(catalog.describe(super().openapi()))
            catalog.with_roles(document, self.operations)
            catalog.with_links(document)
            examples.with_examples(document)
            refusals.with_refusals(document)
            document["components"]["schemas"]["Problem"] = schemas.problem_schema()
            if self.policy is not None:
                schemas.with_rulebook_limits(document, self.policy)
            if self.rulebook_ids:
                schemas.with_rulebook_ids(document, self.rulebook_ids)
            schemas.with_whole_limits(document)
            self.openapi_schema = document
        return self.openapi_schema


class Timed:
    """Latency by route and status for /metrics, every problem answered by its
    code (``/metrics`` and the operations status), the request id, and the
    access line (``api.logs``), as plain ASGI middleware.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``) runs every request
    through an extra task and stream; on the ranking engine's hot path that
    cost more than the penalty lookup itself. Problems are read here, from the
    answer itself, so those made by the admission layer count too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer begins: the app failed before it could send one
        problem_body: bytes | None = None  # the first chunk of a problem answer
        request_id = _request_id(scope)
        appended = logs.note_appended_reset()

        async def noted(message: Message) -> None:
            nonlocal status, problem_body
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (logs.REQUEST_ID_HEADER, request_id)]
                message = {**message, "headers": headers}
                if status >= 400 and _is_problem(headers):
                    problem_body = b""
            elif problem_body == b"" and message["type"] == "http.response.body":
                problem_body = message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get(ROUTE_LABEL) or getattr(scope.get("route"), "path", None)
            state = getattr(scope.get("app"), "state", None)
            service: Service | None = getattr(state, "service", None)
            if service is not None and route is not None:
                service.metrics.observe(route, status, seconds)
            if service is not None and problem_body is not None:
                _note_refusal(service, scope, route, status, problem_body)
            if logs.access.isEnabledFor(logging.INFO):
                _log_access(scope, route, status, seconds, request_id.decode())
            logs.note_appended_done(appended)


def _is_problem(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-type" and value.startswith(_PROBLEM) for name, value in headers)


_PROBLEM = PROBLEM_JSON.encode()


class _ProblemCode(msgspec.Struct):
    code: str = "unknown"


def _note_refusal(
    service: Service, scope: Scope, route: str | None, status: int, body: bytes
) -> None:
    try:
        code = msgspec.json.decode(body, type=_ProblemCode).code
    except msgspec.DecodeError:
        code = "unknown"  # a problem split over several chunks: never made here
    refusal = Refusal(service.clock.now(), status, code, route, scope.get(logs.KEY_ID_SCOPE))
    service.metrics.refused(refusal)


def _request_id(scope: Scope) -> bytes:
    """The caller's X-Request-Id when it is a short visible token, else a new one."""
    value: bytes
    for name, value in scope["headers"]:
        if name == logs.REQUEST_ID_HEADER:
            if logs.REQUEST_ID.fullmatch(value):
                return value
            break
    return uuid.uuid4().hex.encode()


def _log_access(
    scope: Scope, route: str | None, status: int, seconds: float, request_id: str
) -> None:
    key_id = scope.get(logs.KEY_ID_SCOPE)
    path = route or scope["path"]
    ms = round(seconds * 1000, 2)
    logs.access.info(
        "%s %s %s %.2f ms key=%s request=%s",
        scope["method"],
        path,
        status,
        ms,
        key_id or "-",
        request_id,
        extra={
            "request_id": request_id,
            "key_id": key_id,
            "method": scope["method"],
            "route": path,
            "status": status,
            "duration_ms": ms,
            "position": logs.appended(),
        },
    )
