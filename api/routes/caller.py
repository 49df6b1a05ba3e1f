"""Who is calling (any role): the key's id, role and caller, as the server
knows them, so a front end shows what the key may do without trying it."""

from __future__ import annotations

from typing import Annotated, get_args

import msgspec
from fastapi import APIRouter, Depends, Response

from api import answers as a
from api import schemas as s
from api.auth import Principal, Role
from api.deps import require

router = APIRouter(prefix="/v1", tags=["operations"], responses=s.PROBLEMS)
AnyRole = Annotated[Principal, Depends(require(frozenset(Role)))]

_ROLES: dict[Role, a.KeyRole] = {
    Role.SERVICE: "service",
    Role.RANKING: "ranking",
    Role.READER: "reader",
    Role.AUDITOR: "auditor",
    Role.ADMIN: "admin",
}
# A role added to the key ring but not to the answer's shape would answer 500.
if set(_ROLES) != set(Role) or any(name != role.value for role, name in _ROLES.items()):
    raise RuntimeError("api.answers.KeyRole must name every api.auth.Role")
if set(_ROLES.values()) != set(get_args(a.KeyRole)):
    raise RuntimeError("api.answers.KeyRole must name every api.auth.Role")


@router.get("/me", responses=a.answered_by(a.CallerAnswer))
async def me(who: AnyRole) -> Response:
    """The calling key: its id, its role and the caller it acts for (the scope
    of its idempotency keys). Nothing is read but the key ring."""
    answer = a.CallerAnswer(key_id=who.key_id, role=_ROLES[who.role], caller=who.caller)
    return Response(msgspec.json.encode(answer), media_type=a.JSON)
