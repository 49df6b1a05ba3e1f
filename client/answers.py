"""The answers the client returns: the very msgspec Structs the server encodes
(``api.answers`` and the figures it serves), and the few shapes only the
client needs (a log line, the public key, the penalty batch)."""

from __future__ import annotations

from typing import Any

import msgspec

from api.answers import (
    BuyerHistoryAnswer,
    CreditAnswer,
    CreditExplanationAnswer,
    DsrAnswer,
    PenaltyAnswer,
    RulebooksAnswer,
    ViolationsAnswer,
)
from ledger.deadlines import DeadlineRun
from ledger.tree_head import TreeHead
from projections.log_tree import ConsistencyProof, InclusionProof
from projections.penalty_feed import PenaltyChange
from projections.queries import UnknownSeller

__all__ = [
    "Appended",
    "BuyerHistoryAnswer",
    "ConsistencyProof",
    "CreditAnswer",
    "CreditExplanationAnswer",
    "DeadlineRun",
    "DsrAnswer",
    "InclusionProof",
    "LogEvent",
    "PenaltyAnswer",
    "PenaltyBatch",
    "PenaltyChange",
    "PublicKey",
    "RulebooksAnswer",
    "TreeHead",
    "UnknownSeller",
    "ViolationsAnswer",
]


class Appended(msgspec.Struct, frozen=True):
    """The log positions an append wrote (or, ``replayed``, wrote the first time)."""

    positions: tuple[int, ...]
    replayed: bool = False


class LogEvent(msgspec.Struct, frozen=True):
    """One event of the log; ``body`` holds the stored bytes as they are hashed."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    occurred_at: str | None
    recorded_at: str | None
    body: msgspec.Raw


class PublicKey(msgspec.Struct, frozen=True):
    algorithm: str
    key_id: str
    public_key_pem: str


class PenaltyBatch(msgspec.Struct, frozen=True):
    """A penalty, or ``UnknownSeller``, for each seller asked, in order."""

    penalties: tuple[PenaltyAnswer | UnknownSeller, ...]


class _Entries(msgspec.Struct):
    penalties: list[msgspec.Raw]


_entries = msgspec.json.Decoder(_Entries)
_unknown = msgspec.json.Decoder(UnknownSeller)
_penalty = msgspec.json.Decoder(PenaltyAnswer)


def penalty_batch(content: bytes) -> PenaltyBatch:
    """Decode a batch: its entries are of two shapes, told apart by ``unknown``."""
    entries: list[PenaltyAnswer | UnknownSeller] = []
    for raw in _entries.decode(content).penalties:
        decoded: Any = msgspec.json.decode(raw)
        entries.append(_unknown.decode(raw) if decoded.get("unknown") else _penalty.decode(raw))
    return PenaltyBatch(tuple(entries))
