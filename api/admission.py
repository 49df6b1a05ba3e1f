"""What a request must pass before the service spends anything on it.

Two places, both before any route runs:

- ``BoundedHttpProtocol`` (uvicorn's httptools protocol, bounded): a request
  line longer than ``URL_BYTES_MAX`` is refused 414 and request headers over
  ``HEADER_BYTES_MAX`` 431, as soon as the parser has read that much, so an
  endless header never fills memory; any request the parser cannot read gets
  a 400. All three as problem+json, where uvicorn would answer plain text.
- ``Admission`` (ASGI middleware): a call under ``/v1`` must carry a known API
  key (401 otherwise; an address that keeps failing gets 429) before its body
  is read, stay within its role's rate (``Settings.rate_limits``, 429 with
  Retry-After), and send a body of at most ``Settings.body_bytes_max`` (413),
  whether it says its length or streams.

Roles are still checked by each route: this only keeps unauthenticated and
oversized requests from costing memory or a worker thread.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.auth import bearer_key
from api.logs import KEY_ID_SCOPE
from api.problems import PROBLEM_JSON, problem_body
from api.rate_limits import ADDRESS_BUCKETS_MAX, Buckets
from api.settings import Settings

URL_BYTES_MAX = 8 * 1024
HEADER_BYTES_MAX = 16 * 1024
UNAUTHENTICATED_NO_KEY = "send an API key as 'Authorization: Bearer <key>'"
UNAUTHENTICATED_UNKNOWN = "unknown API key"


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.retry_after = retry_after


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head and
    problem+json refusals (pass as ``uvicorn.run(http=...)``)."""

    _refused: _Refused | None = None
    _url_bytes = _header_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refused, self._url_bytes, self._header_bytes = None, 0, 0

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > URL_BYTES_MAX:
            # Raised inside a parser callback: the parser stops and
            # data_received answers through send_400_response.
            raise self._refuse(414, "uri_too_long", f"the URL is over {URL_BYTES_MAX} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # with ": " and CRLF
        if self._header_bytes > HEADER_BYTES_MAX:
            raise self._refuse(
                431,
                "headers_too_large",
                f"the request headers are over {HEADER_BYTES_MAX} bytes",
            )
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        refused = self._refused or _Refused(400, "malformed_request", msg)
        body = msgspec.json.encode(problem_body(refused.status, refused.code, refused.detail))
        head = [f"HTTP/1.1 {refused.status} {_REASONS[refused.status]}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [
            f"content-type: {PROBLEM_JSON}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _refuse(self, status: int, code: str, detail: str) -> _Refused:
        self._refused = _Refused(status, code, detail)
        return self._refused


_REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


class Admission:
    """Authentication before the body, rate limits, and a bounded body (ASGI middleware)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.body_bytes_max = settings.body_bytes_max
        self.rate_limits = settings.rate_limits
        self.failed_auth_limit = settings.failed_auth_limit
        self._by_key = Buckets(size_max=ADDRESS_BUCKETS_MAX)
        self._failed_by_address = Buckets(size_max=ADDRESS_BUCKETS_MAX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is not None:
            await _send_problem(send, refused)
            return
        await self.app(scope, *self._bounded(receive, send))

    def _refusal(self, scope: Scope) -> _Refused | None:
        headers = dict(scope["headers"])
        if scope["path"].startswith("/v1/"):
            refused = self._caller_refusal(scope, headers.get(b"authorization"))
            if refused is not None:
                return refused
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.body_bytes_max):
            return self._too_large()
        return None

    def _caller_refusal(self, scope: Scope, authorization: bytes | None) -> _Refused | None:
        """A missing or unknown key (401; 429 once an address has failed too
        often), or a key over its role's rate (429)."""
        now = time.monotonic()
        client = scope.get("client")
        address = str(client[0]) if client else "-"
        if not self._failed_by_address.peek(address, self.failed_auth_limit, now):
            wait = self._failed_by_address.take(address, self.failed_auth_limit, now)
            detail = "too many requests without a valid API key from this address"
            return _Refused(429, "too_many_requests", detail, retry_after=wait)
        key = bearer_key(authorization.decode("latin-1")) if authorization else None
        principal = scope["app"].state.service.keys.authenticate(key) if key else None
        if principal is None:
            self._failed_by_address.take(address, self.failed_auth_limit, now)
            detail = UNAUTHENTICATED_NO_KEY if key is None else UNAUTHENTICATED_UNKNOWN
            return _Refused(401, "unauthenticated", detail)
        scope[KEY_ID_SCOPE] = principal.key_id  # for the access line
        limit = self.rate_limits[principal.role]
        wait = self._by_key.take(principal.key_id, limit, now)
        if wait is not None:
            detail = f"over the {principal.role} rate of {limit.per_second:g} requests a second"
            return _Refused(429, "too_many_requests", detail, retry_after=wait)
        return None

    def _bounded(self, receive: Receive, send: Send) -> tuple[Receive, Send]:
        """The request's channels, cut off where its body passes the limit: the
        caller gets the 413 at once (unless an answer had begun) and the app
        sees the client gone, and whatever it sends after that is dropped."""
        read, started, refused = 0, False, False

        async def bounded_receive() -> Message:
            nonlocal read, refused
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.body_bytes_max and not refused:
                refused = True
                if not started:
                    await _send_problem(send, self._too_large())
            return {"type": "http.disconnect"} if refused else message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        return bounded_receive, tracked_send

    def _too_large(self) -> _Refused:
        return _Refused(413, "body_too_large", f"the body is over {self.body_bytes_max} bytes")


async def _send_problem(send: Send, refused: _Refused) -> None:
    body = msgspec.json.encode(problem_body(refused.status, refused.code, refused.detail))
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if refused.status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    if refused.retry_after is not None:
        headers.append((b"retry-after", str(refused.retry_after).encode()))
    start: dict[str, Any] = {"type": "http.response.start", "status": refused.status}
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
