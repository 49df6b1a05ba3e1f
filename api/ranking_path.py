"""The ranking engine's hot path: current penalties without FastAPI's per-request work.

``GET /v1/sellers/{seller_id}/penalty`` and ``POST /v1/penalties/batch`` are
the calls the ranking engine makes thousands of times a second. FastAPI's
routing, dependency solving, validation and thread hand-off cost about 0.6 ms
of CPU a request, several times the lookup itself (profiled on the benchmark
machine). This middleware answers the plain form of those two calls, asked
with a key allowed to read penalties for the current penalties, directly.

Everything else goes on to the FastAPI routes, which stay the one definition
of the API, its schema, checks and problem details: any query option, a body
with ``as_of`` or anything unexpected, an id that is not a platform id, a
missing or refused key, and any error while answering (the lookup only
reads, so the route can simply ask again). An answer given here is the one
the route would give, byte for byte; ``tests/e2e/test_ranking_path.py`` sends the
same requests both ways and compares.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import PENALTY_ROLES, bearer_key
from api.metrics import ROUTE_LABEL
from api.routes.reputation import (
    BATCH_ROUTE,
    PENALTY_ROUTE,
    RULEBOOK_ID_MAX_CHARS,
    batch_json,
    penalty_json,
)
from api.service import Service
from ledger.ids import ID_PATTERN, PlatformId, is_platform_id
from ledger.policy import RULEBOOK_ID_PATTERN
from projections.queries import NOW, PENALTY_BATCH_MAX

# Larger bodies go on to FastAPI (1,000 ids of the longest kind fit easily).
BATCH_BODY_BYTES_MAX = 256 * 1024
# Threads that run lookups off the event loop; each holds a pooled connection
# while it asks, so more threads than view connections would only queue.
LOOKUP_THREADS = 8

_PLATFORM_ID = ID_PATTERN.removeprefix("^").removesuffix("$")
_SINGLE = re.compile(
    re.escape(PENALTY_ROUTE).replace(re.escape("{seller_id}"), f"({_PLATFORM_ID})")
)
_HEADERS = [(b"content-type", b"application/json")]


class PlainBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The batch this path answers: ids and perhaps a rulebook (``as_of`` is not plain)."""

    seller_ids: Annotated[
        list[PlatformId], msgspec.Meta(min_length=1, max_length=PENALTY_BATCH_MAX)
    ]
    rulebook: (
        Annotated[str, msgspec.Meta(max_length=RULEBOOK_ID_MAX_CHARS, pattern=RULEBOOK_ID_PATTERN)]
        | None
    ) = None


_batch_decoder = msgspec.json.Decoder(PlainBatch)


class RankingPath:
    """ASGI middleware in front of the FastAPI app (inside ``Timed``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._threads = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="ranking-path")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "GET":
                if await self._single(scope, send):
                    return
            elif scope["method"] == "POST" and scope["path"] == BATCH_ROUTE:
                messages = await _read_body(receive)
                if await self._batch(scope, messages, send):
                    return
                receive = _replay(messages, receive)
        await self.app(scope, receive, send)

    async def _single(self, scope: Scope, send: Send) -> bool:
        match = _SINGLE.fullmatch(scope["path"])
        if match is None or scope["query_string"]:
            return False
        return await self._answer(scope, send, PENALTY_ROUTE, partial(_current_penalty, match[1]))

    async def _batch(self, scope: Scope, messages: list[Message], send: Send) -> bool:
        if scope["query_string"] or messages[-1].get("more_body", False):
            return False  # too large, or the client went away: the route decides
        if not _sends_json(scope):
            return False  # FastAPI reads no JSON from a body not labelled as JSON
        try:
            ask = _batch_decoder.decode(b"".join(m.get("body", b"") for m in messages))
        except msgspec.DecodeError:  # not JSON, or not the plain shape
            return False
        if not all(map(is_platform_id, ask.seller_ids)):
            return False  # msgspec's pattern search lets an id end in a line break
        return await self._answer(scope, send, BATCH_ROUTE, partial(_current_penalties, ask))

    async def _answer(
        self, scope: Scope, send: Send, route: str, lookup: Callable[[Service], bytes]
    ) -> bool:
        service: Service = scope["app"].state.service
        if not _may_read_penalties(service, scope):
            return False
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(self._threads, lookup, service)
        except Exception:  # the route asks again and answers the error its own way
            return False
        scope[ROUTE_LABEL] = route
        service.metrics.ranking_path_answered()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return True


def _current_penalty(seller_id: str, service: Service) -> bytes:
    return penalty_json(service, seller_id, NOW)


def _current_penalties(ask: PlainBatch, service: Service) -> bytes:
    return batch_json(service, ask.seller_ids, None, ask.rulebook)


def _may_read_penalties(service: Service, scope: Scope) -> bool:
    """A bearer key whose role may read penalties, read as the routes read it."""
    header = _header(scope, b"authorization")
    key = bearer_key(header.decode("latin-1")) if header is not None else None
    principal = service.keys.authenticate(key) if key is not None else None
    return principal is not None and principal.role in PENALTY_ROLES


def _sends_json(scope: Scope) -> bool:
    """The body is labelled plain ``application/json`` (FastAPI reads ``+json`` too)."""
    value = _header(scope, b"content-type")
    return value is not None and value.split(b";", 1)[0].strip().lower() == b"application/json"


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first header of that (lower-case) name, the one Starlette's ``Request`` reads."""
    value: bytes
    for header, value in scope["headers"]:
        if header == name:
            return value
    return None


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages, until the body ends or passes ``BATCH_BODY_BYTES_MAX``."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages
        if size > BATCH_BODY_BYTES_MAX:
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` as if nothing had been read: the read messages first, then the rest."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
