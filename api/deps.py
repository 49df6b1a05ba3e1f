"""Typed dependencies: the service, the caller's principal, the idempotency key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from fastapi import Depends, Header, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from api.admission import UNAUTHENTICATED_NO_KEY, UNAUTHENTICATED_UNKNOWN
from api.auth import Principal, Role, bearer_key
from api.problems import ApiProblem
from api.service import Service
from ledger.app import IDEMPOTENCY_KEY_PATTERN, Origin
from ledger.commands import Command
from ledger.errors import ErrorCode, InvalidInputError

IDEMPOTENCY_KEY_MAX_CHARS = 255
C = TypeVar("C", bound=Command)


# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def``
# dependency in a worker thread, a hop that cost more than the check itself.


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


class BearerKey(SecurityBase):
    """The caller's API key, read by ``auth.bearer_key``; the OpenAPI document
    describes it as HTTP bearer authentication."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            description="an API key: Authorization: Bearer tl_<id>_<secret>"
        )
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> str | None:
        return bearer_key(request.headers.get("Authorization"))


bearer = BearerKey()


def require(roles: frozenset[Role]) -> Callable[..., Awaitable[Principal]]:
    async def authorise(
        service: ServiceDep, key: Annotated[str | None, Depends(bearer)]
    ) -> Principal:
        if key is None:
            raise ApiProblem(401, "unauthenticated", UNAUTHENTICATED_NO_KEY)
        principal = service.keys.authenticate(key)
        if principal is None:
            raise ApiProblem(401, "unauthenticated", UNAUTHENTICATED_UNKNOWN)
        if principal.role not in roles:
            allowed = ", ".join(sorted(roles))
            raise ApiProblem(
                403, "forbidden", f"role {principal.role} may not do this (needs {allowed})"
            )
        return principal

    authorise.roles = roles  # type: ignore[attr-defined]  # the OpenAPI document reads it
    return authorise


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_CHARS,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="one key per intended fact: a retry with the same key is answered once",
    ),
]


def origin(principal: Principal, key: str) -> Origin:
    return Origin(caller=principal.caller, idempotency_key=key)


def command(command_type: type[C], **fields: Any) -> C:
    """An HTTP body (already checked by its schema) as a command Struct."""
    try:
        return msgspec.convert(fields, command_type, from_attributes=True)
    except msgspec.ValidationError as error:
        raise InvalidInputError(
            ErrorCode.INVALID_INPUT, str(error), field=_field(str(error))
        ) from error


def _field(message: str) -> str | None:
    marker = "at `$."
    if marker not in message:
        return None
    return message.split(marker, 1)[1].rstrip("`")
