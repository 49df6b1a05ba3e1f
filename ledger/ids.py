"""Platform ids and the aggregate ids derived from them.

Aggregate ids are uuid5 of a kind-prefixed platform id under one fixed
namespace, so creating an entity that already exists lands on the same
aggregate and is detected instead of duplicated.
"""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID, uuid5

import msgspec

# Never change: every stored aggregate id depends on it.
NAMESPACE = UUID("6f1c2a7e-3b5d-5e4a-9c1f-7d2e8b4a6c30")

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
ID_MAX_CHARS = 128
_ID_RE = re.compile(ID_PATTERN)

PlatformId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]


def is_platform_id(value: str) -> bool:
    # fullmatch: with match, ``$`` would also take an id ending in a line break.
    return _ID_RE.fullmatch(value) is not None


def member_aggregate_id(member_id: str) -> UUID:
    return uuid5(NAMESPACE, f"member:{member_id}")


def trade_aggregate_id(trade_id: str) -> UUID:
    return uuid5(NAMESPACE, f"trade:{trade_id}")


def complaint_aggregate_id(complaint_id: str) -> UUID:
    return uuid5(NAMESPACE, f"complaint:{complaint_id}")


def trade_complaint_slot_id(trade_id: str) -> UUID:
    return uuid5(NAMESPACE, f"trade-complaint:{trade_id}")


def enforcement_aggregate_id(seller_id: str) -> UUID:
    return uuid5(NAMESPACE, f"seller-enforcement:{seller_id}")
