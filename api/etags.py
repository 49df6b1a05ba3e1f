"""ETags on query answers, and 304 Not Modified for a caller that has the answer.

Every answer of a query carries what it depends on (the rulebook, the
business time it is as of, the log position it reflects), so an answer that
is the same bytes is the same answer: its ETag is a digest of its body. A
GET answered 200 with a JSON body gets one; a request whose
``If-None-Match`` names it is answered 304 with no body. An answer as of now
changes with its ``as_of`` on every call: ETags help the callers who ask as
of a fixed time (a report, an audit) or a fixed position. Streams (the log,
the change feed) and every other answer pass through untouched.
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPE = b"application/json"


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'


class ETags:
    """ASGI middleware: ETag on JSON answers to GET, 304 when the caller has it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        wanted = _header(scope, b"if-none-match")
        held: Message | None = None

        async def tagged(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] == 200 and _is_json(message):
                    held = message  # until the body shows whether it comes whole
                    return
                await send(message)
                return
            if held is None:
                await send(message)
                return
            start, held = held, None
            if message.get("more_body", False):  # streamed: left as it is
                await send(start)
                await send(message)
                return
            body = message.get("body", b"")
            etag = etag_of(body)
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            if wanted is not None and _matches(etag, wanted):
                await send({**start, "status": 304, "headers": [*headers, (b"etag", etag)]})
                await send({"type": "http.response.body", "body": b""})
                return
            length = (b"content-length", str(len(body)).encode())
            await send({**start, "headers": [*headers, length, (b"etag", etag)]})
            await send(message)

        await self.app(scope, receive, tagged)


def _is_json(start: Message) -> bool:
    for name, value in start["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip() == JSON_TYPE)
    return False


def _header(scope: Scope, name: bytes) -> bytes | None:
    value: bytes
    for header, value in scope["headers"]:
        if header == name:
            return value
    return None


def _matches(etag: bytes, if_none_match: bytes) -> bool:
    """Whether If-None-Match names this answer: ``*`` (any), or one of its
    entity tags (a weak one compared as strong, as RFC 9110 does for it)."""
    tags = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
    return b"*" in tags or etag in tags
